"""The Ultralytics shell of YOLO-mask: model, loss, trainer, validator, predictor, exporter, the `yolo` command line
on YOLOMask (`adapters/cli.py`). It imports the core, the bridge (`yolo_mask_plugin.yolo`), the data package and
Ultralytics; never Detectron2 nor the Detectron2 shell.

Installed as `yolo_mask_plugin.adapters`; a top-level `adapters` would clash with the PyPI package. Importing it
with an Ultralytics outside the supported range raises `UnsupportedUltralyticsError` (one line naming both).
"""
from yolo_mask_plugin.yolo.compat import check_ultralytics_version  # noqa: F401  (first: it checks the release)

from .export import YOLOMaskExporter
from .mask_model import YOLOMaskModel
from .model import YOLOMask
from .predict import YOLOMaskPredictor
from .train import YOLOMaskTrainer
from .val import YOLOMaskValidator

__all__ = [
    "YOLOMask",
    "YOLOMaskExporter",
    "YOLOMaskModel",
    "YOLOMaskPredictor",
    "YOLOMaskTrainer",
    "YOLOMaskValidator",
]
