"""Ultralytics' recipe pieces Detectron2 lacks, added to its loop from a yacs or a LazyConfig config.

One function places the hooks (`add_recipe_hooks`) for both config kinds; `yacs_recipe` and `lazy_recipe` read each
kind's spelling of the same settings, `lazy_clip_gradients` the LazyConfig spelling of SOLVER.CLIP_GRADIENTS:

    yacs                              LazyConfig
    MODEL_EMA.ENABLED/DECAY/TAU       train.model_ema = dict(enabled=True, decay=0.9999, tau=2000)
    SOLVER.WARMUP_BIAS_LR             train.warmup_bias_lr = 0.1
    SOLVER.WARMUP_MOMENTUM            train.warmup_momentum = 0.8
    SOLVER.WARMUP_ITERS               lr_multiplier.warmup_length x train.max_iter
    SOLVER.CLIP_GRADIENTS.*           train.clip_gradients = dict(enabled=True, clip_type="full_model", clip_value=10.0)
"""
from __future__ import annotations

from typing import Any

import torch
from detectron2.config import CfgNode
from detectron2.engine import HookBase, hooks
from omegaconf import DictConfig

from yolo_mask_plugin.core.errors import ConfigKeyError, InvalidInputError
from yolo_mask_plugin.d2.ema import ModelEMAHook
from yolo_mask_plugin.d2.warmup import BiasWarmup


def yacs_recipe(cfg: CfgNode) -> dict[str, Any]:
    """`add_recipe_hooks` arguments from a yacs config's MODEL_EMA.* and SOLVER.WARMUP_* keys."""
    ema = cfg.MODEL_EMA
    return dict(
        model_ema=dict(enabled=ema.ENABLED, decay=ema.DECAY, tau=ema.TAU),
        warmup_iters=cfg.SOLVER.WARMUP_ITERS,
        warmup_bias_lr=cfg.SOLVER.WARMUP_BIAS_LR,
        warmup_momentum=cfg.SOLVER.WARMUP_MOMENTUM,
        output_dir=cfg.OUTPUT_DIR,
    )


def lazy_recipe(cfg: DictConfig) -> dict[str, Any]:
    """`add_recipe_hooks` arguments from a LazyConfig's `train.model_ema`, `train.warmup_bias_lr`,
    `train.warmup_momentum` (absent: off) and its `lr_multiplier.warmup_length`."""
    train = cfg.train
    warmup_bias_lr, warmup_momentum = train.get("warmup_bias_lr") or 0.0, train.get("warmup_momentum")
    warmup_iters = 0.0
    if warmup_bias_lr or warmup_momentum is not None:
        if "warmup_length" not in cfg.lr_multiplier:
            raise InvalidInputError(
                "train.warmup_bias_lr / train.warmup_momentum need a warm-up: lr_multiplier has no warmup_length "
                "(use detectron2.solver.WarmupParamScheduler)"
            )
        warmup_iters = cfg.lr_multiplier.warmup_length * train.max_iter
    return dict(
        model_ema=dict(train.get("model_ema") or {}),
        warmup_iters=warmup_iters,
        warmup_bias_lr=warmup_bias_lr,
        warmup_momentum=warmup_momentum,
        output_dir=train.output_dir,
    )


def lazy_clip_gradients(cfg: DictConfig) -> CfgNode:
    """A SOLVER.CLIP_GRADIENTS node from a LazyConfig's `train.clip_gradients` dict (absent: disabled).

    Keys as the yacs ones in lower case: enabled, clip_type ("value", "norm", "full_model"), clip_value, norm_type.
    """
    clip = CfgNode({"ENABLED": False, "CLIP_TYPE": "full_model", "CLIP_VALUE": 10.0, "NORM_TYPE": 2.0})
    for key, value in (cfg.train.get("clip_gradients") or {}).items():
        if key.upper() not in clip:
            raise ConfigKeyError(f"train.clip_gradients.{key}: unknown key, expected one of {[k.lower() for k in clip]}")
        clip[key.upper()] = value
    return clip


def add_recipe_hooks(
    hook_list: list[HookBase | None],
    model: torch.nn.Module,
    *,
    model_ema: dict[str, Any],
    warmup_iters: float,
    warmup_bias_lr: float,
    warmup_momentum: float | None,
    output_dir: str | None,
) -> ModelEMAHook | None:
    """Insert the enabled pieces into `hook_list` (Detectron2's hooks) just before its `LRScheduler` hook, and return
    the EMA hook (None when EMA is off): its `model` is the one to evaluate.

    `BiasWarmup` must run before the scheduler (see its docstring); the EMA hook before the checkpointer and the
    evaluation, so that both see this iteration's average.
    """
    added: list[HookBase] = []
    if warmup_bias_lr or warmup_momentum is not None:
        added.append(BiasWarmup(warmup_iters, warmup_bias_lr, warmup_momentum))
    ema_hook = None
    if model_ema.get("enabled"):
        settings = {k: model_ema[k] for k in ("decay", "tau") if k in model_ema}
        ema_hook = ModelEMAHook(model, output_dir=output_dir, **settings)
        added.append(ema_hook)
    at = next((i for i, h in enumerate(hook_list) if isinstance(h, hooks.LRScheduler)), None)
    if at is None:
        raise ValueError("the hooks have no LRScheduler hook to place the recipe's hooks before")
    hook_list[at:at] = added
    return ema_hook
