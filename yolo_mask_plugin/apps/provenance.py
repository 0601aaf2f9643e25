"""What a result file records about how it was made: commit, command, seeds, threads, machine, framework versions,
date, and the hash of every plugin file the run used (`code_files`), so a table can say whether the code it
measured has changed since."""
from __future__ import annotations

import datetime
import hashlib
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from yolo_mask_plugin.apps.machine import machine

VERSIONED = ("torch", "torchvision", "ultralytics", "detectron2")  # frameworks whose version is part of a run
ROOT = Path(__file__).resolve().parents[2]  # the checkout (or site-packages) holding yolo_mask_plugin/
# Folders under ROOT whose files are the plugin's code: a module imported from one of them was used by the run.
CODE_FOLDERS = ("yolo_mask_plugin", "adapters", "configs", "benchmarks")


def framework_versions() -> dict[str, str | None]:
    """The version of each framework in `VERSIONED`, read from the imported package (never from the distribution
    name: detectron2 is often built from source).

    Returns:
        (dict[str, str | None]): import name -> version, None where it is not installed.
    """
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return versions


def code_files(root: Path = ROOT, also: Iterable[str | Path] = ()) -> dict[str, str]:
    """The plugin files this process has used, each with the SHA-256 of its bytes.

    Every module in `sys.modules` whose file lies under `root`'s `CODE_FOLDERS` (the running benchmark script
    included, as `__main__`), plus every `.yaml` and `.py` file under `root/configs` whether imported or not:
    Detectron2 reads yaml configs and LazyConfig files without importing them, so all of them count.

    Args:
        root (Path): the folder holding `yolo_mask_plugin/`, `adapters/`, `configs/` and `benchmarks/`.
        also (Iterable[str | Path]): further files the process ran without importing them (a module `runpy` ran
            as `__main__` leaves `sys.modules` when it returns); listed when they lie in the same folders.

    Returns:
        (dict[str, str]): repo-relative POSIX path -> hex SHA-256 of the file, sorted by path.

    Examples:
        >>> "yolo_mask_plugin/apps/provenance.py" in code_files()  # imported, hence listed
        True
    """
    root = Path(root).resolve()
    folders = [root / folder for folder in CODE_FOLDERS]
    used = set()
    files = [getattr(module, "__file__", None) for module in list(sys.modules.values())]
    for file in [*files, *also]:
        if file and Path(file).suffix == ".py":
            path = Path(file).resolve()
            if path.is_file() and any(path.is_relative_to(folder) for folder in folders):
                used.add(path)
    configs = root / "configs"
    if configs.is_dir():
        used.update(p for p in configs.rglob("*") if p.suffix in (".yaml", ".py") and "__pycache__" not in p.parts)
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(used, key=lambda p: p.relative_to(root).as_posix())}


def commit(root: Path = ROOT) -> str:
    """The checkout's HEAD commit, with "+changes" when tracked files differ from it.

    Returns:
        (str): the commit hash, or "unknown (not a git checkout)".
    """
    git = ["git", "-C", str(root)]
    try:
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("+changes" if dirty.stdout.strip() else "")


def provenance(seeds: list[int] | None = None) -> dict:
    """What a result file records about how it was made, at the run's start.

    `code_files` here lists what was imported so far; `apps.benchmark.write_result` brings it up to date each time
    the result is written, so modules imported during the run count too.

    Args:
        seeds (list[int] | None): the seeds the run covers.

    Returns:
        (dict): commit, command (interpreter and argv), seeds, torch_threads, machine, versions, date (UTC, ISO),
            code_files (`code_files()`).
    """
    import torch

    return {
        "commit": commit(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "seeds": list(seeds or []),
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "versions": framework_versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "code_files": code_files(),
    }
