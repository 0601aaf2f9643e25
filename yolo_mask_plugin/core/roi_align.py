"""`MultiLevelRoIAlign`: RoIAlign (aligned=True, no quantisation) over feature levels of different strides.

torchvision's `MultiScaleRoIAlign` has no `aligned` flag (it samples half a pixel off); this pools each box
on the level the FPN rule picks (torchvision's `LevelMapper`, canonical 224 px at level 4: the rule
Detectron2's `ROIPooler` uses) with `torchvision.ops.roi_align(aligned=True)`, as Detectron2's "ROIAlignV2".
A head trained on one pooler therefore gives the same masks on the other.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.ops import roi_align
from torchvision.ops.poolers import LevelMapper


def boxes_to_rois(boxes: list[torch.Tensor]) -> torch.Tensor:
    """Per-image boxes as the (image index, box) rows RoIAlign takes.

    Args:
        boxes: per image, (N_i, 4) xyxy boxes.

    Returns:
        (sum N_i, 5) rows of (image index, x1, y1, x2, y2).
    """
    index = [torch.full_like(b[:, :1], i) for i, b in enumerate(boxes)]
    return torch.cat([torch.cat(index), torch.cat(boxes)], dim=1)


class MultiLevelRoIAlign(nn.Module):
    """RoIAlign (aligned=True) of each box on the one level the FPN rule picks for its size."""

    def __init__(self, strides: list[int], output_size: int, sampling_ratio: int = 0):
        """
        Args:
            strides: stride of each level, finest first, each a power of two (8, 16, 32 for YOLO's P3-P5).
            output_size: side K of the pooled grid.
            sampling_ratio: RoIAlign samples per bin side; 0 = adaptive (Detectron2's default).
        """
        super().__init__()
        levels = [math.log2(s) for s in strides]
        if any(lv != round(lv) for lv in levels) or levels != sorted(levels) or len(set(levels)) != len(levels):
            raise ValueError(f"pooler strides {strides}: expected increasing powers of two, e.g. [8, 16, 32]")
        self.strides = list(strides)
        self.output_size = output_size
        self.sampling_ratio = sampling_ratio
        self.level_of = LevelMapper(int(levels[0]), int(levels[-1]))

    def forward(self, features: list[torch.Tensor], boxes: list[torch.Tensor]) -> torch.Tensor:
        """Pool a K x K grid per box from the level the FPN rule picks for its size.

        Written without Python branches on the number of boxes (sizes come from `.shape`, every level is pooled
        even when it has no box), so `torch.jit.trace` and the ONNX / OpenVINO exports of the end-to-end graph
        keep the box count dynamic; eager results are unchanged.

        Args:
            features: one (B, C, H_l, W_l) map per stride, finest first.
            boxes: per image, (N_i, 4) xyxy boxes in input pixels.

        Returns:
            (sum N_i, C, K, K) pooled grids, in the order of the boxes.
        """
        if len(features) != len(self.strides):
            raise ValueError(f"{len(features)} feature maps given, pooler built for strides {self.strides}")
        rois = boxes_to_rois(boxes)
        pooled = features[0].new_zeros((rois.shape[0], features[0].shape[1], self.output_size, self.output_size))
        levels = self.level_of(boxes)
        # Every level is pooled, also one without boxes (as Detectron2's ROIPooler does): each level's lateral
        # then gets a gradient, zero if no box chose it, in every step, which DDP without
        # find_unused_parameters needs to finish its reduction.
        for level, (feature, stride) in enumerate(zip(features, self.strides)):
            index = torch.nonzero(levels == level).squeeze(1)
            grids = roi_align(
                feature,
                rois[index],
                self.output_size,
                spatial_scale=1.0 / stride,
                sampling_ratio=self.sampling_ratio,
                aligned=True,
            ).to(pooled.dtype)
            # index_put_, not `pooled[index] = grids`: item assignment drops a leading size-1 dimension, which a
            # trace taken with one box on a level would record as a fixed-size view
            pooled.index_put_((index,), grids)
        return pooled
