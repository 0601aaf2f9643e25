"""Every module of the plugin's packages says its role, and every public class, function and method says what it does.

Read from the source (`ast`), so nothing is imported: a missing docstring names its file and line.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import yolo_mask_plugin
import yolo_mask_plugin.adapters

PACKAGE = Path(yolo_mask_plugin.__file__).parent
PACKAGES = {
    "core": PACKAGE / "core",
    "yolo": PACKAGE / "yolo",
    "data": PACKAGE / "data",
    "d2": PACKAGE / "d2",
    "interop": PACKAGE / "interop",
    "adapters": Path(yolo_mask_plugin.adapters.__file__).parent,
    "apps": PACKAGE / "apps",
}


def _public(name: str) -> bool:
    return not name.startswith("_")


def missing_docstrings(path: Path) -> list[str]:
    """`file:line name` of the module (if it has no docstring) and each public definition without one."""
    tree = ast.parse(path.read_text())
    missing = [] if ast.get_docstring(tree) else [f"{path.name}:1 module"]
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for node in tree.body:
        if not isinstance(node, definitions) or not _public(node.name):
            continue
        if not ast.get_docstring(node):
            missing.append(f"{path.name}:{node.lineno} {node.name}")
        if isinstance(node, ast.ClassDef):
            for method in node.body:
                if isinstance(method, definitions) and _public(method.name) and not ast.get_docstring(method):
                    missing.append(f"{path.name}:{method.lineno} {node.name}.{method.name}")
    return missing


@pytest.mark.parametrize("package", list(PACKAGES))
def test_public_names_have_docstrings(package):
    folder = PACKAGES[package]
    missing = [m for path in sorted(folder.rglob("*.py")) for m in missing_docstrings(path)]
    assert not missing, f"{package}: no docstring for {missing}"
