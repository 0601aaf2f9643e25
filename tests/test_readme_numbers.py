"""The docs' benchmark numbers come from committed benchmark results, and say whether they still measure our code.

Every benchmark with a table has a `readme_table(result)` that renders its committed JSON; `benchmarks/update_readme.py`
writes it between `<!-- benchmark: NAME -->` markers in docs/benchmarks.md (and any other doc with markers), followed by
one line naming the commit, CPU and torch threads it was measured with and whether the code it measured changed since.
The docs must hold exactly that block, so a number edited by hand, a result file rerun without updating the docs, or a
code change that the staleness line does not admit, fails here. Every result file records how it was made (commit,
command, seeds, torch threads, machine).
"""
from __future__ import annotations

import hashlib
import json

import pytest

from benchmarks.update_readme import MARKED, ROOT, block, changed_code, doc_files, provenance_line, result_file, table

BENCHMARKS = (
    "yolo_mask_vs_yolo_seg", "mask_head_cost", "training_cost", "inference_latency", "demo_seeds", "mask_resolution",
    "compare_shapes", "d2_vs_ultralytics_yolo_mask",
)
BENCHMARKS_DOC = ROOT / "docs" / "benchmarks.md"


def shown_blocks() -> list[tuple[str, str, str]]:
    """(doc, benchmark, text between its markers) for every marked table in README.md and docs/*.md."""
    return [(doc.relative_to(ROOT).as_posix(), m.group(2), m.group(3))
            for doc in doc_files() for m in MARKED.finditer(doc.read_text())]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmarks_doc_shows_the_committed_result_and_whether_its_code_changed(name):
    result = json.loads(result_file(name).read_text())
    provenance = result["provenance"]
    assert {"commit", "command", "seeds", "torch_threads", "machine"} <= set(provenance)
    assert provenance["commit"] and not provenance["commit"].startswith("unknown"), provenance["commit"]
    shown = {m.group(2): m.group(3) for m in MARKED.finditer(BENCHMARKS_DOC.read_text())}
    assert name in shown, f"docs/benchmarks.md has no <!-- benchmark: {name} --> table"
    assert table(name) in shown[name], f"docs/benchmarks.md does not show {name}'s result as it is: run benchmarks/update_readme.py"
    if changed_code(name, provenance) is None:
        pytest.skip(f"git history with {provenance['commit']} unavailable: cannot tell whether {name}'s code changed")
    assert shown[name] == block(name), (
        f"docs/benchmarks.md's line under {name} is not {provenance_line(name, provenance)!r}: run benchmarks/update_readme.py")


def test_every_marked_table_in_any_doc_is_a_benchmark_shown_as_generated():
    blocks = shown_blocks()
    assert blocks, "no <!-- benchmark: NAME --> table in README.md or docs/"
    for doc, name, text in blocks:
        assert name in BENCHMARKS, f"{doc}: <!-- benchmark: {name} --> names no benchmark this test knows"
        assert table(name) in text, f"{doc}: {name} differs from its result: run benchmarks/update_readme.py"


def test_staleness_line_names_files_whose_bytes_differ_from_the_measured_ones():
    setup = ROOT / "setup.py"
    digest = hashlib.sha256(setup.read_bytes()).hexdigest()
    measured = {"commit": "0" * 40, "torch_threads": 2, "machine": {"cpu": "Some CPU"}}
    same = provenance_line("x", {**measured, "code_files": {"setup.py": digest}})
    assert same == "Measured at commit 000000000000 on Some CPU, 2 torch threads; measured code unchanged since."
    changed = provenance_line("x", {**measured, "code_files": {"setup.py": "f" * 64, "gone.py": digest}})
    assert changed.endswith("**measured code changed since** in: `gone.py`, `setup.py`.")


def test_staleness_line_without_file_hashes_asks_git_and_admits_when_it_cannot_tell():
    head = {"commit": "HEAD+changes", "torch_threads": 1, "machine": {"cpu": "Some CPU"}}
    line = provenance_line("demo_seeds", head)
    assert line.startswith("Measured at commit HEAD (with uncommitted changes) on Some CPU, 1 torch thread; ")
    unknown = provenance_line("demo_seeds", {**head, "commit": "nosuchcommit"})
    assert unknown.endswith("measured code unknown (git or commit nosuchcommit unavailable).")


def test_accuracy_claims_rest_on_three_seeds_with_training_times():
    result = json.loads((ROOT / "benchmarks" / "results" / "yolo_mask_vs_yolo_seg.json").read_text())
    seeds = result["provenance"]["seeds"]
    assert len(seeds) >= 3 and sorted(map(int, result["per_seed"])) == sorted(seeds)
    for per_seed in result["per_seed"].values():
        for model in ("yolo_mask", "yolo_seg"):
            assert per_seed["train_cost"][model]["wall_s"] > 0 and per_seed["train_cost"][model]["cpu_s"] > 0


def test_demo_numbers_rest_on_three_seeds_of_the_demo_command():
    result = json.loads((ROOT / "benchmarks" / "results" / "demo_seeds.json").read_text())
    runs = result["runs"]
    assert len(runs) >= 3 and [r["seed"] for r in runs] == result["provenance"]["seeds"]
    for run in runs:
        assert run["wall_s"]["yolo_train"] > 0 and run["wall_s"]["mask_train_and_eval"] > 0
        assert run["yolo_train_args"]["seed"] == run["seed"]  # each seed trained its own YOLO


def test_mask_resolution_rests_on_three_seeds_with_one_detector_per_seed():
    result = json.loads((ROOT / "benchmarks" / "results" / "mask_resolution.json").read_text())
    seeds = result["provenance"]["seeds"]
    assert len(seeds) >= 3
    for runs in result["runs"].values():
        assert [r["seed"] for r in runs] == seeds and all(r["train_wall_min"] > 0 for r in runs)
    for seed in seeds:  # the variants of a seed share the frozen detector, hence the boxes
        same_seed = [r for runs in result["runs"].values() for r in runs if r["seed"] == seed]
        assert len({r["detector"] for r in same_seed}) == 1 and len({r["bbox_AP"] for r in same_seed}) == 1


def test_d2_vs_ultralytics_pairs_every_model_with_the_recipe_at_the_same_seeds_and_images_seen():
    result = json.loads(result_file("d2_vs_ultralytics_yolo_mask").read_text())
    seeds = result["provenance"]["seeds"]
    assert len(seeds) >= 3
    models = result["models"]
    assert {"detectron2", "ultralytics_recipe"} <= set(models)
    for name, model in models.items():
        assert [r["seed"] for r in model["runs"]] == seeds, name
        assert all(r["train_wall_min"] > 0 and r["train_cpu_min"] > 0 for r in model["runs"]), name
        assert model["images_seen"] == models["ultralytics_recipe"]["images_seen"], name
