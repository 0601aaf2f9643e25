"""`YOLOMask`: the Ultralytics `Model` for YOLO with the RoIAlign mask head.

`YOLOMask("yolo11n.yaml")` builds one, `YOLOMask("yolo11n.pt")` starts from a detection checkpoint (fresh mask
head), `YOLOMask("best.pt")` reloads a trained one; `.train()`, `.val()` and `.predict()` route to the YOLO-mask
trainer, validator and predictor whatever task the checkpoint was saved with.
"""
from __future__ import annotations

from pathlib import Path

from ultralytics.engine.model import Model

from yolo_mask_plugin.adapters.mask_model import YOLOMaskModel
from yolo_mask_plugin.adapters.predict import YOLOMaskPredictor
from yolo_mask_plugin.adapters.train import YOLOMaskTrainer
from yolo_mask_plugin.adapters.val import YOLOMaskValidator


class YOLOMask(Model):
    """YOLO detection + the RoIAlign FCN mask head, as an Ultralytics `Model`.

    Example::

        model = YOLOMask("yolo11n.yaml")                         # or a detect .pt to fine-tune, or a YOLO-mask best.pt
        model.train(data="coco8-seg.yaml", epochs=10, imgsz=640)  # any YOLO-seg dataset
        metrics = model.val()                                     # Box and Mask mAP
        results = model.predict("image.jpg", retina_masks=True)   # Results with .masks
    """

    def __init__(self, model: str | Path = "yolo11n.yaml", verbose: bool = False):
        super().__init__(model=model, task="segment", verbose=verbose)

    @property
    def task_map(self) -> dict:
        routes = {
            "model": YOLOMaskModel,
            "trainer": YOLOMaskTrainer,
            "validator": YOLOMaskValidator,
            "predictor": YOLOMaskPredictor,
        }
        return {"segment": routes, "detect": routes}  # a detection checkpoint fine-tunes into YOLO-mask
