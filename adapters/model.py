"""`YOLOMask`: the Ultralytics `Model` for YOLO with the RoIAlign mask head.

`YOLOMask("yolo11n.yaml")` builds one, `YOLOMask("yolo11n.pt")` starts from a detection checkpoint (fresh mask
head), `YOLOMask("best.pt")` reloads a trained one; `.train()`, `.val()` and `.predict()` route to the YOLO-mask
trainer, validator and predictor whatever task the checkpoint was saved with, and `.export()` to the YOLO-mask
exporter (the whole inference in one graph). `YOLOMask("best.onnx")` (or `.torchscript`, `_openvino_model/`)
predicts and validates an export through Ultralytics' AutoBackend.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ultralytics.engine.model import Model

from yolo_mask_plugin.adapters.export import YOLOMaskExporter
from yolo_mask_plugin.adapters.mask_model import YOLOMaskModel
from yolo_mask_plugin.adapters.predict import YOLOMaskPredictor
from yolo_mask_plugin.adapters.train import YOLOMaskTrainer
from yolo_mask_plugin.adapters.val import YOLOMaskValidator
from yolo_mask_plugin.core.errors import InvalidInputError


class YOLOMask(Model):
    """YOLO detection + the RoIAlign FCN mask head, as an Ultralytics `Model`.

    Example::

        model = YOLOMask("yolo11n.yaml")                         # or a detect .pt to fine-tune, or a YOLO-mask best.pt
        model.train(data="coco8-seg.yaml", epochs=10, imgsz=640)  # any YOLO-seg dataset
        metrics = model.val()                                     # Box and Mask mAP
        results = model.predict("image.jpg", retina_masks=True)   # Results with .masks
        model.export(format="onnx")                               # best.onnx: detector, NMS, RoIAlign, FCN head
    """

    def __init__(self, model: str | Path = "yolo11n.yaml", task: str | None = None, verbose: bool = False):
        """`task`: None or "segment" (Ultralytics' command line passes the one it was given)."""
        if task not in (None, "segment"):
            raise InvalidInputError(f"task={task!r}: YOLOMask is an instance segmentation model (task=segment)")
        super().__init__(model=model, task="segment", verbose=verbose)

    @property
    def task_map(self) -> dict:
        """The YOLO-mask model, trainer, validator and predictor, for the "segment" and "detect" tasks."""
        routes = {
            "model": YOLOMaskModel,
            "trainer": YOLOMaskTrainer,
            "validator": YOLOMaskValidator,
            "predictor": YOLOMaskPredictor,
        }
        return {"segment": routes, "detect": routes}  # a detection checkpoint fine-tunes into YOLO-mask

    def export(self, **kwargs) -> str:
        """Ultralytics' `Model.export` with `YOLOMaskExporter`: onnx, torchscript or openvino, masks in the graph."""
        if not isinstance(self.model, torch.nn.Module):  # an export (.onnx, ...) loaded for predict/val
            raise InvalidInputError(
                f"export needs a YOLO-mask PyTorch model (.pt or .yaml), not the export {str(self.model)!r}"
            )
        # Model.export's own defaults; Ultralytics offers no hook to choose the exporter class
        custom = {"imgsz": self.model.args["imgsz"], "batch": 1, "data": None, "device": None, "verbose": False}
        args = {**self.overrides, **custom, **kwargs, "mode": "export"}
        return YOLOMaskExporter(overrides=args, _callbacks=self.callbacks)(model=self.model)
