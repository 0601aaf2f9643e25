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
    """The class names of the first training (else test) dataset, as Detectron2's own evaluators look them up.

    Args:
        cfg: the config naming DATASETS.TRAIN / DATASETS.TEST.

    Returns:
        Its `thing_classes`, or None when no dataset has them.
    """
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
    """A private copy of the YOLO in `weights`, split at its detect head.

    Components of one build asking for the same YOLO get copies of one load.

    Args:
        weights: an Ultralytics `.pt`, or a model `.yaml` (see `load_yolo`).
        num_classes: classes of a model built from a `.yaml`.
        class_names: names of those classes.

    Returns:
        The YOLO's parts (`split_yolo`), owned by the caller.
    """
    path = Path(weights)
    stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None
    model = _loaded(weights, stamp, num_classes, tuple(class_names) if class_names else None)
    return split_yolo(copy.deepcopy(model))


def yolo_is_frozen(weights: str, frozen: bool | None) -> bool:
    """Whether the YOLO in `weights` stays fixed (MODEL.YOLO.FREEZE).

    A frozen yaml is refused: that YOLO was never trained, and Detectron2 would train only the mask head on
    ground-truth boxes of a model that detects nothing.

    Args:
        weights: an Ultralytics `.pt` or a model `.yaml`.
        frozen: True / False as given; None: True for a `.pt`, False for a `.yaml`.

    Returns:
        Whether YOLO stays frozen.

    Raises:
        InvalidInputError: `frozen` is True for a model yaml.
    """
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
    """Freeze a module: no gradients, eval mode (BatchNorm keeps YOLO's own statistics).

    Args:
        module: the module, changed in place.
    """
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()


def unfreeze(module: nn.Module) -> None:
    """Make every floating-point parameter trainable except DFL's fixed projection.

    As Ultralytics' trainer sets them (`always_freeze_names`): a checkpoint's EMA weights arrive with gradients off.

    Args:
        module: the module, changed in place.
    """
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
        """Turn Detectron2's normalised pixels into YOLO's.

        Args:
            normalized: (..., 3, H, W) images normalised as GeneralizedRCNN.preprocess_image does.

        Returns:
            The same images as RGB in [0, 1].
        """
        pixels = (normalized * self.pixel_std + self.pixel_mean) / 255.0
        return pixels.flip(-3) if self.flip_channels else pixels


def yolo_source_args(cfg: CfgNode) -> dict:
    """The constructor arguments backbone and proposal generator take from a yacs config, the same for both.

    Args:
        cfg: a config with the plugin's keys.

    Returns:
        weights, num_classes, thing_classes, pixel_mean, pixel_std, input_format and frozen, by name.
    """
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
    """Channels of named YOLO maps: what a LazyConfig's `LevelLaterals(in_channels=...)` needs.

    A yacs build reads them from the backbone's `output_shape()` instead.

    Args:
        weights: an Ultralytics `.pt` or a model `.yaml`.
        names: map names ("p2"-"p5").
        num_classes: classes of a model built from a `.yaml`.
        thing_classes: names of those classes.

    Returns:
        The channels of each map, in the order of `names`.
    """
    maps = yolo_parts(weights, num_classes, thing_classes).maps
    missing = [n for n in names if n not in maps]
    if missing:
        raise ValueError(f"YOLO {weights!r} has no maps {missing}; it has {sorted(maps)}")
    return [maps[n].channels for n in names]
