"""`YOLOMaskPredictor`: Ultralytics' segmentation predictor, with masks from the RoIAlign mask head.

Ultralytics' NMS, then the mask head on the kept boxes; `Results` carry `masks` like YOLO-seg's: in the
letterboxed input frame by default (Ultralytics scales them for plotting), in the original image with
`retina_masks=True`.
"""
from __future__ import annotations

import torch
from ultralytics.engine.results import Results
from ultralytics.models.yolo.detect.predict import DetectionPredictor
from ultralytics.models.yolo.segment import SegmentationPredictor
from ultralytics.utils import ops

from yolo_mask_plugin.adapters.mask_model import find_mask_model
from yolo_mask_plugin.core.paste import paste_masks


class YOLOMaskPredictor(SegmentationPredictor):
    """Ultralytics' `SegmentationPredictor` with masks from the RoIAlign head; `YOLOMask(...).predict` uses it."""

    def postprocess(self, preds, img, orig_imgs):
        return DetectionPredictor.postprocess(self, preds[0], img, orig_imgs, raw=preds[1])

    def construct_results(self, preds, img, orig_imgs, raw) -> list[Results]:
        mask_model = find_mask_model(self.model, "YOLOMaskPredictor")
        probs = mask_model.detection_mask_probs(raw, [p[:, :4] for p in preds], [p[:, 5] for p in preds], img.shape[2:])
        return [
            self.construct_result(pred, prob, img, orig_img, img_path)
            for pred, prob, orig_img, img_path in zip(preds, probs, orig_imgs, self.batch[0])
        ]

    def construct_result(self, pred: torch.Tensor, probs: torch.Tensor, img, orig_img, img_path) -> Results:
        boxes_input = pred[:, :4].clone()
        pred[:, :4] = ops.scale_boxes(img.shape[2:], pred[:, :4], orig_img.shape)
        masks = None
        if len(pred):
            if self.args.retina_masks:
                masks = paste_masks(probs, pred[:, :4], orig_img.shape[:2])
            else:
                masks = paste_masks(probs, boxes_input, tuple(img.shape[2:]))
            keep = masks.flatten(1).any(1)  # as YOLO-seg: only detections with a mask
            pred, masks = pred[keep], masks[keep]
        return Results(orig_img, path=img_path, names=self.model.names, boxes=pred[:, :6], masks=masks)
