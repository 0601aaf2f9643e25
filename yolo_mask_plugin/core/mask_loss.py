"""The mask loss, framework-neutral: per-pixel sigmoid BCE against ground truth cropped to each box.

Targets are made exactly as Detectron2's `mask_rcnn_loss` makes them (`BitMasks.crop_and_resize`: RoIAlign
of the full-resolution instance mask, aligned=True, thresholded at 0.5), so both shells train the same head
on the same targets. `crop_mask_targets_from_crops` gives the same targets from each instance's mask cropped to
where it is non-zero, so a batch never holds (or converts to float) a full-resolution mask per instance.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from yolo_mask_plugin.core.mask_branch import select_class


def crop_mask_targets(
    gt_masks: torch.Tensor, gt_index: torch.Tensor, boxes: torch.Tensor, resolution: int
) -> torch.Tensor:
    """Mask targets for boxes: each box's instance mask, RoIAligned to R x R and thresholded at 0.5.

    Args:
        gt_masks: (M, H, W) instance masks.
        gt_index: (N,) for each box, the index of its instance mask.
        boxes: (N, 4) xyxy boxes in mask pixels.
        resolution: R.

    Returns:
        (N, R, R) binary targets, in `boxes`' dtype.
    """
    rois = torch.cat([gt_index.to(boxes.dtype)[:, None], boxes], dim=1)
    cropped = roi_align(gt_masks[:, None].to(boxes.dtype), rois, resolution, 1.0, 0, aligned=True)
    return (cropped[:, 0] >= 0.5).to(boxes.dtype)


def crop_mask_targets_from_crops(
    crops: list[torch.Tensor], origins: torch.Tensor, gt_index: torch.Tensor, boxes: torch.Tensor, resolution: int
) -> torch.Tensor:
    """`crop_mask_targets` of the full masks, computed from crops of them.

    Mask m is zero outside `crops[m]`, except where the crop reaches the image border. Each crop needs a zero
    column / row on every side that is not the image border (RoIAlign repeats a map's edge pixels for samples
    within one pixel outside it, as it repeats the image's edge on the full mask).

    Args:
        crops: per instance, its (h, w) mask crop.
        origins: (M, 2) each crop's top-left pixel (x, y) in the image.
        gt_index: (N,) for each box, the index of its instance mask.
        boxes: (N, 4) xyxy boxes in image pixels.
        resolution: R.

    Returns:
        (N, R, R) binary targets, equal to `crop_mask_targets` of the full masks.
    """
    targets = boxes.new_zeros(len(boxes), resolution, resolution)
    for m in gt_index.unique().tolist():
        rows = torch.nonzero(gt_index == m).squeeze(1)
        crop = crops[m]
        if crop.numel() == 0:
            continue
        shifted = boxes[rows] - origins[m].to(boxes.dtype).repeat(2)
        rois = torch.cat([shifted.new_zeros(len(rows), 1), shifted], dim=1)
        cropped = roi_align(crop[None, None].to(boxes.dtype), rois, resolution, 1.0, 0, aligned=True)
        targets[rows] = (cropped[:, 0] >= 0.5).to(boxes.dtype)
    return targets


def mask_bce_loss(logits: torch.Tensor, targets: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Mean per-pixel sigmoid BCE of each box's mask logits against its target.

    Args:
        logits: (N, C, R, R) mask logits (C = 1 for a class-agnostic head).
        targets: (N, R, R) binary targets.
        classes: (N,) each box's class, which picks its map from the C.

    Returns:
        The scalar loss (0, still on the graph, for N = 0).
    """
    if len(logits) == 0:
        return logits.sum() * 0  # keeps the graph (and DDP) whole on a batch without instances
    return F.binary_cross_entropy_with_logits(select_class(logits, classes), targets, reduction="mean")
