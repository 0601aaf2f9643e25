"""`YOLOMaskROIHeads`: YOLO's detections are final; only the mask branch runs.

Training: the mask head learns from ground-truth boxes and from YOLO boxes matched to ground truth at
IoU >= ROI_HEADS.IOU_THRESHOLDS (Detectron2's own `label_and_sample_proposals` with PROPOSAL_APPEND_GT),
so train and test see the same box noise. Inference: YOLO's boxes, classes and scores pass through;
the mask head adds `pred_masks`, and GeneralizedRCNN's postprocess pastes them into the image.
"""
from __future__ import annotations

import torch
from detectron2.config import CfgNode, configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, ROIHeads, build_mask_head, select_foreground_proposals
from detectron2.structures import ImageList, Instances
from torch import nn

from yolo_mask_plugin.core.fcn_head import LevelLaterals
from yolo_mask_plugin.d2.config import require_yolo_mask_config
from yolo_mask_plugin.d2.registration import register_once


@register_once(ROI_HEADS_REGISTRY)
class YOLOMaskROIHeads(ROIHeads):
    """ROI heads whose boxes are YOLO's final detections: only the mask branch (laterals, pooler, FCN head) runs.

    Example (LazyConfig; with yacs, `MODEL.ROI_HEADS.NAME: YOLOMaskROIHeads`)::

        roi_heads = L(YOLOMaskROIHeads)(
            num_classes=4, batch_size_per_image=32, positive_fraction=1.0, proposal_append_gt=True,
            proposal_matcher=L(Matcher)(thresholds=[0.5], labels=[0, 1], allow_low_quality_matches=False),
            mask_in_features=["p3", "p4", "p5"], mask_laterals=L(LevelLaterals)(in_channels=[64, 128, 256],
            out_channels=64), mask_pooler=L(ROIPooler)(output_size=14, scales=[1 / 8, 1 / 16, 1 / 32],
            sampling_ratio=0, pooler_type="ROIAlignV2"), mask_head=L(YOLOMaskFCNHead)(...),
            detections_per_image=100)
    """

    @configurable
    def __init__(
        self,
        *,
        mask_in_features: list[str],
        mask_laterals: LevelLaterals | None,
        mask_pooler: ROIPooler,
        mask_head: nn.Module,
        detections_per_image: int,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.mask_in_features = mask_in_features
        self.mask_laterals = mask_laterals
        self.mask_pooler = mask_pooler
        self.mask_head = mask_head
        self.detections_per_image = detections_per_image

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: dict[str, ShapeSpec]) -> dict:
        """The constructor's arguments from a yacs config (ROI_HEADS, ROI_MASK_HEAD, MODEL.YOLO.MASK_HEAD)."""
        require_yolo_mask_config(cfg, "YOLOMaskROIHeads")
        ret = super().from_config(cfg)
        in_features = list(cfg.MODEL.ROI_HEADS.IN_FEATURES)
        missing = [f for f in in_features if f not in input_shape]
        if missing:
            raise ValueError(f"MODEL.ROI_HEADS.IN_FEATURES {missing} are not backbone outputs {sorted(input_shape)}")
        channels = [input_shape[f].channels for f in in_features]
        lateral_channels = cfg.MODEL.YOLO.MASK_HEAD.LATERAL_CHANNELS
        if lateral_channels == 0 and len(set(channels)) > 1:
            raise ValueError(
                f"features {in_features} have different widths {channels}: set "
                "MODEL.YOLO.MASK_HEAD.LATERAL_CHANNELS > 0 to bring them to one width before pooling"
            )
        resolution = cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION
        width = lateral_channels or channels[0]
        ret.update(
            mask_in_features=in_features,
            mask_laterals=LevelLaterals(channels, lateral_channels) if lateral_channels else None,
            mask_pooler=ROIPooler(
                output_size=resolution,
                scales=tuple(1.0 / input_shape[f].stride for f in in_features),
                sampling_ratio=cfg.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO,
                pooler_type=cfg.MODEL.ROI_MASK_HEAD.POOLER_TYPE,
            ),
            mask_head=build_mask_head(cfg, ShapeSpec(channels=width, height=resolution, width=resolution)),
            detections_per_image=cfg.TEST.DETECTIONS_PER_IMAGE,
        )
        return ret

    def forward(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        proposals: list[Instances],
        targets: list[Instances] | None = None,
    ) -> tuple[list[Instances], dict[str, torch.Tensor]]:
        """Train the mask head on matched boxes, or add masks to YOLO's detections.

        Args:
            images: unused (Detectron2's ROIHeads interface).
            features: the backbone's maps by name.
            proposals: per image, YOLO's boxes (`YOLOProposalGenerator`).
            targets: per image, the ground truth; required in training.

        Returns:
            Training: the sampled proposals and {"loss_mask": loss}. Inference: per image, the detections
            (`pred_boxes`, `scores`, `pred_classes`, `pred_masks`) and {}.
        """
        del images
        if self.training:
            if targets is None:
                raise ValueError("YOLOMaskROIHeads needs ground-truth instances in training")
            proposals = self.label_and_sample_proposals(proposals, targets)
            foreground, _ = select_foreground_proposals(proposals, self.num_classes)
            return proposals, self._forward_mask(features, foreground)
        detections = [
            Instances(p.image_size, pred_boxes=p.proposal_boxes, scores=p.scores, pred_classes=p.pred_classes)[
                : self.detections_per_image
            ]
            for p in proposals
        ]
        return self._forward_mask(features, detections), {}

    def forward_with_given_boxes(
        self, features: dict[str, torch.Tensor], instances: list[Instances]
    ) -> list[Instances]:
        """Masks for given boxes and classes, as StandardROIHeads (`GeneralizedRCNN.inference`'s `detected_instances`).

        E.g. to measure the mask head on ground-truth boxes.

        Args:
            features: the backbone's maps by name.
            instances: per image, `pred_boxes` and `pred_classes`.

        Returns:
            `instances`, with `pred_masks` set.
        """
        if self.training:
            raise RuntimeError("forward_with_given_boxes is for inference; call model.eval() first")
        return self._forward_mask(features, instances)

    def _forward_mask(self, features: dict[str, torch.Tensor], instances: list[Instances]):
        maps = [features[f] for f in self.mask_in_features]
        if self.mask_laterals is not None:
            maps = self.mask_laterals(maps)
        boxes = [x.proposal_boxes if self.training else x.pred_boxes for x in instances]
        return self.mask_head(self.mask_pooler(maps, boxes), instances)
