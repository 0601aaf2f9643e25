"""Detectron2's SOLVER.CLIP_GRADIENTS plus CLIP_TYPE "full_model": Ultralytics' clipping of the whole model's norm."""
from __future__ import annotations

import torch
from detectron2.config import CfgNode
from detectron2.solver.build import maybe_add_gradient_clipping as add_per_parameter_clipping

from yolo_mask_plugin.core.errors import InvalidInputError

CLIP_TYPES = ("value", "norm", "full_model")


def _with_full_model_clipping(optimizer_type: type, max_norm: float, norm_type: float) -> type:
    """A subclass of `optimizer_type` whose `step` first clips the norm of all its parameters' gradients together."""

    def step(self, closure=None):
        params = [p for group in self.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type)
        return super(clipped, self).step(closure)

    clipped = type(optimizer_type.__name__ + "WithFullModelGradientClip", (optimizer_type,), {"step": step})
    return clipped


def maybe_add_gradient_clipping(clip: CfgNode, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """`optimizer` clipping its gradients as `clip` (a SOLVER.CLIP_GRADIENTS node) says, before every step.

    CLIP_TYPE "value" and "norm" (per parameter) are Detectron2's. "full_model" clips the norm over all parameters
    at once, as Ultralytics' `BaseTrainer.optimizer_step` does (`clip_grad_norm_(model.parameters(), 10.0)`), and as
    Detectron2's DETR and Mask2Former projects spell it. Under AMP, `GradScaler.step` unscales before `step`, so the
    norm is the true one. The instance's class is changed in place, as Detectron2 does for its own clipping.
    """
    if not clip.ENABLED:
        return optimizer
    if clip.CLIP_TYPE not in CLIP_TYPES:
        raise InvalidInputError(f"SOLVER.CLIP_GRADIENTS.CLIP_TYPE={clip.CLIP_TYPE!r}: expected one of {CLIP_TYPES}")
    if clip.CLIP_TYPE != "full_model":
        return add_per_parameter_clipping(CfgNode({"SOLVER": {"CLIP_GRADIENTS": clip}}), optimizer)
    optimizer.__class__ = _with_full_model_clipping(type(optimizer), clip.CLIP_VALUE, clip.NORM_TYPE)
    return optimizer
