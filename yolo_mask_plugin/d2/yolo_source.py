"""The YOLO a Detectron2 model is built on, loaded once per build, and Detectron2's pixels turned into YOLO's.

The backbone (YOLO's body) and the proposal generator (YOLO's detect head, or the whole YOLO in "image" mode)
each own their part of one YOLO: the file is read once and every component gets its own copy of what it needs,
so the detect head runs on the maps of the body it was trained with and no module is shared between models.
"""
from __future__ import annotations

import copy
import functools
import logging
from pathlib import Path

import torch
from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.utils.logger import log_first_n
from torch import nn
from ultralytics.nn.tasks import DetectionModel

from yolo_mask_plugin.core.errors import InvalidInputError
from yolo_mask_plugin.yolo import YOLOParts, load_yolo, split_yolo


def dataset_thing_classes(cfg: CfgNode) -> list[str] | None:
    """thing_classes of the first training (else test) dataset, as Detectron2's own evaluators look them up."""
    for name in [*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST]:
        classes = MetadataCatalog.get(name).get("thing_classes")
        if classes:
            return list(classes)
    return None


@functools.lru_cache(maxsize=1)
def _loaded(weights: str, file_stamp: tuple | None, num_classes: int | None, class_names: tuple | None) -> DetectionModel:
    del file_stamp  # part of the cache key only: a rewritten checkpoint is read again
    return load_yolo(weights, num_classes, list(class_names) if class_names else None)


def yolo_parts(weights: str, num_classes: int | None = None, class_names: list[str] | None = None) -> YOLOParts:
    """A private copy of the YOLO in `weights` (`.pt`, or a `.yaml` built with `num_classes` named `class_names`),
    split at its detect head. Components of one build asking for the same YOLO get copies of one load."""
    path = Path(weights)
    stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None
    model = _loaded(weights, stamp, num_classes, tuple(class_names) if class_names else None)
    return split_yolo(copy.deepcopy(model))


def yolo_is_frozen(weights: str, frozen: bool | None) -> bool:
    """Whether the YOLO in `weights` stays fixed: `frozen` as given, or, for None, True for an Ultralytics
    checkpoint and False for a model yaml. A frozen yaml is refused: that YOLO was never trained, and Detectron2
    would train only the mask head on ground-truth boxes of a model that detects nothing."""
    untrained = Path(weights).suffix.lower() in (".yaml", ".yml")
    if frozen is None:
        frozen = not untrained
        note = ("kept as loaded, Detectron2 trains the mask branch (MODEL.YOLO.FREEZE True)" if frozen
               else "an untrained model yaml, Detectron2 trains it (MODEL.YOLO.FREEZE False)")
        log_first_n(logging.INFO, f"YOLO {weights}: {note}", n=1, key="message")
    if frozen and untrained:
        raise InvalidInputError(
            f"MODEL.YOLO.FREEZE is True but MODEL.YOLO.WEIGHTS={weights!r} is a model yaml: that YOLO was never "
            "trained, and frozen it would detect nothing. Either train it here with MODEL.YOLO.FREEZE False "
            "(LazyConfig: frozen=False), or give an Ultralytics detection checkpoint (.pt, e.g. a best.pt of "
            "Ultralytics' trainer) as MODEL.YOLO.WEIGHTS"
        )
    return frozen


def freeze(module: nn.Module) -> None:
    """No gradients, eval mode (BatchNorm keeps YOLO's own statistics)."""
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()


def unfreeze(module: nn.Module) -> None:
    """Every floating-point parameter trainable except DFL's fixed projection, as Ultralytics' trainer sets them
    (`always_freeze_names`); a checkpoint's EMA weights arrive with gradients off."""
    for name, p in module.named_parameters():
        p.requires_grad_(p.dtype.is_floating_point and ".dfl." not in f".{name}")


class D2ToYOLOPixels(nn.Module):
    """Undo Detectron2's pixel normalisation and channel order: YOLO wants RGB in [0, 1]."""

    def __init__(self, pixel_mean: list[float], pixel_std: list[float], input_format: str):
        super().__init__()
        if input_format not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.FORMAT={input_format!r}: YOLO needs colour images, RGB or BGR")
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)
        self.flip_channels = input_format == "BGR"

    def forward(self, normalized: torch.Tensor) -> torch.Tensor:
        """(..., 3, H, W) normalised as GeneralizedRCNN.preprocess_image does -> RGB / 255."""
        pixels = (normalized * self.pixel_std + self.pixel_mean) / 255.0
        return pixels.flip(-3) if self.flip_channels else pixels


def yolo_source_args(cfg: CfgNode) -> dict:
    """The constructor arguments backbone and proposal generator take from a yacs config, the same for both."""
    return {
        "weights": cfg.MODEL.YOLO.WEIGHTS,
        "num_classes": cfg.MODEL.ROI_HEADS.NUM_CLASSES,
        "thing_classes": dataset_thing_classes(cfg),
        "pixel_mean": list(cfg.MODEL.PIXEL_MEAN),
        "pixel_std": list(cfg.MODEL.PIXEL_STD),
        "input_format": cfg.INPUT.FORMAT,
        "frozen": cfg.MODEL.YOLO.FREEZE,
    }


def yolo_map_channels(
    weights: str, names: list[str], num_classes: int | None = None, thing_classes: list[str] | None = None
) -> list[int]:
    """Channels of the YOLO maps `names` (p2-p5): what a LazyConfig's `LevelLaterals(in_channels=...)` needs,
    which a yacs build reads from the backbone's `output_shape()`."""
    maps = yolo_parts(weights, num_classes, thing_classes).maps
    missing = [n for n in names if n not in maps]
    if missing:
        raise ValueError(f"YOLO {weights!r} has no maps {missing}; it has {sorted(maps)}")
    return [maps[n].channels for n in names]
