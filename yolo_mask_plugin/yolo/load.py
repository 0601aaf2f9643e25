"""Load an Ultralytics YOLO detection model, offline, from a `.pt` checkpoint or a model `.yaml`.

Both shells start from it: Detectron2's box source and backbone, and the checkpoint conversion between the
frameworks.
"""
from __future__ import annotations

from pathlib import Path

from ultralytics.nn.modules.head import Detect
from ultralytics.nn.tasks import DetectionModel, load_checkpoint
from ultralytics.utils import DEFAULT_CFG_DICT

from yolo_mask_plugin.core.errors import InputNotFoundError, InvalidInputError


def load_yolo(weights: str, num_classes: int | None = None, class_names: list[str] | None = None) -> DetectionModel:
    """Load a YOLO detection model in eval mode, never downloading: a missing file is an error.

    Args:
        weights: an Ultralytics `.pt` checkpoint (keeps its own classes and names) or a model `.yaml` (builds an
            untrained model).
        num_classes: classes of a model built from a `.yaml` (None: the yaml's `nc`).
        class_names: names of those classes, e.g. the dataset's (None: "0", "1", ...).

    Returns:
        The float32 `DetectionModel`, in eval mode.

    Raises:
        InputNotFoundError: `weights` does not exist.
        InvalidInputError: `weights` is empty, not a `.pt` / `.yaml`, not loadable, or not a model with a plain
            (non end-to-end) `Detect` head.
    """
    if not weights:
        raise InvalidInputError("MODEL.YOLO.WEIGHTS is empty: give a YOLO checkpoint (.pt) or model definition (.yaml)")
    suffix = Path(weights).suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            model = DetectionModel(weights, nc=num_classes, verbose=False)
        except FileNotFoundError as e:
            raise InputNotFoundError(f"YOLO model yaml {weights!r} not found (MODEL.YOLO.WEIGHTS)") from e
        model.names = dict(enumerate(class_names)) if class_names else {i: str(i) for i in range(model.yaml["nc"])}
        model.args = dict(DEFAULT_CFG_DICT)  # what Ultralytics' trainer attaches; its loss reads hyp from here
    elif suffix == ".pt":
        if not Path(weights).is_file():
            raise InputNotFoundError(f"YOLO checkpoint {weights!r} does not exist (MODEL.YOLO.WEIGHTS)")
        try:
            model, _ = load_checkpoint(weights)
        except (TypeError, KeyError, AttributeError, RuntimeError, EOFError) as e:
            raise InvalidInputError(f"YOLO checkpoint {weights!r} is not a loadable Ultralytics checkpoint: {e}") from e
    else:
        raise InvalidInputError(
            f"MODEL.YOLO.WEIGHTS={weights!r}: expected an Ultralytics .pt checkpoint or model .yaml"
        )
    head = model.model[-1]
    if not isinstance(model, DetectionModel) or type(head) is not Detect:
        raise InvalidInputError(
            f"YOLO model {weights!r} has a {type(head).__name__} head (task {getattr(model, 'task', '?')!r}); "
            "the plugin needs a detection model (Detect head), e.g. yolo11n.yaml or a YOLO detect checkpoint"
        )
    if head.end2end:
        raise InvalidInputError(
            f"YOLO model {weights!r} has an end-to-end (NMS-free) head; use a YOLO11/YOLOv8-style detection model"
        )
    return model.float().eval()
