"""Masks for the detections NMS kept: the one post-NMS step every inference path runs.

The predictor, the validator, the comparison, the benchmarks and the exported graph all turn NMS rows into masks
here, so a mask is always predicted for, and pasted into, the same clipped box.
"""
from __future__ import annotations

import torch

from yolo_mask_plugin.core.mask_branch import RoIMaskBranch


def clip_boxes_(boxes: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
    """Clip xyxy boxes to a frame in place, as Detectron2 clips them before its mask head.

    Args:
        boxes: (N, 4) xyxy boxes, changed in place.
        image_hw: (H, W) of the frame.

    Returns:
        `boxes` itself.
    """
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, image_hw[1])
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, image_hw[0])
    return boxes


def detection_mask_probs(
    branch: RoIMaskBranch,
    features: list[torch.Tensor],
    boxes: list[torch.Tensor],
    classes: list[torch.Tensor],
    input_hw: tuple[int, int],
) -> list[torch.Tensor]:
    """Mask probabilities for the boxes and classes NMS kept, per image.

    The boxes are clipped to the input in place first (pass views of the NMS rows), so callers paste each mask
    into the box they keep.

    Args:
        branch: the mask branch.
        features: the (B, C_l, H_l, W_l) maps `branch` pools, finest first.
        boxes: per image, (N_i, 4) xyxy boxes in input pixels; clipped to `input_hw` in place.
        classes: per image, the (N_i,) class indices of those boxes.
        input_hw: (H, W) of the network input.

    Returns:
        Per image, (N_i, R, R) mask probabilities, R the branch's output resolution.
    """
    for b in boxes:
        clip_boxes_(b, input_hw)
    return branch.mask_probs(features, boxes, classes)
