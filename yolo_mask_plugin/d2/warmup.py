"""Ultralytics' bias learning-rate and momentum warm-up inside Detectron2's training loop, as a hook."""
from __future__ import annotations

import numpy as np
import torch
from detectron2.engine import HookBase

from yolo_mask_plugin.core.errors import InvalidInputError

BIAS_GROUP = "param_group"  # the param-group key Ultralytics tags its bias group with ("bias")


def split_bias_groups(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> torch.optim.Optimizer:
    """`optimizer` with biases moved to param groups of their own (same settings), tagged as Ultralytics tags its
    bias group (`group["param_group"] == "bias"`), so that `BiasWarmup` can give them their own LR.

    Detectron2's `get_default_optimizer_params` merges biases into the weights' groups when their settings agree.
    A bias is a parameter named "bias" in its module (normalisation biases too), as for SOLVER.WEIGHT_DECAY_BIAS.
    Call it before training starts and before loading optimizer state: it regroups `optimizer` in place, through
    `add_param_group`.
    """
    biases = {id(p) for m in model.modules() for n, p in m.named_parameters(recurse=False) if n == "bias"}
    groups = []
    for group in optimizer.param_groups:
        settings = {k: v for k, v in group.items() if k != "params"}
        for is_bias in (False, True):
            params = [p for p in group["params"] if (id(p) in biases) == is_bias]
            if params:
                groups.append({**settings, "params": params, **({BIAS_GROUP: "bias"} if is_bias else {})})
    optimizer.param_groups.clear()
    for group in groups:
        optimizer.add_param_group(group)
    return optimizer


class BiasWarmup(HookBase):
    """Ultralytics' warm-up of the bias LR and of momentum (`BaseTrainer._do_train`), on top of Detectron2's schedule.

    During the first `warmup_iters` iterations, the bias groups' LR (see `split_bias_groups`) starts
    `warmup_bias_lr` above the LR Detectron2's scheduler gives them and meets it linearly at `warmup_iters`.
    With Detectron2's linear warm-up from SOLVER.WARMUP_FACTOR 0 that is Ultralytics' line: biases fall from
    `warmup_bias_lr` to the scheduled LR while the other groups rise from 0. With `warmup_momentum`, every group that
    has a "momentum" (SGD; AdamW's groups have betas, as in Ultralytics) goes linearly from it to the optimizer's
    momentum.

    Register it before Detectron2's `LRScheduler` hook: it adds the bias offset before each step and takes it off
    after, so the scheduler and checkpoints see the scheduled LR.

    Attributes:
        warmup_iters (float): Length of the warm-up in iterations (optimizer steps).
        warmup_bias_lr (float): Ultralytics' `warmup_bias_lr`, the bias LR at iteration 0 (plus the scheduled one).
        warmup_momentum (float | None): Ultralytics' `warmup_momentum`; None leaves momentum alone.
    """

    def __init__(self, warmup_iters: float, warmup_bias_lr: float, warmup_momentum: float | None = None):
        """Warm up over `warmup_iters` iterations from `warmup_bias_lr` (biases) and `warmup_momentum`."""
        if warmup_iters <= 0:
            raise InvalidInputError(
                f"SOLVER.WARMUP_BIAS_LR / WARMUP_MOMENTUM (LazyConfig: train.warmup_bias_lr / warmup_momentum) need a "
                f"warm-up: its length SOLVER.WARMUP_ITERS (lr_multiplier.warmup_length x train.max_iter) is {warmup_iters}"
            )
        self.warmup_iters, self.warmup_bias_lr, self.warmup_momentum = float(warmup_iters), warmup_bias_lr, warmup_momentum
        self._scheduled_lrs: list[tuple[dict, float]] = []

    def before_train(self) -> None:
        """Refuse an optimizer without bias groups: the warm-up would silently do nothing."""
        if self.warmup_bias_lr and not any(g.get(BIAS_GROUP) == "bias" for g in self.trainer.optimizer.param_groups):
            raise InvalidInputError("bias LR warm-up: the optimizer has no bias param group (build it with split_bias_groups)")

    def before_step(self) -> None:
        """Set this iteration's bias LR and momentum as Ultralytics' `np.interp` does."""
        it = self.trainer.iter
        if it > self.warmup_iters:
            return
        xi = [0.0, self.warmup_iters]
        optimizer = self.trainer.optimizer
        for group in optimizer.param_groups:
            if group.get(BIAS_GROUP) == "bias" and self.warmup_bias_lr:
                self._scheduled_lrs.append((group, group["lr"]))
                group["lr"] += float(np.interp(it, xi, [self.warmup_bias_lr, 0.0]))
            if self.warmup_momentum is not None and "momentum" in group:
                group["momentum"] = float(np.interp(it, xi, [self.warmup_momentum, optimizer.defaults["momentum"]]))

    def after_step(self) -> None:
        """Take the bias offset off again, before the LR scheduler steps and before any checkpoint."""
        for group, lr in self._scheduled_lrs:
            group["lr"] = lr
        self._scheduled_lrs = []
