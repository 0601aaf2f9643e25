"""`YOLOMaskPredictor`: Ultralytics' detection predictor for the segment task, with masks from the RoIAlign mask head.

On the PyTorch model: Ultralytics' NMS, then the mask head on the kept boxes. On an end-to-end export (onnx,
torchscript, openvino, written by `YOLOMask(...).export`): NMS and the mask head ran in the graph, so only
Ultralytics' end-to-end filtering (score > conf, classes, max_det) runs here, on the graph's rows with their mask
probabilities carried as extra columns, as YOLO-seg carries its mask coefficients. Either way each box's R x R
probabilities are pasted the same way: `Results` carry `masks` like YOLO-seg's, in the letterboxed input frame by
default (Ultralytics scales them for plotting), in the original image with `retina_masks=True`.
"""
from __future__ import annotations

import torch
from ultralytics.engine.results import Results
from ultralytics.models.yolo.detect.predict import DetectionPredictor
from ultralytics.utils import DEFAULT_CFG, ops

from yolo_mask_plugin.adapters.end2end import (
    end_to_end_rows,
    is_pytorch_backend,
    run_openvino_at_fp32,
    unflatten_mask_probs,
)
from yolo_mask_plugin.adapters.mask_model import find_mask_model
from yolo_mask_plugin.core.paste import paste_masks
from yolo_mask_plugin.core.threads import kept_torch_threads


class YOLOMaskPredictor(DetectionPredictor):
    """Ultralytics' `DetectionPredictor` for the segment task, with masks from the RoIAlign head;
    `YOLOMask(...).predict` uses it. (`SegmentationPredictor` adds only YOLO-seg's prototype decoding.)"""

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict | None = None, _callbacks: dict | None = None):
        super().__init__(cfg, overrides, _callbacks)
        self.args.task = "segment"

    def setup_model(self, model, verbose: bool = True) -> None:
        """Ultralytics' AutoBackend, then a check that it runs a YOLO-mask model or YOLO-mask's end-to-end export
        (an OpenVINO one recompiled at FP32 on the CPU, `run_openvino_at_fp32`). Torch keeps its thread count
        (Ultralytics' device selection would leave cpu_count - 1 behind for the rest of the process)."""
        with kept_torch_threads():
            super().setup_model(model, verbose)
        if is_pytorch_backend(self.model, "YOLOMaskPredictor"):
            find_mask_model(self.model, "YOLOMaskPredictor")
        else:
            run_openvino_at_fp32(self.model, model or self.args.model)

    def postprocess(self, preds, img, orig_imgs):
        """NMS (or an end-to-end export's rows), then `Results` with masks from the RoIAlign head."""
        if is_pytorch_backend(self.model, "YOLOMaskPredictor"):
            return super().postprocess(preds[0], img, orig_imgs, raw=preds[1])
        return super().postprocess(end_to_end_rows(preds), img, orig_imgs)

    def construct_results(self, preds, img, orig_imgs, raw: dict | None = None) -> list[Results]:
        """One `Results` per image, from NMS rows and the maps in `raw` (None: an export's rows carry the masks)."""
        if raw is None:  # rows of an end-to-end export: boxes clipped in the graph, probabilities in extra columns
            probs = [unflatten_mask_probs(p[:, 6:]) for p in preds]
            preds = [p[:, :6] for p in preds]
        else:
            mask_model = find_mask_model(self.model, "YOLOMaskPredictor")
            probs = mask_model.detection_mask_probs(
                raw, [p[:, :4] for p in preds], [p[:, 5] for p in preds], img.shape[2:]
            )
        return [
            self.construct_result(pred, prob, img, orig_img, img_path)
            for pred, prob, orig_img, img_path in zip(preds, probs, orig_imgs, self.batch[0])
        ]

    def construct_result(self, pred: torch.Tensor, probs: torch.Tensor, img, orig_img, img_path) -> Results:
        """One image's `Results`: boxes scaled to the original image, masks pasted into them."""
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
