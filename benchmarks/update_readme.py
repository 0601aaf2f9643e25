"""Write every benchmark's table into the docs from its committed result JSON, with a line saying if it is stale.

A doc (README.md or docs/*.md) marks a table with `<!-- benchmark: NAME -->` ... `<!-- /benchmark -->`; between
them goes `benchmarks/NAME.py`'s `readme_table` of its result (`benchmarks/results/NAME.json`, or
`NAME/results.json` for a benchmark that keeps a folder), then one line (`provenance_line`) naming the commit, CPU
and torch threads it was measured with and whether the code it measured changed since. tests/test_readme_numbers.py
checks that the docs hold exactly these blocks, so a number edited by hand, a result rerun without updating the
docs, or a code change since the measurement that the docs do not admit, fails there.

    python benchmarks/update_readme.py
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"(<!-- benchmark: (\w+) -->\n)(.*?)(<!-- /benchmark -->)", re.S)  # to the first end mark
# What a benchmark measured when its result does not list its files (`provenance["code_files"]`): the package,
# the Ultralytics shell and the configs, plus the benchmark's own script.
MEASURED_PATHS = ("yolo_mask_plugin", "adapters", "configs")
UNCOMMITTED = "+changes"  # suffix of a provenance commit measured with uncommitted changes in the tree


def benchmark_module(name: str):
    """`benchmarks/<name>.py` as a module (benchmarks/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result_file(name: str) -> Path:
    """The committed result of benchmark `name`."""
    single = ROOT / "benchmarks" / "results" / f"{name}.json"
    return single if single.is_file() else ROOT / "benchmarks" / "results" / name / "results.json"


def doc_files() -> list[Path]:
    """Every doc that may hold benchmark tables: README.md and docs/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def table(name: str) -> str:
    return benchmark_module(name).readme_table(json.loads(result_file(name).read_text()))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def changed_code(name: str, provenance: dict) -> list[str] | None:
    """Repo-relative files of the code `name` measured that differ now from what it measured; None if unknowable.

    With `provenance["code_files"]` ({path: sha256 of the bytes}) these are the files whose bytes differ or that
    are gone. Without it, `git diff --name-only COMMIT -- MEASURED_PATHS benchmarks/NAME.py` against the working
    tree; None when git or the commit is not available.
    """
    code_files = provenance.get("code_files")
    if code_files is not None:
        return sorted(path for path, digest in code_files.items()
                      if not (ROOT / path).is_file() or _sha256(ROOT / path) != digest)
    commit = provenance.get("commit", "").removesuffix(UNCOMMITTED)
    try:
        diff = subprocess.run(
            ["git", "diff", "--name-only", commit, "--", *MEASURED_PATHS, f"benchmarks/{name}.py"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return sorted(diff.stdout.split())


def provenance_line(name: str, provenance: dict) -> str:
    """The line under a benchmark's table: where it was measured, and whether the code it measured changed since."""
    commit = provenance.get("commit", "unknown")
    at = commit.removesuffix(UNCOMMITTED)[:12] + (" (with uncommitted changes)" if commit.endswith(UNCOMMITTED) else "")
    cpu = provenance.get("machine", {}).get("cpu") or "an unrecorded CPU"
    threads = provenance.get("torch_threads", "?")
    where = f"Measured at commit {at} on {cpu}, {threads} torch thread{'' if threads == 1 else 's'}"
    changed = changed_code(name, provenance)
    if changed is None:
        return f"{where}; measured code unknown (git or commit {at} unavailable)."
    if not changed:
        return f"{where}; measured code unchanged since."
    return f"{where}; **measured code changed since** in: {', '.join(f'`{path}`' for path in changed)}."


def block(name: str) -> str:
    """What goes between a benchmark's markers: its table, a blank line, its provenance line."""
    result = json.loads(result_file(name).read_text())
    return benchmark_module(name).readme_table(result) + "\n\n" + provenance_line(name, result["provenance"]) + "\n"


def main() -> None:
    for doc in doc_files():
        text = doc.read_text()
        names = [m.group(2) for m in MARKED.finditer(text)]
        if names:
            doc.write_text(MARKED.sub(lambda m: m.group(1) + block(m.group(2)) + m.group(4), text))
            print(f"{doc.relative_to(ROOT)}: tables of {', '.join(names)} written from benchmarks/results/")


if __name__ == "__main__":
    main()
