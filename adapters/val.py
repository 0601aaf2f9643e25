"""`YOLOMaskValidator`: Ultralytics' segmentation validator, with masks from the RoIAlign mask head.

What differs is `postprocess` (and `preprocess`, which keeps the input size it needs): Ultralytics' NMS, then the
mask head on the kept boxes (the top `MAX_MASKS` per image, COCO's 100); on an end-to-end export
(`YOLOMask("best.onnx").val()`) NMS and the mask head ran in the graph and only Ultralytics' end-to-end filtering
runs here (`adapters/end2end.py`). Masks are pasted where the stock path expects them: at 1/4 of the input by
default, at full input resolution when `save_json` / `save_txt` switch Ultralytics to its native-resolution path.
Ground truth, matching, Mask mAP and the JSON export are the stock ones. GT masks are per instance
(`overlap_mask=False`), as COCO keeps them, so occluded parts are not cut from the ground truth.
"""
from __future__ import annotations

import torch
from ultralytics.models.yolo.segment import SegmentationValidator
from ultralytics.utils import ops

from yolo_mask_plugin.adapters.args import without_mask_args
from yolo_mask_plugin.adapters.data import with_instance_masks
from yolo_mask_plugin.adapters.end2end import (
    end_to_end_rows,
    is_pytorch_backend,
    run_openvino_at_fp32,
    unflatten_mask_probs,
)
from yolo_mask_plugin.adapters.mask_model import YOLOMaskModel, find_mask_model
from yolo_mask_plugin.core.paste import paste_masks
from yolo_mask_plugin.core.threads import kept_torch_threads
from yolo_mask_plugin.yolo.compat import detection_nms

MAX_MASKS = 100


class YOLOMaskValidator(SegmentationValidator):
    """Ultralytics' `SegmentationValidator` with masks from the RoIAlign head; `YOLOMask(...).val` uses it."""

    def __init__(self, dataloader=None, save_dir=None, args=None, _callbacks: dict | None = None):
        super().__init__(dataloader, save_dir, {**without_mask_args(args), "overlap_mask": False}, _callbacks)
        self.mask_model: YOLOMaskModel | None = None

    def __call__(self, trainer=None, model=None):
        """Ultralytics' validation; torch keeps its thread count (a stand-alone CPU validation's device selection
        would leave cpu_count - 1 behind for the rest of the process)."""
        with kept_torch_threads():
            return super().__call__(trainer, model)

    def build_dataset(self, img_path: str, mode: str = "val", batch: int | None = None):
        """Ultralytics' YOLO-seg dataset, with ground-truth masks rasterised as annotated (holes, separate parts)."""
        return with_instance_masks(super().build_dataset(img_path, mode, batch))

    def init_metrics(self, model: torch.nn.Module) -> None:
        """Ultralytics' metrics, after checking the model is YOLO-mask or its end-to-end export."""
        self.end_to_end = not is_pytorch_backend(model, "YOLOMaskValidator")
        self.mask_model = None if self.end_to_end else find_mask_model(model, "YOLOMaskValidator")
        if self.end_to_end:
            run_openvino_at_fp32(model, self.args.model)
        super().init_metrics(model)

    def preprocess(self, batch: dict) -> dict:
        """Ultralytics' preprocessing; records the input size, the frame of the boxes the mask head sees."""
        batch = super().preprocess(batch)
        self.input_hw = tuple(batch["img"].shape[2:])  # the frame of the boxes the mask head sees
        return batch

    def postprocess(self, preds) -> list[dict[str, torch.Tensor]]:
        """NMS (or an end-to-end export's rows), then each image's masks from the RoIAlign head."""
        detections = detection_nms(self, end_to_end_rows(preds) if self.end_to_end else preds[0])
        for d in detections:
            for key in ("bboxes", "conf", "cls", "extra"):  # NMS sorts by confidence
                d[key] = d[key][:MAX_MASKS]
        if self.end_to_end:  # boxes clipped and probabilities computed in the graph, carried as extra columns
            probs = [unflatten_mask_probs(d.pop("extra")) for d in detections]
        else:
            probs = self.mask_model.detection_mask_probs(
                preds[1], [d["bboxes"] for d in detections], [d["cls"] for d in detections], self.input_hw
            )
            for d in detections:
                del d["extra"]
        scale = 1 if self.process is ops.process_mask_native else 4  # where the stock path compares masks
        mask_hw = (self.input_hw[0] // scale, self.input_hw[1] // scale)
        for d, p in zip(detections, probs):
            d["masks"] = paste_masks(p, d["bboxes"] / scale, mask_hw).byte()  # uint8, as the stock path
        return detections
