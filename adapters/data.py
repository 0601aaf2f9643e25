"""The YOLO-mask training and validation data: Ultralytics' YOLO-seg datasets, with each instance's mask
rasterised from its polygon by `yolo_polygon_to_mask`, so holes and separate parts arrive as annotated.

Only the last transform (`Format`) of Ultralytics' pipeline changes; loading, caching, mosaic, affine and
flip augmentation all stay Ultralytics', and they move polygon points one by one, which keeps the bridges
of `mask_to_yolo_polygon` intact.
"""
from __future__ import annotations

import cv2
import numpy as np
from torch.utils.data import Dataset
from ultralytics.data.augment import Format
from ultralytics.utils.instance import Instances

from yolo_mask_plugin.adapters.polygon_masks import yolo_polygon_to_mask


class InstanceMaskFormat(Format):
    """Ultralytics' `Format`, with one mask per instance rasterised by `yolo_polygon_to_mask`."""

    def _format_segments(
        self, instances: Instances, cls: np.ndarray, w: int, h: int
    ) -> tuple[np.ndarray, Instances, np.ndarray]:
        if self.mask_overlap:  # one shared overlap map: not what YOLO-mask trains on
            return super()._format_segments(instances, cls, w, h)
        masks = [yolo_polygon_to_mask(polygon, (h, w)) for polygon in instances.segments]
        if self.mask_ratio != 1:  # downsampled as Ultralytics' polygon2mask does
            masks = [cv2.resize(m, (w // self.mask_ratio, h // self.mask_ratio)) for m in masks]
        return np.stack(masks), instances, cls


def with_instance_masks(dataset: Dataset) -> Dataset:
    """Give an Ultralytics YOLO dataset `InstanceMaskFormat` (now and when it rebuilds its transforms)."""
    dataset.format_class = InstanceMaskFormat
    last = dataset.transforms.transforms[-1]
    if type(last) is not Format:
        raise TypeError(f"expected Ultralytics' Format as the last transform of {type(dataset).__name__}, got {last}")
    formatter = InstanceMaskFormat.__new__(InstanceMaskFormat)
    formatter.__dict__.update(last.__dict__)
    dataset.transforms.transforms[-1] = formatter
    return dataset
