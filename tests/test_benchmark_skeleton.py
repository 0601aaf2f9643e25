"""The benchmark skeleton (`apps/benchmark.py`) records the code a run measured: each result file lists, with its
SHA-256, every plugin file the run imported by the time the result was written, and every config."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from yolo_mask_plugin.apps.benchmark import run_recording_code_files, write_result
from yolo_mask_plugin.apps.provenance import ROOT

# Imports a plugin module only after the run's provenance was taken, then writes the result; prints what the
# provenance listed at the start.
_RUN = """
import json, sys
from yolo_mask_plugin.apps.benchmark import new_result, write_result
result = new_result([0, 1], numbers=[])
started_with = sorted(result["provenance"]["code_files"])
import yolo_mask_plugin.apps.latency  # imported during the run
result["numbers"].append(1.0)
write_result(sys.argv[1], result)
print(json.dumps(started_with))
"""
LATE_MODULE = "yolo_mask_plugin/apps/latency.py"
CONFIG = "configs/shapes/yolo_mask_single_pass.yaml"


def _sha256(relative: str) -> str:
    return hashlib.sha256((ROOT / relative).read_bytes()).hexdigest()


def test_result_records_the_hash_of_each_module_the_run_imported_and_of_the_configs(tmp_path):
    path = tmp_path / "result.json"
    done = subprocess.run([sys.executable, "-c", _RUN, str(path)], capture_output=True, text=True, check=True)
    started_with = json.loads(done.stdout.strip().splitlines()[-1])
    provenance = json.loads(path.read_text())["provenance"]
    files = provenance["code_files"]
    assert {"commit", "command", "seeds", "torch_threads", "machine", "versions", "date"} <= set(provenance)
    assert provenance["seeds"] == [0, 1]
    assert LATE_MODULE not in started_with  # so only the write can have listed it
    assert files[LATE_MODULE] == _sha256(LATE_MODULE)
    assert files["yolo_mask_plugin/apps/benchmark.py"] == _sha256("yolo_mask_plugin/apps/benchmark.py")
    configs = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").rglob("*.yaml"))
    assert configs and {c: files.get(c) for c in configs} == {c: _sha256(c) for c in configs}
    assert files[CONFIG] == _sha256(CONFIG)
    assert "benchmarks/mask_head_cost.py" not in files  # what the run never imported is not its code


def test_a_child_interpreter_reports_the_code_files_it_used(tmp_path):
    files = run_recording_code_files("yolo_mask_plugin.apps.latency", [], tmp_path / "code_files.json")
    assert files[LATE_MODULE] == _sha256(LATE_MODULE)
    assert "yolo_mask_plugin/apps/compare/run.py" not in files


def test_rewriting_a_result_replaces_it_whole(tmp_path):
    path = tmp_path / "nested" / "result.json"
    write_result(path, {"runs": [1, 2, 3]})
    write_result(path, {"runs": [1]})
    assert json.loads(path.read_text()) == {"runs": [1]}
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]  # no partial file left behind
