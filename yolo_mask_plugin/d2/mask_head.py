"""`YOLOMaskFCNHead`: the framework-neutral FCN mask head as a Detectron2 ROI mask head.

Loss and inference are Detectron2's own (`BaseMaskRCNNHead`: `mask_rcnn_loss`, per-pixel sigmoid BCE on
ground-truth masks cropped to each box; `mask_rcnn_inference`), which handle one class-agnostic map or
one map per class.
"""
from __future__ import annotations

import torch
from detectron2.config import CfgNode, configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import ROI_MASK_HEAD_REGISTRY, BaseMaskRCNNHead

from yolo_mask_plugin.core.fcn_head import FCNMaskHead
from yolo_mask_plugin.d2.config import require_yolo_mask_config
from yolo_mask_plugin.d2.registration import register_once


@register_once(ROI_MASK_HEAD_REGISTRY)
class YOLOMaskFCNHead(BaseMaskRCNNHead):
    """The core `FCNMaskHead` with Detectron2's mask loss and inference (`BaseMaskRCNNHead`).

    Example (LazyConfig; with yacs, `MODEL.ROI_MASK_HEAD.NAME: YOLOMaskFCNHead`)::

        mask_head = L(YOLOMaskFCNHead)(input_shape=ShapeSpec(channels=64, height=14, width=14), conv_dim=64,
                                       num_conv=4, output_resolution=28, num_classes=1, norm="GN")
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        conv_dim: int,
        num_conv: int,
        output_resolution: int,
        num_classes: int,
        norm: str = "",
        **kwargs,
    ):
        """
        Args:
            input_shape: pooled features (channels, and the pooler resolution as height/width).
            conv_dim, num_conv, output_resolution, num_classes, norm: see `FCNMaskHead`.
        """
        super().__init__(**kwargs)
        self.fcn = FCNMaskHead(
            in_channels=input_shape.channels,
            conv_dim=conv_dim,
            num_conv=num_conv,
            pooler_resolution=input_shape.height,
            output_resolution=output_resolution,
            num_classes=num_classes,
            norm=norm,
        )

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: ShapeSpec) -> dict:
        require_yolo_mask_config(cfg, "YOLOMaskFCNHead")
        ret = super().from_config(cfg, input_shape)
        head = cfg.MODEL.ROI_MASK_HEAD
        ret.update(
            input_shape=input_shape,
            conv_dim=head.CONV_DIM,
            num_conv=head.NUM_CONV,
            output_resolution=cfg.MODEL.YOLO.MASK_HEAD.OUTPUT_RESOLUTION,
            num_classes=1 if head.CLS_AGNOSTIC_MASK else cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            norm=head.NORM,
        )
        return ret

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        return self.fcn(x)
