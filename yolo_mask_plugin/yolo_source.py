"""Build the YOLO a Detectron2 config names, and feed it Detectron2's images.

Shared by the YOLO backbone and the YOLO proposal generator, which both start from `MODEL.YOLO.WEIGHTS`.
"""
from __future__ import annotations

import torch
from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from torch import nn

from yolo_mask_plugin.adapters import YOLOParts, load_yolo, split_yolo


def dataset_thing_classes(cfg: CfgNode) -> list[str] | None:
    """thing_classes of the first training (else test) dataset, as Detectron2's own evaluators look them up."""
    for name in [*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST]:
        classes = MetadataCatalog.get(name).get("thing_classes")
        if classes:
            return list(classes)
    return None


def load_yolo_parts(cfg: CfgNode) -> YOLOParts:
    """MODEL.YOLO.WEIGHTS loaded (a .yaml gets the dataset's classes) and split at its detect head."""
    model = load_yolo(cfg.MODEL.YOLO.WEIGHTS, cfg.MODEL.ROI_HEADS.NUM_CLASSES, dataset_thing_classes(cfg))
    return split_yolo(model)


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()


class D2ToYOLOPixels(nn.Module):
    """Undo Detectron2's pixel normalisation and channel order: YOLO wants RGB in [0, 1]."""

    def __init__(self, pixel_mean: list[float], pixel_std: list[float], input_format: str):
        super().__init__()
        if input_format not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.FORMAT={input_format!r}: YOLO needs colour images, RGB or BGR")
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)
        self.flip_channels = input_format == "BGR"

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "D2ToYOLOPixels":
        return cls(cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, cfg.INPUT.FORMAT)

    def forward(self, normalized: torch.Tensor) -> torch.Tensor:
        """(..., 3, H, W) normalised as GeneralizedRCNN.preprocess_image does -> RGB / 255."""
        pixels = (normalized * self.pixel_std + self.pixel_mean) / 255.0
        return pixels.flip(-3) if self.flip_channels else pixels
