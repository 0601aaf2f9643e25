"""Framework internals stay in the compat modules; an Ultralytics outside the supported range is refused in one line.

The scan reads the library code (yolo_mask_plugin/, adapters/, configs/) with `ast` and reports, outside
`yolo_mask_plugin/yolo/compat.py` (Ultralytics) and `yolo_mask_plugin/d2/compat.py` (Detectron2, fvcore):
  * any import of `unittest.mock` (or `mock`);
  * an import of a private name (`_x`, not a dunder) from ultralytics, detectron2 or fvcore, or of a private module;
  * an attribute `obj._x` (or `getattr(obj, "_x")`) whose name the library itself never defines or assigns:
    our own `self._cache` passes, `self._check_is_pytorch_model()` inherited from Ultralytics does not;
  * a private name a class of ours defines (a method, or `self._x` in a method) that a framework base class in its
    MRO also has: overriding `Format._format_segments` or setting `Backbone._out_features` is using an internal.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from yolo_mask_plugin.yolo.compat import (
    OLDEST_ULTRALYTICS,
    ULTRALYTICS_REQUIREMENT,
    UnsupportedUltralyticsError,
    check_ultralytics_version,
)

ROOT = Path(__file__).resolve().parents[1]
LIBRARY_DIRS = ("yolo_mask_plugin", "adapters", "configs")
COMPAT_MODULES = ("yolo_mask_plugin/yolo/compat.py", "yolo_mask_plugin/d2/compat.py")
# folders installed under another package name (setup.py's package_dir)
PACKAGE_OF_DIR = {"adapters": "yolo_mask_plugin.adapters", "configs": "yolo_mask_plugin.configs"}
FRAMEWORKS = ("ultralytics", "detectron2", "fvcore")
ATTRIBUTE_FUNCTIONS = ("getattr", "setattr", "hasattr", "delattr")


def is_private(name: str) -> bool:
    return len(name) > 1 and name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_framework(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in FRAMEWORKS


def library_files(root: Path, dirs=LIBRARY_DIRS, exempt=COMPAT_MODULES) -> list[Path]:
    return sorted(p for d in dirs for p in (root / d).rglob("*.py") if p.relative_to(root).as_posix() not in exempt)


def own_names(trees: list[ast.AST]) -> set[str]:
    """Every attribute name the library defines: methods and class attributes of its classes, and attributes it
    stores (`self._cache = ...`). A module-level `_helper` is not one: no other object has it as an attribute."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        names.add(item.name)
                    elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                        targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                        names.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return names


def attribute_name(node: ast.AST) -> str | None:
    """`x` of `obj.x`, or of `getattr(obj, "x")` (setattr, hasattr, delattr)."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ATTRIBUTE_FUNCTIONS
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
        return node.args[1].value
    return None


def file_violations(path: str, tree: ast.AST, own: set[str]) -> list[str]:
    found = []
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("unittest.mock", "mock") or alias.name.startswith("unittest.mock."):
                    found.append(f"{where}: imports {alias.name}")
                if is_framework(alias.name) and any(map(is_private, alias.name.split("."))):
                    found.append(f"{where}: imports the private module {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [alias.name for alias in node.names]
            if node.module.startswith("unittest.mock") or node.module == "mock" or (
                    node.module == "unittest" and "mock" in names):
                found.append(f"{where}: imports unittest.mock")
            if is_framework(node.module):
                if any(map(is_private, node.module.split("."))):
                    found.append(f"{where}: imports from the private module {node.module}")
                found += [f"{where}: imports the private {node.module}.{n}" for n in names if is_private(n)]
        else:
            name = attribute_name(node)
            if name and is_private(name) and name not in own:
                found.append(f"{where}: uses the private attribute {name}, which the library does not define")
    return found


def private_definitions(cls_node: ast.ClassDef) -> dict[str, int]:
    """Private names a class body defines: its methods, and `self._x` it stores in them (name: line)."""
    defined = {}
    for item in cls_node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if is_private(item.name):
                defined[item.name] = item.lineno
            for node in ast.walk(item):
                if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and is_private(node.attr)
                        and isinstance(node.value, ast.Name) and node.value.id == "self"):
                    defined.setdefault(node.attr, node.lineno)
    return defined


def framework_private_names(cls: type) -> dict[str, str]:
    """Private names the framework classes in `cls`'s MRO define or use on `self` (name: class)."""
    names = {}
    for base in cls.__mro__[1:]:
        if not is_framework(base.__module__):
            continue
        names.update({n: base.__qualname__ for n in vars(base) if is_private(n)})
        try:
            source = textwrap.dedent(inspect.getsource(base))
        except (OSError, TypeError):  # a class without Python source
            continue
        for node in ast.walk(ast.parse(source)):
            if (isinstance(node, ast.Attribute) and is_private(node.attr) and isinstance(node.value, ast.Name)
                    and node.value.id == "self"):
                names.setdefault(node.attr, base.__qualname__)
    return names


