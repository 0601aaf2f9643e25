"""`YOLOMaskLoss`: Ultralytics' detection loss plus the mask BCE, reported as `mask_loss`.

The mask branch learns on ground-truth boxes and on the detector's own boxes at anchors the task-aligned
assigner made positive and that overlap their ground truth at IoU >= 0.5 (as Detectron2 samples RoIs), so
training sees the box noise of inference. Targets: each box's instance mask cropped and resized to R x R
(`crop_mask_targets`). Needs per-instance masks (`overlap_mask=False`), which `YOLOMaskTrainer` sets.
"""
from __future__ import annotations

import torch
from ultralytics.utils.loss import v8DetectionLoss
from ultralytics.utils.metrics import bbox_iou
from ultralytics.utils.ops import xywh2xyxy

from yolo_mask_plugin.adapters.args import DEFAULT_MASK_GAIN, MASK_GAIN_ARG
from yolo_mask_plugin.adapters.data import MASK_CROPS
from yolo_mask_plugin.core.mask_loss import crop_mask_targets, crop_mask_targets_from_crops, mask_bce_loss

MATCH_IOU = 0.5
# RoIs per image the mask head trains on: ground-truth boxes first (a random subset of them in a crowded image),
# then matched predictions, sampled (Detectron2 likewise caps its positives per image)
ROIS_PER_IMAGE = 32


class YOLOMaskLoss(v8DetectionLoss):
    """Ultralytics' `v8DetectionLoss` plus the mask BCE on GT and matched boxes; `YOLOMaskModel.init_criterion`."""

    def __init__(self, model, tal_topk: int = 10):
        super().__init__(model, tal_topk)
        self.mask_head = model.mask_head
        self.mask_features = model.mask_features
        self.loss_names = (*self.loss_names, "mask_loss")
        self.mask_gain = float(getattr(self.hyp, MASK_GAIN_ARG, DEFAULT_MASK_GAIN))

    def loss(self, preds: dict, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Ultralytics' detection losses plus the mask loss (times the `mask` gain), each times the batch size.

        Args:
            preds: the detect head's training output ("boxes", "scores", "feats"; "p2" with pool_p2).
            batch: Ultralytics' training batch, with one mask (or mask crop) per instance.

        Returns:
            The (4,) losses box, cls, dfl, mask (times the batch size, as Ultralytics' own), and their items.
        """
        (fg_mask, target_gt_idx, _, anchor_points, stride_tensor), det_loss, items = (
            self.get_assigned_targets_and_loss(preds, batch)
        )
        pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()
        boxes_pred = self.bbox_decode(anchor_points, pred_distri).detach() * stride_tensor  # input pixels
        mask_loss = self.mask_loss(self.mask_features(preds), batch, fg_mask, target_gt_idx, boxes_pred)
        mask_loss = mask_loss * self.mask_gain
        items["mask_loss"] = mask_loss.detach()
        batch_size = pred_distri.shape[0]
        return torch.cat([det_loss, mask_loss[None]]) * batch_size, items

    def mask_loss(
        self,
        feats: list[torch.Tensor],
        batch: dict,
        fg_mask: torch.Tensor,
        target_gt_idx: torch.Tensor,
        boxes_pred: torch.Tensor,
    ) -> torch.Tensor:
        """Mask BCE on ground-truth boxes and on predicted boxes matched to them at IoU >= `MATCH_IOU`.

        Up to `ROIS_PER_IMAGE` RoIs per image: its ground-truth boxes first, then matched predictions.

        Args:
            feats: the maps the mask branch pools, finest first.
            batch: Ultralytics' training batch.
            fg_mask: (B, anchors) the assigner's foreground anchors.
            target_gt_idx: (B, anchors) each anchor's ground-truth index within its image.
            boxes_pred: (B, anchors, 4) predicted xyxy boxes in input pixels.

        Returns:
            The scalar mask loss (0, still on the graph, without RoIs).
        """
        batch_idx = batch["batch_idx"].view(-1).to(self.device)
        input_hw = torch.tensor(feats[-1].shape[2:], device=self.device) * self.stride[-1]
        boxes_gt = xywh2xyxy(batch["bboxes"].to(self.device)) * input_hw[[1, 0, 1, 0]]
        gt_classes = batch["cls"].view(-1).to(self.device)
        rois, gt_index = [], []
        for i in range(len(fg_mask)):
            gt_i = torch.nonzero(batch_idx == i).squeeze(1)
            matched = gt_i[target_gt_idx[i][fg_mask[i]]] if len(gt_i) else gt_i
            candidates = boxes_pred[i][fg_mask[i]]
            keep = bbox_iou(candidates, boxes_gt[matched], xywh=False).view(-1) >= MATCH_IOU
            candidates, matched = candidates[keep], matched[keep]
            gt_i = gt_i[torch.randperm(len(gt_i), device=self.device)[:ROIS_PER_IMAGE]]
            extra = torch.randperm(len(candidates), device=self.device)[: ROIS_PER_IMAGE - len(gt_i)]
            rois.append(torch.cat([boxes_gt[gt_i], candidates[extra]]))
            gt_index.append(torch.cat([gt_i, matched[extra]]))
        gt_index = torch.cat(gt_index)
        logits = self.mask_head(feats, rois)  # no RoI in the batch: a zero loss, every parameter still in the graph
        targets = self.mask_targets(batch, gt_index, torch.cat(rois), logits.shape[-1], input_hw, len(batch_idx))
        return mask_bce_loss(logits, targets, gt_classes[gt_index])

    def mask_targets(
        self, batch: dict, gt_index: torch.Tensor, rois: torch.Tensor, resolution: int, input_hw: torch.Tensor,
        num_instances: int,
    ) -> torch.Tensor:
        """Mask targets of RoIs from the batch's per-instance masks.

        The masks are the crops of a training batch (`MASK_CROPS`), or full masks (validation batches; at
        1/mask_ratio of the input).

        Args:
            batch: Ultralytics' batch.
            gt_index: (N,) each RoI's instance, an index into the batch's instances.
            rois: (N, 4) xyxy RoIs in input pixels.
            resolution: R.
            input_hw: (2,) the input's height and width.
            num_instances: instances in the batch, to check one mask per instance.

        Returns:
            (N, R, R) binary targets.

        Raises:
            ValueError: the batch does not hold one mask per instance (overlap_mask=True).
        """
        if MASK_CROPS in batch:
            crops = [crop.to(self.device) for image_crops, _, _ in batch[MASK_CROPS] for crop in image_crops]
            origins = torch.cat([origins for _, origins, _ in batch[MASK_CROPS]]).to(self.device)
            frame_width = batch[MASK_CROPS][0][2][1]  # multi-scale training resizes the images, not the crops
            found = len(crops)
        else:
            masks = batch["masks"].to(self.device)
            frame_width = masks.shape[-1]
            found = masks.shape[0] if not getattr(self.hyp, "overlap_mask", False) else -1
        if found != num_instances:
            raise ValueError(
                "YOLO-mask trains on one mask per instance: set overlap_mask=False (YOLOMaskTrainer does); "
                f"got {found} masks for {num_instances} instances"
            )
        rois = rois * (frame_width / input_hw[1])
        if MASK_CROPS in batch:
            return crop_mask_targets_from_crops(crops, origins, gt_index, rois, resolution)
        return crop_mask_targets(masks, gt_index, rois, resolution)
