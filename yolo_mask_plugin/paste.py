"""Box-relative mask probabilities -> binary masks in an image frame, with Detectron2's own paste."""
from __future__ import annotations

import torch
from detectron2.layers.mask_ops import paste_masks_in_image


def paste_masks(probs: torch.Tensor, boxes: torch.Tensor, image_hw: tuple[int, int], threshold: float = 0.5):
    """(N, R, R) probabilities of (N, 4) xyxy boxes in an (H, W) frame -> (N, H, W) bool masks."""
    if len(probs) == 0:
        return torch.zeros(0, *image_hw, dtype=torch.bool, device=probs.device)
    return paste_masks_in_image(probs, boxes, image_hw, threshold=threshold)
