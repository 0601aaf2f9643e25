"""Box-relative mask probabilities -> binary masks in an image frame.

The same sampling as Detectron2's `paste_masks_in_image` (each output pixel centre mapped into the box and read
from the R x R probabilities by `grid_sample`, zeros outside), written here because the core may not import
Detectron2; `tests/test_paste.py` holds it equal to Detectron2's on random boxes, boxes crossing the border and
empty sets. Masks are pasted one at a time inside their box (plus one pixel), as Detectron2 does on the CPU.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def paste_masks(
    probs: torch.Tensor, boxes: torch.Tensor, image_hw: tuple[int, int], threshold: float = 0.5
) -> torch.Tensor:
    """Paste box-relative mask probabilities into an image frame, as Detectron2's `paste_masks_in_image`.

    Args:
        probs: (N, R, R) mask probabilities, one square map per box.
        boxes: (N, 4) xyxy boxes in the frame's pixels.
        image_hw: (H, W) of the frame.
        threshold: probability at and above which a pixel is in the mask.

    Returns:
        (N, H, W) bool masks.
    """
    height, width = int(image_hw[0]), int(image_hw[1])
    if probs.ndim != 3 or probs.shape[-1] != probs.shape[-2] or boxes.shape != (len(probs), 4):
        raise ValueError(
            f"paste_masks needs (N, R, R) square probabilities and (N, 4) boxes, got {tuple(probs.shape)} and "
            f"{tuple(boxes.shape)}"
        )
    masks = torch.zeros(len(probs), height, width, dtype=torch.bool, device=probs.device)
    boxes = boxes.float()
    for i, (prob, box) in enumerate(zip(probs, boxes)):
        x0, y0, x1, y1 = box.split(1)
        left = max(int(x0.floor().item()) - 1, 0)
        top = max(int(y0.floor().item()) - 1, 0)
        right = min(int(x1.ceil().item()) + 1, width)
        bottom = min(int(y1.ceil().item()) + 1, height)
        if right <= left or bottom <= top:
            continue
        ys = (torch.arange(top, bottom, device=probs.device, dtype=torch.float32) + 0.5 - y0) / (y1 - y0) * 2 - 1
        xs = (torch.arange(left, right, device=probs.device, dtype=torch.float32) + 0.5 - x0) / (x1 - x0) * 2 - 1
        grid = torch.stack([xs[None, :].expand(len(ys), -1), ys[:, None].expand(-1, len(xs))], dim=2)
        sampled = F.grid_sample(prob[None, None].float(), grid[None], align_corners=False)[0, 0]
        masks[i, top:bottom, left:right] = sampled >= threshold
    return masks
