"""One check for both directions of the checkpoint conversion: Detectron2 and Ultralytics predict alike."""
from __future__ import annotations

import torch
from torchvision.ops import box_iou


def assert_same_detections_and_masks(d2, ultralytics, min_detections: int = 10) -> None:
    """Detectron2 `Instances` and an Ultralytics `Results` (retina masks) of one image hold the same detections and
    masks: matched one to one by class and box (box IoU > 0.999; fused (Ultralytics) and unfused (Detectron2)
    Conv+BN may order near-equal scores differently), scores within 1e-3, mask IoU >= 0.99 per instance."""
    assert len(d2) == len(ultralytics.boxes) > min_detections
    # one to one, by class and box (NMS is per class, and clipping can make two boxes equal)
    similar = (box_iou(d2.pred_boxes.tensor, ultralytics.boxes.xyxy) > 0.999) & (
        d2.pred_classes[:, None] == ultralytics.boxes.cls.long()[None]
    )
    match = []
    for i in range(len(d2)):
        free = [j for j in torch.nonzero(similar[i]).flatten().tolist() if j not in match]
        assert free, f"Detectron2 detection {i} has no counterpart in Ultralytics' results"
        match.append(min(free, key=lambda j: abs(d2.scores[i].item() - ultralytics.boxes.conf[j].item())))
    torch.testing.assert_close(d2.scores, ultralytics.boxes.conf[match], atol=1e-3, rtol=0)
    a, b = d2.pred_masks, ultralytics.masks.data.bool()[match]
    mask_iou = (a & b).flatten(1).sum(1) / (a | b).flatten(1).sum(1).clamp(min=1)
    assert (mask_iou >= 0.99).all(), mask_iou
