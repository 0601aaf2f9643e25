"""Detectron2 / fvcore compatibility: every internal of theirs the plugin must touch, in one place.

Each function wraps one private name for which no public API exists, naming the API that is missing and the
versions checked (detectron2 0.7.2 as sal-detectron2, fvcore 0.1.5.post20221221). `tests/test_compat.py` checks
that no other module of the plugin uses a private Detectron2 or fvcore name.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fvcore.common.registry import Registry

if TYPE_CHECKING:
    from detectron2.engine import DefaultTrainer


def registry_name(registry: Registry) -> str:
    """The name a registry was created with ("BACKBONE", ...).

    Missing public API: fvcore's `Registry` keeps its name only as `_name` (checked: fvcore 0.1.5.post20221221).
    """
    return registry._name


def replace_registered(registry: Registry, name: str, obj: Any) -> None:
    """Register `obj` under `name`, replacing what is registered there.

    Missing public API: fvcore's `Registry.register` refuses a taken name and has no re-registration or removal;
    its entries are the dict `_obj_map` (checked: fvcore 0.1.5.post20221221).
    """
    registry._obj_map[name] = obj


def last_eval_results(trainer: DefaultTrainer) -> dict:
    """The results of the last evaluation `DefaultTrainer`'s EvalHook ran during `train()`; {} if none ran.

    Missing public API: `DefaultTrainer` keeps them only as `_last_eval_results` (`train()` returns them only when
    `TEST.EXPECTED_RESULTS` is set) (checked: detectron2 0.7.2).
    """
    return getattr(trainer, "_last_eval_results", None) or {}


def set_last_eval_results(trainer: DefaultTrainer, results: dict) -> dict:
    """Record `results` where `DefaultTrainer.train()` looks for the last evaluation (`verify_results` and
    `last_eval_results` read it), as DefaultTrainer's own EvalHook function does; returns `results`.

    Missing public API: an EvalHook function other than DefaultTrainer's own (here: evaluating the EMA model) can
    hand its results to `train()` only through `_last_eval_results` (checked: detectron2 0.7.2).
    """
    trainer._last_eval_results = results
    return results