def module_name(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    head = PACKAGE_OF_DIR.get(parts[0], parts[0])
    return ".".join([head, *parts[1:]])


def override_violations(relative: Path, tree: ast.Module) -> list[str]:
    found = []
    for cls_node in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        defined = private_definitions(cls_node)
        if not defined:
            continue
        cls = getattr(importlib.import_module(module_name(relative)), cls_node.name)
        theirs = framework_private_names(cls)
        found += [
            f"{relative}:{line}: {cls_node.name} defines {name}, a private name of {theirs[name]}"
            for name, line in defined.items() if name in theirs
        ]
    return found


def find_violations(root: Path, dirs=LIBRARY_DIRS, exempt=COMPAT_MODULES) -> list[str]:
    files = library_files(root, dirs, exempt)
    trees = {p.relative_to(root): ast.parse(p.read_text(), str(p)) for p in files}
    own = own_names(list(trees.values()))
    found = []
    for relative, tree in trees.items():
        found += file_violations(str(relative), tree, own)
        found += override_violations(relative, tree)
    return found


def test_library_code_uses_no_framework_internals_outside_the_compat_modules():
    assert library_files(ROOT), "no library files found"
    assert find_violations(ROOT) == []


PLANTED = {
    "uses_mock.py": "from unittest import mock\n",
    "uses_mock_patch.py": "from unittest.mock import patch\n",
    "imports_private.py": "from ultralytics.engine.model import _private_helper\n",
    "imports_private_module.py": "import detectron2._C\n",
    "inherited_private.py": textwrap.dedent("""
        from ultralytics.engine.model import Model

        class M(Model):
            def export(self):
                self._check_is_pytorch_model()
        """),
    "registry_private.py": "def replace(registry, name, obj):\n    registry._obj_map[name] = obj\n",
    "getattr_private.py": "def results(trainer):\n    return getattr(trainer, '_last_eval_results', None)\n",
    "shadowed_private.py": "def _inference(x):\n    return x\n\n\ndef decode(head, raw):\n"
                           "    return head._inference(raw)\n",
    "overrides_private.py": textwrap.dedent("""
        from ultralytics.data.augment import Format

        class F(Format):
            def _format_segments(self, instances, cls, w, h):
                return super()._format_segments(instances, cls, w, h)
        """),
    "sets_private.py": textwrap.dedent("""
        from detectron2.modeling import Backbone

        class B(Backbone):
            def __init__(self):
                super().__init__()
                self._out_features = ["p3"]
        """),
    "own_private.py": textwrap.dedent("""
        class Cache:
            def __init__(self):
                self._entries = {}

            def _key(self, x):
                return str(x)

            def get(self, x):
                return self._entries.get(self._key(x))
        """),
}


def test_scan_reports_each_planted_use_of_an_internal_and_passes_our_own_private_names(tmp_path, monkeypatch):
    package = tmp_path / "planted"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, code in PLANTED.items():
        (package / name).write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    found = find_violations(tmp_path, dirs=("planted",), exempt=())
    for name in PLANTED:
        expected = 0 if name == "own_private.py" else 1
        hits = [v for v in found if v.startswith(f"planted/{name}:")]
        assert len(hits) == expected, (name, hits)
    assert find_violations(tmp_path, dirs=("planted",), exempt=tuple(f"planted/{n}" for n in PLANTED)) == []


def test_setup_py_declares_and_ci_tests_the_supported_ultralytics_range():
    setup_py = (ROOT / "setup.py").read_text()
    assert re.findall(r'"(ultralytics[<>=][^"]*)"', setup_py) == [ULTRALYTICS_REQUIREMENT]
    makefile = (ROOT / "Makefile").read_text()
    assert re.findall(r"^OLDEST_ULTRALYTICS \?= (\S+)$", makefile, re.M) == [".".join(map(str, OLDEST_ULTRALYTICS))]
    pinned = re.findall(r"^ultralytics==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert len(pinned) == 1
    check_ultralytics_version(pinned[0])


@pytest.mark.parametrize("version, supported", [
    ("8.4.174", False), ("8.4.175", True), ("8.4.190", True), ("8.4.999", True), ("8.4.200.dev0", True),
    ("8.5.0", False), ("8.3.250", False), ("9.0.0", False),
])
def test_version_check_accepts_exactly_the_declared_range(version, supported):
    if supported:
        check_ultralytics_version(version)
    else:
        with pytest.raises(UnsupportedUltralyticsError, match=re.escape(f"Ultralytics {version} is installed")):
            check_ultralytics_version(version)


@pytest.mark.parametrize("version", ["8.4.0", "8.5.0"])
def test_unsupported_ultralytics_stops_the_import_in_one_line(version, tmp_path):
    """A stand-in `ultralytics` package of that version first on the path, in a fresh interpreter."""
    (tmp_path / "ultralytics").mkdir()
    (tmp_path / "ultralytics" / "__init__.py").write_text(f"__version__ = {version!r}\n")
    result = subprocess.run(
        [sys.executable, "-c", "import yolo_mask_plugin.adapters"], capture_output=True, text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"yolo_mask_plugin.yolo.compat.UnsupportedUltralyticsError: yolo-mask-plugin supports "
        f"{ULTRALYTICS_REQUIREMENT}, but Ultralytics {version} is installed (pip install '{ULTRALYTICS_REQUIREMENT}')"
    )
