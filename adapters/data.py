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
from ultralytics.utils.instance import Instances

from yolo_mask_plugin.data.polygon_masks import yolo_polygon_to_mask, yolo_polygon_to_mask_crop

MASK_CROPS = "mask_crops"  # batch key: per image (list of (h, w) uint8 crops, (N, 2) crop origins x y, (H, W))


class InstanceMaskFormat(Format):
    """Ultralytics' `Format`, with one full mask per instance rasterised by `yolo_polygon_to_mask`."""

    def _format_segments(
        self, instances: Instances, cls: np.ndarray, w: int, h: int
    ) -> tuple[np.ndarray, Instances, np.ndarray]:
        if self.mask_overlap:  # one shared overlap map: not what YOLO-mask trains on
            return super()._format_segments(instances, cls, w, h)
        masks = [yolo_polygon_to_mask(polygon, (h, w)) for polygon in instances.segments]
        if self.mask_ratio != 1:  # downsampled as Ultralytics' polygon2mask does
            masks = [cv2.resize(m, (w // self.mask_ratio, h // self.mask_ratio)) for m in masks]
        return np.stack(masks), instances, cls


class InstanceMaskCropFormat(Format):
    """Ultralytics' `Format`, with each instance's mask as a crop (`yolo_polygon_to_mask_crop`) under `MASK_CROPS`
    instead of full masks under "masks"."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.return_mask_crops, self.return_mask = self.return_mask, False

    def apply_instances(self, labels: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Ultralytics' `Format.apply_instances`, plus each instance's mask crop and origin under `MASK_CROPS`."""
        labels = super().apply_instances(labels, params)
        if self.return_mask_crops:
            h, w = params["h"], params["w"]
            polygons = params["instances"].segments[: params["nl"]]  # pixels: Format's get_params denormalised them
            crops = [yolo_polygon_to_mask_crop(polygon, (h, w)) for polygon in polygons]
            origins = torch.tensor([origin for _, origin in crops], dtype=torch.int64).reshape(-1, 2)
            labels[MASK_CROPS] = ([torch.from_numpy(crop) for crop, _ in crops], origins, (h, w))
        return labels


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
