"""The skeleton every script in `benchmarks/` stands on: its common arguments, its result dict with provenance, and
writing that result atomically (with the code files the run used) after every seed or run.

A script builds its parser with `benchmark_parser`, starts its result with `new_result`, and calls `write_result`
whenever a seed or run finishes, so a killed batch job keeps every result it had. A part measured in a fresh
interpreter reports the code files it used (`run_recording_code_files`, or `code_files()` in the child's output)
and the script adds them with `add_code_files`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from yolo_mask_plugin.apps.machine import default_device
from yolo_mask_plugin.apps.provenance import code_files, provenance


def benchmark_parser(
    doc: str | None, *, result: str, seeds: list[int] | None = None, output_dir: str | None = None,
    device: bool = False,
) -> argparse.ArgumentParser:
    """An argument parser with the options the benchmarks share; the script adds its own after.

    Args:
        doc (str | None): the script's docstring, shown by `--help` as written.
        result (str): default of `--result`, the result JSON.
        seeds (list[int] | None): default of `--seeds`; None: the benchmark has no seeds (no `--seeds`).
        output_dir (str | None): default of `--output-dir`, where runs are kept; None: no `--output-dir`.
        device (bool): add `--device` (default: `default_device()`).

    Returns:
        (argparse.ArgumentParser): the parser.

    Examples:
        >>> parser = benchmark_parser(__doc__, result="benchmarks/results/x.json", seeds=[0, 1, 2])
        >>> parser.add_argument("--epochs", type=int, default=50)
        >>> args = parser.parse_args()  # args.result, args.seeds, args.epochs
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if output_dir is not None:
        parser.add_argument("--output-dir", default=output_dir, help="where the runs are kept (and reused)")
    if seeds is not None:
        parser.add_argument("--seeds", type=int, nargs="+", default=list(seeds), help="one run per seed")
    if device:
        parser.add_argument("--device", default=default_device(), help="cuda or cpu (default: cuda when there is one)")
    parser.add_argument("--result", default=result, help="the result JSON (rewritten after every seed or run)")
    return parser


def new_result(seeds: list[int] | None = None, **fields) -> dict:
    """A result dict: its provenance first, then `fields`.

    Args:
        seeds (list[int] | None): the seeds the run covers.
        **fields: the result's other entries, in order.

    Returns:
        (dict): {"provenance": `apps.provenance.provenance(seeds)` (taken now, at the run's start), **fields}.
    """
    return {"provenance": provenance(seeds), **fields}


def add_code_files(result: dict, files: dict[str, str]) -> None:
    """Add the code files another process of the run used to the result's provenance.

    Args:
        result (dict): a result of `new_result`.
        files (dict[str, str]): repo-relative path -> SHA-256 (`apps.provenance.code_files` in that process).
    """
    result["provenance"]["code_files"] = {**result["provenance"].get("code_files", {}), **files}


def write_result(path: str | os.PathLike, result: dict) -> Path:
    """Write `result` as JSON to `path` atomically, its `provenance.code_files` brought up to date first.

    The code files this process has used by now (`apps.provenance.code_files`, so modules imported during the
    run count) are merged into those recorded so far. The JSON goes to a temporary file next to `path` that then
    replaces it, so a run killed while writing leaves the previous result whole.

    Args:
        path (str | os.PathLike): the result JSON; its folder is created.
        result (dict): the result; a "provenance" entry, if any, is updated in place.

    Returns:
        (Path): `path`.
    """
    path = Path(path)
    if "provenance" in result:
        add_code_files(result, code_files())
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(partial, path)
    return path


# A fresh interpreter that runs `python -m MODULE ARGS...` and, when it exits, writes the code files it used (the
# module itself included: runpy takes it out of sys.modules when it returns).
_RECORDING_CHILD = """
import atexit, importlib.util, json, runpy, sys
from yolo_mask_plugin.apps.provenance import code_files
record, module = sys.argv[1], sys.argv[2]
main_file = importlib.util.find_spec(module).origin
atexit.register(lambda: open(record, "w").write(json.dumps(code_files(also=[main_file]))))
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_recording_code_files(module: str, args: list[str], record: Path) -> dict[str, str]:
    """Run `python -m <module> <args>` in a fresh interpreter, as a user would, and return the code files it used.

    Args:
        module (str): the module run as `__main__` (e.g. "yolo_mask_plugin.apps.cli").
        args (list[str]): its command-line arguments.
        record (Path): where the child writes its `code_files()` when it exits.

    Returns:
        (dict[str, str]): the child's code files (path -> SHA-256).

    Raises:
        subprocess.CalledProcessError: the command failed.
    """
    record = Path(record)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-c", _RECORDING_CHILD, str(record), module, *args], check=True)
    return json.loads(record.read_text())
