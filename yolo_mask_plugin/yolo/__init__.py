"""The bridge: what both shells need of Ultralytics. Load and split a YOLO, run its layers, its detection loss.

It imports the core, torch and Ultralytics; never Detectron2 nor either shell (`yolo_mask_plugin.d2`,
`yolo_mask_plugin.adapters`), which both build on it. `compat` is imported first: it stops, in one line, an
Ultralytics outside the supported range, and holds every Ultralytics internal the plugin touches.
"""
from . import compat  # noqa: F401  (first: checks the installed Ultralytics release)
from .layers import FeatureMap, YOLOParts, run_layers, split_yolo
from .load import load_yolo
from .loss import DETECTION_LOSS_GAINS, detection_loss

__all__ = [
    "DETECTION_LOSS_GAINS",
    "FeatureMap",
    "YOLOParts",
    "detection_loss",
    "load_yolo",
    "run_layers",
    "split_yolo",
]
