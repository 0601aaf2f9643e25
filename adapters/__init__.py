"""Ultralytics side of the plugin: YOLO models and their outputs handed to Detectron2, and the Ultralytics
shell of YOLO-mask (model, trainer, validator, predictor).

Installed as `yolo_mask_plugin.adapters`; a top-level `adapters` would clash with the PyPI package.
"""
from .class_map import build_class_map
from .detections import detections_to_instances
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
    "build_class_map",
    "detections_to_instances",
    "load_yolo",
    "split_yolo",
]
