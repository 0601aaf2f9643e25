"""Ultralytics detections (NMS output rows `x1 y1 x2 y2 score class`) -> Detectron2 `Instances`."""
from __future__ import annotations

import torch
from detectron2.structures import Boxes, Instances


def detections_to_instances(
    detections: torch.Tensor,
    image_size: tuple[int, int],
    class_map: torch.Tensor,
    with_classes: bool = True,
) -> Instances:
    """Proposals for one image from YOLO detections already in the image's frame.

    Boxes that are NaN/inf, empty after clipping to `image_size` (h, w), or of a YOLO class the dataset
    doesn't have are dropped. Fields: `proposal_boxes` and `objectness_logits` (the score's logit, so
    Detectron2's PROPOSAL_APPEND_GT and proposal sorting work), plus `pred_classes` (dataset indices) and
    `scores` when `with_classes`. Detectron2's ROI heads concatenate ground truth to training proposals and
    need exactly the first two fields there, hence `with_classes=False` in training.

    Args:
        detections: (N, 6) rows of xyxy box, score, YOLO class, in the image's frame.
        image_size: (h, w) of the image.
        class_map: YOLO class -> dataset class, -1 for dropped classes (`build_class_map`).
        with_classes: also set `pred_classes` and `scores`.

    Returns:
        The proposals' `Instances`.
    """
    if detections.ndim != 2 or detections.shape[1] < 6:
        raise ValueError(f"YOLO detections must be (N, 6+) rows of x1 y1 x2 y2 score class, got {tuple(detections.shape)}")
    scores = detections[:, 4].float()
    yolo_classes = detections[:, 5].long()
    class_map = class_map.to(detections.device)
    in_range = (yolo_classes >= 0) & (yolo_classes < len(class_map))
    classes = torch.full_like(yolo_classes, -1)
    classes[in_range] = class_map[yolo_classes[in_range]]

    keep = torch.isfinite(detections[:, :5]).all(dim=1) & (classes >= 0)
    # NaN would survive clip(): zeroed, and dropped just below anyway. `where` and `keep & ...`, not a masked
    # assignment and `&=`: exported to ONNX (`apps/d2_export.py`) those broadcast wrongly / have no operator.
    boxes = Boxes(torch.where(keep[:, None], detections[:, :4].float(), 0.0))
    boxes.clip(image_size)
    keep = keep & boxes.nonempty()

    instances = Instances(image_size)
    instances.proposal_boxes = boxes[keep]
    instances.objectness_logits = torch.logit(scores[keep].clamp(1e-6, 1 - 1e-6))
    if with_classes:
        instances.pred_classes = classes[keep]
        instances.scores = scores[keep]
    return instances
