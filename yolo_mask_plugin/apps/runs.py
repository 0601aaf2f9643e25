"""One record per training run: the settings it was started with, its weights once finished, what it cost.

The demo, the comparison and the benchmarks reuse a finished run only when its settings (which include
`code_version()`, so changed code means a new run) are the same, and clear a folder another run left.
`finished.json` is written last, after the weights, so a run killed at any point is never taken as finished.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

VERSIONED = ("torch", "torchvision", "ultralytics", "detectron2")  # frameworks whose version is part of a run
FINISHED = "finished.json"
STARTED = "started.json"


def code_version() -> str:
    """A fingerprint of the plugin's code and configs and of the frameworks' versions that train and run it."""
    import yolo_mask_plugin
    import yolo_mask_plugin.adapters
    import yolo_mask_plugin.configs

    digest = hashlib.sha256()
    for package in (yolo_mask_plugin, yolo_mask_plugin.adapters, yolo_mask_plugin.configs):
        root = Path(list(package.__path__)[0])
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    for name in VERSIONED:
        digest.update(f"{name}=={_version(name)}".encode())
    return digest.hexdigest()[:16]


def provenance(seeds: list[int] | None = None) -> dict:
    """What a result file records about how it was made: commit (with "+changes" when the working tree differs),
    the exact command, seeds, torch threads, machine, versions and date."""
    import torch

    root = Path(__file__).resolve().parents[2]
    git = ["git", "-C", str(root)]
    try:
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
        commit += "+changes" if dirty.stdout.strip() else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    return {
        "commit": commit,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "seeds": list(seeds or []),
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "versions": {name: _version(name) for name in VERSIONED},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def machine() -> dict:
    """The processor (or GPU), its cores and the platform."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "description": f"{gpu or cpu}, {os.cpu_count()} CPU cores", "cpu": cpu, "cpu_cores": os.cpu_count(), "gpu": gpu,
        "device": "cuda" if gpu else "cpu", "platform": platform.platform(), "python": platform.python_version(),
    }


def _version(module: str) -> str | None:
    """A package's version by its import name (never by distribution name: detectron2 is often built from source)."""
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (data-loader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CostClock:
    """Wall and CPU seconds since it was made, plus what an earlier part of the same run had spent (`offset`)."""

    def __init__(self, offset: dict | None = None):
        self.offset = {"wall_s": 0.0, "cpu_s": 0.0, **(offset or {})}
        self._wall0, self._cpu0 = time.perf_counter(), _cpu_seconds()

    def read(self) -> dict:
        return {
            "wall_s": round(self.offset["wall_s"] + time.perf_counter() - self._wall0, 1),
            "cpu_s": round(self.offset["cpu_s"] + _cpu_seconds() - self._cpu0, 1),
        }


@contextmanager
def measured_cost() -> Iterator[dict]:
    """Wall and CPU seconds of the block; CPU includes finished child processes (data-loader workers)."""
    cost: dict = {}
    clock = CostClock()
    yield cost
    cost.update(clock.read())


def finished_run(run_dir: Path, settings: dict) -> dict | None:
    """The record of a finished run in `run_dir` trained with exactly `settings`, if there is one."""
    marker = Path(run_dir) / FINISHED
    if not marker.is_file():
        return None
    record = json.loads(marker.read_text())
    if record.get("settings") != settings or not Path(record.get("weights", "")).is_file():
        return None
    return record


def start_run(run_dir: Path, settings: dict) -> None:
    """Note the settings of the run about to train; a folder left by other settings is cleared first, so a
    checkpoint of another run is never resumed as if it were this one."""
    run_dir = Path(run_dir)
    started = run_dir / STARTED
    if run_dir.is_dir() and (not started.is_file() or json.loads(started.read_text()) != settings):
        print(f"[yolo-mask] {run_dir} holds a run with other settings: starting it afresh", flush=True)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started.write_text(json.dumps(settings, indent=2))


def seed_spread(values: list[float]) -> dict:
    """What a benchmark reports of one number over seeds: mean, sample standard deviation (None for one seed), min,
    max and how many."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values), "n": len(values)}


def exceeds_spread(differences: list[float]) -> bool:
    """Whether paired differences over seeds (model A - model B, seed by seed) say more than the seed noise: at least
    3 seeds, the same sign at every seed, and |mean| > 2 sample standard deviations."""
    if len(differences) < 3:
        return False
    same_sign = min(differences) > 0 or max(differences) < 0
    return same_sign and abs(statistics.fmean(differences)) > 2 * statistics.stdev(differences)


def paired_difference(differences: list[float]) -> dict:
    """What a benchmark reports of paired differences over seeds: their `seed_spread` and `exceeds_spread`."""
    return {**seed_spread(differences), "exceeds_spread": exceeds_spread(differences)}


def spread_cell(spread: dict) -> str:
    """A `seed_spread` as a table cell: "mean ± std" (the mean alone for one seed)."""
    return f"{spread['mean']:.1f}" + (f" ± {spread['std']:.1f}" if spread["std"] is not None else "")


def difference_cell(difference: dict) -> str:
    """A `paired_difference` as a table cell: "+mean ± std", marked "(within spread)" unless it exceeds the spread."""
    signed = f"{difference['mean']:+.1f}" + (f" ± {difference['std']:.1f}" if difference["std"] is not None else "")
    return signed + ("" if difference["exceeds_spread"] else " (within spread)")


def finish_run(run_dir: Path, settings: dict, weights: Path, cost: dict, **extra) -> dict:
    """Write `finished.json` (settings, weights, cost, and `extra` fields) and return that record."""
    record = {"settings": settings, "weights": str(weights), "cost": cost, **extra}
    (Path(run_dir) / FINISHED).write_text(json.dumps(record, indent=2))
    return record
