"""The YOLO-mask training and validation data: Ultralytics' YOLO-seg datasets, with each instance's mask
rasterised from its polygon by `yolo_polygon_to_mask_crop`, so holes and separate parts arrive as annotated.

Only the last transform (`Format`) of Ultralytics' pipeline changes; loading, caching, mosaic, affine and flip
augmentation all stay Ultralytics', and they move polygon points one by one, which keeps the bridges of
`mask_to_yolo_polygon` intact. Training batches carry each instance's mask cropped to where it can be non-zero
("mask_crops"), not a full-resolution array per instance: the mask head only ever reads its boxes, and a crowded
640 px image would otherwise carry hundreds of MB of masks (and Ultralytics' semantic map built from them).
Validation batches carry full masks ("masks"), which Ultralytics' mask metrics compare.
"""
from __future__ import annotations

import inspect
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from ultralytics.data.augment import Format

from yolo_mask_plugin.data.polygon_masks import yolo_polygon_to_mask, yolo_polygon_to_mask_crop

MASK_CROPS = "mask_crops"  # batch key: per image (list of (h, w) uint8 crops, (N, 2) crop origins x y, (H, W))


class PolygonMaskFormat(Format):
    """Ultralytics' `Format`, with each instance's mask rasterised from its polygon by `add_masks` (with
    `mask_overlap`, one shared overlap map, which YOLO-mask does not train on, Ultralytics' own)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.return_polygon_masks = self.return_mask and not self.mask_overlap
        self.return_mask = self.return_mask and self.mask_overlap

    def apply_instances(self, labels: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Ultralytics' `Format.apply_instances`, plus each instance's mask crop and origin under `MASK_CROPS`."""
        labels = super().apply_instances(labels, params)
        if self.return_polygon_masks:
            polygons = params["instances"].segments[: params["nl"]]  # pixels: Format's get_params denormalised them
            self.add_masks(labels, polygons, (params["h"], params["w"]))
        return labels

    def add_masks(self, labels: dict[str, Any], polygons: np.ndarray, image_hw: tuple[int, int]) -> None:
        """Write the instances' masks into `labels` (each subclass its own form).

        Args:
            labels: the sample's labels, changed in place.
            polygons: the instances' polygons in pixels of the formatted image.
            image_hw: (height, width) of the formatted image.
        """
        raise NotImplementedError


class InstanceMaskFormat(PolygonMaskFormat):
    """One full mask per instance under "masks", rasterised by `yolo_polygon_to_mask`."""

    def add_masks(self, labels: dict[str, Any], polygons: np.ndarray, image_hw: tuple[int, int]) -> None:
        """Full masks (N, H / mask_ratio, W / mask_ratio) under "masks"; see `PolygonMaskFormat.add_masks`."""
        h, w = image_hw
        masks = [yolo_polygon_to_mask(polygon, image_hw) for polygon in polygons]
        if self.mask_ratio != 1:  # downsampled as Ultralytics' polygon2mask does
            masks = [cv2.resize(m, (w // self.mask_ratio, h // self.mask_ratio)) for m in masks]
        empty = np.zeros((0, h // self.mask_ratio, w // self.mask_ratio), np.uint8)
        labels["masks"] = torch.from_numpy(np.stack(masks) if masks else empty)


class InstanceMaskCropFormat(PolygonMaskFormat):
    """Each instance's mask as a crop (`yolo_polygon_to_mask_crop`) under `MASK_CROPS`, instead of full masks."""

    def add_masks(self, labels: dict[str, Any], polygons: np.ndarray, image_hw: tuple[int, int]) -> None:
        """Mask crops, their origins and the image size under `MASK_CROPS`; see `PolygonMaskFormat.add_masks`."""
        crops = [yolo_polygon_to_mask_crop(polygon, image_hw) for polygon in polygons]
        origins = torch.tensor([origin for _, origin in crops], dtype=torch.int64).reshape(-1, 2)
        labels[MASK_CROPS] = ([torch.from_numpy(crop) for crop, _ in crops], origins, image_hw)


def with_instance_masks(dataset: Dataset, crops: bool = False) -> Dataset:
    """Give an Ultralytics YOLO dataset the YOLO-mask rasteriser (now and whenever it rebuilds its transforms):
    full masks, or with `crops` mask crops."""
    last = dataset.transforms.transforms[-1]
    if type(last) is not Format:
        raise TypeError(f"expected Ultralytics' Format as the last transform of {type(dataset).__name__}, got {last}")
    dataset.format_class = InstanceMaskCropFormat if crops else InstanceMaskFormat
    arguments = list(inspect.signature(Format.__init__).parameters)[1:]
    dataset.transforms.transforms[-1] = dataset.format_class(**{name: getattr(last, name) for name in arguments})
    return dataset
