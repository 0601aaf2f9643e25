"""One record per training run: the settings it was started with, its weights once finished, what it cost.

The demo, the comparison and the benchmarks reuse a finished run only when its settings (which include
`code_version()`, so changed code means a new run) are the same, and clear a folder another run left.
`finished.json` is written last, after the weights, so a run killed at any point is never taken as finished.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from yolo_mask_plugin.apps.provenance import framework_versions

FINISHED = "finished.json"
STARTED = "started.json"


def code_version() -> str:
    """A fingerprint of the plugin's code and configs and of the frameworks' versions that train and run it.

    Returns:
        (str): 16 hex digits of a SHA-256 over every .py and .yaml file of the installed package (names and bytes)
            and `framework_versions()`.
    """
    import yolo_mask_plugin
    import yolo_mask_plugin.adapters
    import yolo_mask_plugin.configs

    digest = hashlib.sha256()
    for package in (yolo_mask_plugin, yolo_mask_plugin.adapters, yolo_mask_plugin.configs):
        root = Path(list(package.__path__)[0])
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    for name, version in framework_versions().items():
        digest.update(f"{name}=={version}".encode())
    return digest.hexdigest()[:16]


def finished_run(run_dir: Path, settings: dict) -> dict | None:
    """The record of a finished run in `run_dir` trained with exactly `settings`, if there is one.

    Args:
        run_dir (Path): the run's folder.
        settings (dict): what the run must have been started with (include `code_version()` in it).

    Returns:
        (dict | None): the `finish_run` record, or None when the run is missing, unfinished, of other settings, or
            its weights are gone.
    """
    marker = Path(run_dir) / FINISHED
    if not marker.is_file():
        return None
    record = json.loads(marker.read_text())
    if record.get("settings") != settings or not Path(record.get("weights", "")).is_file():
        return None
    return record


def start_run(run_dir: Path, settings: dict) -> None:
    """Note the settings of the run about to train in `run_dir`.

    A folder left by other settings is cleared first, so a checkpoint of another run is never resumed as if it
    were this one; a folder of the same settings is kept (its checkpoints may be resumed).

    Args:
        run_dir (Path): the run's folder (created).
        settings (dict): what the run is started with (include `code_version()` in it).
    """
    run_dir = Path(run_dir)
    started = run_dir / STARTED
    if run_dir.is_dir() and (not started.is_file() or json.loads(started.read_text()) != settings):
        print(f"[yolo-mask] {run_dir} holds a run with other settings: starting it afresh", flush=True)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started.write_text(json.dumps(settings, indent=2))


def finish_run(run_dir: Path, settings: dict, weights: Path, cost: dict, **extra) -> dict:
    """Write `finished.json` into `run_dir` after the run's weights are saved.

    Args:
        run_dir (Path): the run's folder.
        settings (dict): the settings `start_run` noted.
        weights (Path): the final weights.
        cost (dict): {"wall_s", "cpu_s"} (`apps.cost.measured_cost`).
        **extra: further fields of the record.

    Returns:
        (dict): the record (settings, weights, cost, extra), as `finished_run` returns it later.
    """
    record = {"settings": settings, "weights": str(weights), "cost": cost, **extra}
    (Path(run_dir) / FINISHED).write_text(json.dumps(record, indent=2))
    return record
