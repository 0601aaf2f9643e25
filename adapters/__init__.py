"""The Ultralytics shell of YOLO-mask: model, loss, trainer, validator, predictor, and the YOLO loader the
Detectron2 shell uses as its box source. It imports the core and Ultralytics, never Detectron2.

Installed as `yolo_mask_plugin.adapters`; a top-level `adapters` would clash with the PyPI package.
"""
from .mask_model import YOLOMaskModel
from .model import YOLOMask
from .predict import YOLOMaskPredictor
from .train import YOLOMaskTrainer
from .val import YOLOMaskValidator
from .yolo_model import YOLOParts, load_yolo, split_yolo

__all__ = [
    "YOLOMask",
    "YOLOMaskModel",
    "YOLOMaskPredictor",
    "YOLOMaskTrainer",
    "YOLOMaskValidator",
    "YOLOParts",
    "load_yolo",
    "split_yolo",
]
