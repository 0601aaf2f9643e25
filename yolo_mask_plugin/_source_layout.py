"""Make `yolo_mask_plugin.adapters` and `yolo_mask_plugin.configs` importable from a source checkout.

Installed wheels carry `adapters/` and `configs/` inside the package (see setup.py's `package_dir`).
In a source checkout (tests, PYTHONPATH, some editable installs) they sit beside the package instead,
so a meta-path finder maps them, as `detectron2/projects/__init__.py` does for `projects/`.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent
_MAPPED = {"yolo_mask_plugin.adapters": _REPO_ROOT / "adapters", "yolo_mask_plugin.configs": _REPO_ROOT / "configs"}


class _SourceLayoutFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # noqa: D102 (importlib API)
        folder = _MAPPED.get(fullname)
        if folder is None or not folder.is_dir():
            return None
        init = folder / "__init__.py"
        if init.is_file():
            return importlib.util.spec_from_file_location(fullname, init, submodule_search_locations=[str(folder)])
        spec = importlib.util.spec_from_loader(fullname, None, is_package=True)  # data-only folder
        spec.submodule_search_locations = [str(folder)]
        return spec


def install() -> None:
    """Append the finder once; it only answers for names the normal path finder could not find."""
    if not any(isinstance(f, _SourceLayoutFinder) for f in sys.meta_path):
        sys.meta_path.append(_SourceLayoutFinder())


def config_dir() -> Path:
    """The folder holding the YAML configs, installed or in a source checkout."""
    install()
    import yolo_mask_plugin.configs as configs

    return Path(list(configs.__path__)[0])
