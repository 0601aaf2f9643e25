"""`YOLOMaskValidator`: Ultralytics' segmentation validator, with masks from the RoIAlign mask head.

Only `postprocess` differs: Ultralytics' NMS, then the mask head on the kept boxes (the top `MAX_MASKS` per
image, COCO's 100), pasted where the stock path expects masks: at 1/4 of the input by default, at full input
resolution when `save_json` / `save_txt` switch Ultralytics to its native-resolution path. Ground truth,
matching, Mask mAP and the JSON export are the stock ones. GT masks are per instance (`overlap_mask=False`),
as COCO keeps them, so occluded parts are not cut from the ground truth.
"""
from __future__ import annotations

import torch
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.models.yolo.segment import SegmentationValidator
from ultralytics.utils import ops

from yolo_mask_plugin.adapters.args import without_mask_args
from yolo_mask_plugin.adapters.data import with_instance_masks
from yolo_mask_plugin.adapters.mask_model import YOLOMaskModel, find_mask_model
from yolo_mask_plugin.core.paste import paste_masks

MAX_MASKS = 100


class YOLOMaskValidator(SegmentationValidator):
    """Ultralytics' `SegmentationValidator` with masks from the RoIAlign head; `YOLOMask(...).val` uses it."""

    def __init__(self, dataloader=None, save_dir=None, args=None, _callbacks: dict | None = None):
        super().__init__(dataloader, save_dir, {**without_mask_args(args), "overlap_mask": False}, _callbacks)
        self.mask_model: YOLOMaskModel | None = None

    def build_dataset(self, img_path: str, mode: str = "val", batch: int | None = None):
        """Ultralytics' YOLO-seg dataset, with ground-truth masks rasterised as annotated (holes, separate parts)."""
        return with_instance_masks(super().build_dataset(img_path, mode, batch))

    def init_metrics(self, model: torch.nn.Module) -> None:
        self.mask_model = find_mask_model(model, "YOLOMaskValidator")
        super().init_metrics(model)

    def postprocess(self, preds) -> list[dict[str, torch.Tensor]]:
        outputs, raw = preds[0], preds[1]
        input_hw = [int(s * self.mask_model.stride[0]) for s in raw["feats"][0].shape[2:]]
        detections = DetectionValidator.postprocess(self, outputs)
        for d in detections:
            del d["extra"]
            for key in ("bboxes", "conf", "cls"):  # NMS sorts by confidence
                d[key] = d[key][:MAX_MASKS]
        probs = self.mask_model.detection_mask_probs(
            raw, [d["bboxes"] for d in detections], [d["cls"] for d in detections], input_hw
        )
        scale = 1 if self.process is ops.process_mask_native else 4  # where the stock path compares masks
        mask_hw = (input_hw[0] // scale, input_hw[1] // scale)
        for d, p in zip(detections, probs):
            d["masks"] = paste_masks(p, d["bboxes"] / scale, mask_hw).byte()  # uint8, as the stock path
        return detections
