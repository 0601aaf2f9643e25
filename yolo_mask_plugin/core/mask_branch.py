"""`RoIMaskBranch`: the whole framework-neutral mask branch, from feature maps and boxes to mask logits.

1x1 laterals bring the levels to one width, `MultiLevelRoIAlign` pools a KxK grid per box, `FCNMaskHead`
predicts the mask logits. The Ultralytics model owns one; Detectron2 builds the same three parts from its
config (`YOLOMaskROIHeads`), so weights move between the two by name (`laterals.*`, `fcn.*`).
"""
from __future__ import annotations

import torch
from torch import nn

from yolo_mask_plugin.core.fcn_head import FCNMaskHead, LevelLaterals
from yolo_mask_plugin.core.roi_align import MultiLevelRoIAlign

# What a YOLO-mask model gets unless its yaml says otherwise (a `mask_head:` mapping with these keys).
MASK_HEAD_DEFAULTS = {
    # Narrower than Mask R-CNN's 256, so the head stays cheap next to a YOLO-n: the branch's FLOPs against
    # yolo11n's at both widths are benchmarks/results/mask_head_cost.json (table in docs/benchmarks.md).
    "lateral_channels": 64,  # YOLO's P3/P4/P5 differ in width; 1x1 convs bring them to this one
    "conv_dim": 64,
    "num_conv": 4,
    "pooler_resolution": 14,
    "output_resolution": 28,
    "sampling_ratio": 0,
    "class_agnostic": True,
    "norm": "GN",  # YOLO's feature scale depends on the model and its training; GN makes it not matter
    # Also pool YOLO's stride-4 body map (P2) next to the detect head's maps: boxes under 112 px (the FPN
    # rule) then pool a grid twice as fine. Read by the model that feeds the branch, not by the branch. On the
    # embedded data, with the same detector, P2 raised Boundary AP (+8.2) and mask AP (+4.8) over P3-P5 at every
    # seed, and a 56 px output (two upsamplings) scored below 28 px at 1.9x the training time
    # (benchmarks/results/mask_resolution.json).
    "pool_p2": True,
}


class RoIMaskBranch(nn.Module):
    """Laterals + multi-level RoIAlign + FCN head: feature maps and boxes in, mask logits out.

    Example::

        branch = RoIMaskBranch(in_channels=[64, 128, 256], strides=[8, 16, 32], num_classes=80)
        probs = branch.mask_probs(features, boxes=[boxes_xyxy], classes=[classes])  # [(N, 28, 28)]
    """

    def __init__(self, in_channels: list[int], strides: list[int], num_classes: int, **spec):
        """
        Args:
            in_channels, strides: width and stride of each pooled level, finest first.
            num_classes: the detector's classes (one logit map each unless `class_agnostic`).
            spec: keys of `MASK_HEAD_DEFAULTS`; missing ones take the default.
        """
        super().__init__()
        unknown = sorted(set(spec) - set(MASK_HEAD_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown mask_head keys {unknown}; known: {sorted(MASK_HEAD_DEFAULTS)}")
        self.spec = {**MASK_HEAD_DEFAULTS, **spec}
        s = self.spec
        self.laterals = LevelLaterals(list(in_channels), s["lateral_channels"])
        self.pooler = MultiLevelRoIAlign(list(strides), s["pooler_resolution"], s["sampling_ratio"])
        self.fcn = FCNMaskHead(
            in_channels=s["lateral_channels"],
            conv_dim=s["conv_dim"],
            num_conv=s["num_conv"],
            pooler_resolution=s["pooler_resolution"],
            output_resolution=s["output_resolution"],
            num_classes=1 if s["class_agnostic"] else num_classes,
            norm=s["norm"],
        )

    def forward(self, features: list[torch.Tensor], boxes: list[torch.Tensor]) -> torch.Tensor:
        """Predict mask logits for boxes.

        Args:
            features: the (B, C_l, H_l, W_l) maps pooled, finest first.
            boxes: per image, (N_i, 4) xyxy boxes in input pixels.

        Returns:
            (sum N_i, C, R, R) mask logits, in the order of the boxes (C = 1 when class-agnostic).
        """
        return self.fcn(self.pooler(self.laterals(features), boxes))

    def mask_probs(
        self, features: list[torch.Tensor], boxes: list[torch.Tensor], classes: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Mask probabilities of boxes, each from its class's map (the only one when class-agnostic).

        Args:
            features: the (B, C_l, H_l, W_l) maps pooled, finest first.
            boxes: per image, (N_i, 4) xyxy boxes in input pixels.
            classes: per image, the (N_i,) class of each box.

        Returns:
            Per image, (N_i, R, R) mask probabilities.
        """
        probs = select_class(self(features, boxes), torch.cat(classes)).sigmoid()
        return list(probs.split([b.shape[0] for b in boxes]))  # .shape: traced as a size, not a constant


def select_class(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Each row's mask map: the only one when C == 1, else its class's.

    Args:
        logits: (N, C, R, R) mask logits.
        classes: (N,) class of each row.

    Returns:
        (N, R, R) logits.
    """
    if logits.shape[1] == 1:
        return logits[:, 0]
    return logits[torch.arange(len(logits), device=logits.device), classes.long()]
