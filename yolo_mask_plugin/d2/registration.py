"""Idempotent registration in Detectron2's registries.

Detectron2's `Registry.register` raises "already registered" when a module runs twice (importlib.reload,
a notebook re-running an import cell, the same file reached under two import paths). Registering the
same definition again replaces the old entry; a different class under a taken name still fails.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from fvcore.common.registry import Registry

from yolo_mask_plugin.d2.compat import registry_name, replace_registered

T = TypeVar("T")


def register_once(registry: Registry) -> Callable[[T], T]:
    """Decorator like `registry.register()`, but a re-run of the same definition is not an error."""

    def deco(obj: T) -> T:
        name = obj.__name__
        if name not in registry:
            registry.register(obj)
            return obj
        existing = registry.get(name)
        if (existing.__module__, existing.__qualname__) != (obj.__module__, obj.__qualname__):
            raise KeyError(
                f"An object named {name!r} from {existing.__module__} is already registered in "
                f"'{registry_name(registry)}'; "
                f"cannot also register {obj.__module__}.{obj.__qualname__}"
            )
        replace_registered(registry, name, obj)
        return obj

    return deco
