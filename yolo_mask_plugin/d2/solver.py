"""The optimizer of a yacs config: Detectron2's SGD, or AdamW, which Ultralytics' YOLO recipes train with.

Detectron2's `build_optimizer` builds SGD only and says to override `DefaultTrainer.build_optimizer` for another;
`yolo-mask train` does, with this. Both use Detectron2's parameter groups (`get_default_optimizer_params`:
SOLVER.WEIGHT_DECAY_NORM for normalisation layers, SOLVER.WEIGHT_DECAY_BIAS for biases) and its gradient clipping.
"""
from __future__ import annotations

import torch
from detectron2.config import CfgNode
from detectron2.solver import build_optimizer as build_sgd
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping

from yolo_mask_plugin.core.errors import InvalidInputError

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
    if name == "SGD":
        return build_sgd(cfg, model)
    if name != "ADAMW":
        raise InvalidInputError(f"SOLVER.OPTIMIZER={name!r}: expected one of {OPTIMIZERS}")
    params = get_default_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
    )
    adamw = torch.optim.AdamW(
        params, lr=cfg.SOLVER.BASE_LR, betas=(cfg.SOLVER.MOMENTUM, 0.999), weight_decay=cfg.SOLVER.WEIGHT_DECAY
    )
    return maybe_add_gradient_clipping(cfg, adamw)
