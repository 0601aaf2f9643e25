"""One check for both directions of the checkpoint conversion: Detectron2 and Ultralytics predict alike."""
from __future__ import annotations

import torch
from torchvision.ops import box_iou

from .numerics import network_tolerance


def twins(d2, ultralytics, min_box_iou: float) -> list[tuple[int, int]]:
    """(Detectron2 index, Ultralytics index) pairs, one to one, of the same class with box IoU above `min_box_iou`;
    among several candidates the one with the closest score."""
    similar = (box_iou(d2.pred_boxes.tensor, ultralytics.boxes.xyxy) > min_box_iou) & (
        d2.pred_classes[:, None] == ultralytics.boxes.cls.long()[None]
    )
    pairs: list[tuple[int, int]] = []
    for i in range(len(d2)):
        free = [j for j in torch.nonzero(similar[i]).flatten().tolist() if j not in {b for _, b in pairs}]
        if free:
            pairs.append((i, min(free, key=lambda j: abs(d2.scores[i].item() - ultralytics.boxes.conf[j].item()))))
    return pairs


def mask_ious(d2, ultralytics, pairs: list[tuple[int, int]]) -> torch.Tensor:
    a = d2.pred_masks[[i for i, _ in pairs]]
    b = ultralytics.masks.data.bool()[[j for _, j in pairs]]
    return (a & b).flatten(1).sum(1) / (a | b).flatten(1).sum(1).clamp(min=1)


def assert_same_detections_and_masks(d2, ultralytics, network: torch.nn.Module, min_detections: int = 10) -> None:
    """Detectron2 `Instances` and an Ultralytics `Results` (retina masks) of one image hold the same detections and
    masks: matched one to one by class and box (box IoU > 0.999; fused (Ultralytics) and unfused (Detectron2)
    Conv+BN may order near-equal scores differently), scores within float32 rounding of `network` (the model that
    scored them: BatchNorm fused into the convolutions rounds each weight once more, tests/numerics.py), mask IoU
    >= 0.99 per instance (a mask pixel whose probability is within rounding of 0.5 may flip)."""
    assert len(d2) == len(ultralytics.boxes) > min_detections
    # one to one, by class and box (NMS is per class, and clipping can make two boxes equal)
    pairs = twins(d2, ultralytics, 0.999)
    assert len(pairs) == len(d2), f"Detectron2 detections {set(range(len(d2))) - {i for i, _ in pairs}} have no twin"
    match = [j for _, j in pairs]
    torch.testing.assert_close(d2.scores, ultralytics.boxes.conf[match], atol=network_tolerance(network, 1), rtol=0)
    ious = mask_ious(d2, ultralytics, pairs)
    assert (ious >= 0.99).all(), ious
