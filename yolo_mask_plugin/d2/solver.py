"""The optimizer of a yacs config: Detectron2's SGD, or AdamW, which Ultralytics' YOLO recipes train with.

Detectron2's `build_optimizer` builds SGD only and says to override `DefaultTrainer.build_optimizer` for another;
`yolo-mask train` does, with this. Both use Detectron2's parameter groups (`get_default_optimizer_params`:
SOLVER.WEIGHT_DECAY_NORM for normalisation layers, SOLVER.WEIGHT_DECAY_BIAS for biases) and its gradient clipping
(plus CLIP_TYPE "full_model", `d2/clipping.py`); biases get groups of their own for SOLVER.WARMUP_BIAS_LR.
"""
from __future__ import annotations

import torch
from detectron2.config import CfgNode
from detectron2.solver import build_optimizer as build_sgd
from detectron2.solver.build import get_default_optimizer_params

from yolo_mask_plugin.core.errors import InvalidInputError
from yolo_mask_plugin.d2.clipping import maybe_add_gradient_clipping
from yolo_mask_plugin.d2.warmup import split_bias_groups

OPTIMIZERS = ("SGD", "ADAMW")


def build_optimizer(cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Build the optimizer SOLVER.OPTIMIZER names: "SGD" (Detectron2's `build_optimizer`) or "ADAMW".

    AdamW runs at SOLVER.BASE_LR with betas (SOLVER.MOMENTUM, 0.999) and decoupled SOLVER.WEIGHT_DECAY, as
    Ultralytics builds it (its `momentum` is beta1).

    Args:
        cfg: the config.
        model: the model whose parameters it optimises.

    Returns:
        The optimizer.
    """
    name = cfg.SOLVER.OPTIMIZER
    if name not in OPTIMIZERS:
        raise InvalidInputError(f"SOLVER.OPTIMIZER={name!r}: expected one of {OPTIMIZERS}")
    optimizer = build_sgd(_without_clipping(cfg), model) if name == "SGD" else _build_adamw(cfg, model)
    if cfg.SOLVER.WARMUP_BIAS_LR:
        optimizer = split_bias_groups(optimizer, model)  # BiasWarmup's groups
    return maybe_add_gradient_clipping(cfg.SOLVER.CLIP_GRADIENTS, optimizer)


def _without_clipping(cfg: CfgNode) -> CfgNode:
    """`cfg` with SOLVER.CLIP_GRADIENTS off: Detectron2's build_optimizer would refuse CLIP_TYPE "full_model"."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = False
    return cfg


def _build_adamw(cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW on Detectron2's parameter groups, as Ultralytics builds it."""
    params = get_default_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
    )
    return torch.optim.AdamW(
        params, lr=cfg.SOLVER.BASE_LR, betas=(cfg.SOLVER.MOMENTUM, 0.999), weight_decay=cfg.SOLVER.WEIGHT_DECAY
    )
