"""`YOLOMaskFCNHead`: the framework-neutral FCN mask head as a Detectron2 ROI mask head.

Loss and inference are Detectron2's own (`BaseMaskRCNNHead`: `mask_rcnn_loss`, per-pixel sigmoid BCE on
ground-truth masks cropped to each box; `mask_rcnn_inference`), which handle one class-agnostic map or
one map per class. The loss may be scaled as Ultralytics scales YOLO-mask's (`loss_gain_per_image`), so that it
weighs against the losses of a YOLO trained in the same model as it does in Ultralytics' trainer.
"""
from __future__ import annotations

import torch
from detectron2.config import CfgNode, configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import ROI_MASK_HEAD_REGISTRY, BaseMaskRCNNHead
from detectron2.structures import Instances
from detectron2.utils import comm

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
        loss_gain_per_image: float | None = None,
        **kwargs,
    ):
        """
        Args:
            input_shape: pooled features (channels, and the pooler resolution as height/width).
            conv_dim, num_conv, output_resolution, num_classes, norm: see `FCNMaskHead`.
            loss_gain_per_image: None: Detectron2's mask loss (mean over the batch's RoIs, times `loss_weight`).
                A gain g: g x that mean x the images in the batch (all processes'), as Ultralytics' YOLO-mask loss
                (its `mask=` gain times the batch size), the scale of the YOLO losses `YOLOProposalGenerator` returns.
        """
        super().__init__(**kwargs)
        self.loss_gain_per_image = loss_gain_per_image
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
        """The constructor's arguments from a yacs config (ROI_MASK_HEAD, MODEL.YOLO.MASK_HEAD, MODEL.YOLO.LOSS)."""
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
            loss_gain_per_image=cfg.MODEL.YOLO.LOSS.MASK,
        )
        return ret

    def forward(self, x: torch.Tensor, instances: list[Instances]):
        """`BaseMaskRCNNHead.forward`; with `loss_gain_per_image`, its loss scaled by it and the batch's images.

        Args:
            x: (N, C, K, K) pooled features of the instances' boxes.
            instances: per image, the proposals (training) or detections (inference) pooled.

        Returns:
            Training: {"loss_mask": loss}. Inference: `instances`, with `pred_masks` set.
        """
        out = super().forward(x, instances)
        if self.training and self.loss_gain_per_image is not None:  # `instances`: one per image of the batch
            images = len(instances) * comm.get_world_size()
            out = {name: loss * self.loss_gain_per_image * images for name, loss in out.items()}
        return out

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, K, K) pooled features -> (N, num_classes, R, R) mask logits (the core `FCNMaskHead`)."""
        return self.fcn(x)
