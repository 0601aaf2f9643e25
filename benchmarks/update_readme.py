"""Write every benchmark's table into README.md from its committed result JSON.

README.md marks each table with `<!-- benchmark: NAME -->` ... `<!-- /benchmark -->`; between them goes
`benchmarks/NAME.py`'s `readme_table` of its result (`benchmarks/results/NAME.json`, or `NAME/results.json` for a
benchmark that keeps a folder). tests/test_readme_numbers.py checks that the
README holds exactly these tables.

    python benchmarks/update_readme.py
"""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"(<!-- benchmark: (\w+) -->\n)(.*?)(<!-- /benchmark -->)", re.S)  # to the first end mark


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


def table(name: str) -> str:
    return benchmark_module(name).readme_table(json.loads(result_file(name).read_text()))


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    names = [m.group(2) for m in MARKED.finditer(text)]
    readme.write_text(MARKED.sub(lambda m: m.group(1) + table(m.group(2)) + "\n" + m.group(4), text))
    print(f"README.md: tables of {', '.join(names)} written from benchmarks/results/")


if __name__ == "__main__":
    main()
