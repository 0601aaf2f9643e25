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
from yolo_mask_plugin.core.mask_loss import crop_mask_targets, mask_bce_loss

MATCH_IOU = 0.5
ROIS_PER_IMAGE = 32  # ground-truth boxes first, then sampled matched predictions


class YOLOMaskLoss(v8DetectionLoss):
    """Ultralytics' `v8DetectionLoss` plus the mask BCE on GT and matched boxes; `YOLOMaskModel.init_criterion`."""

    def __init__(self, model, tal_topk: int = 10):
        super().__init__(model, tal_topk)
        self.mask_head = model.mask_head
        self.mask_features = model.mask_features
        self.loss_names = (*self.loss_names, "mask_loss")
        self.mask_gain = float(getattr(self.hyp, MASK_GAIN_ARG, DEFAULT_MASK_GAIN))

    def loss(self, preds: dict, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
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
        masks = batch["masks"].to(self.device)
        batch_idx = batch["batch_idx"].view(-1).to(self.device)
        if masks.shape[0] != len(batch_idx) or getattr(self.hyp, "overlap_mask", False):
            raise ValueError(
                "YOLO-mask trains on one mask per instance: set overlap_mask=False (YOLOMaskTrainer does); "
                f"got masks of shape {tuple(masks.shape)} for {len(batch_idx)} instances"
            )
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
            extra = torch.randperm(len(candidates), device=self.device)[: max(ROIS_PER_IMAGE - len(gt_i), 0)]
            rois.append(torch.cat([boxes_gt[gt_i], candidates[extra]]))
            gt_index.append(torch.cat([gt_i, matched[extra]]))
        gt_index = torch.cat(gt_index)
        logits = self.mask_head(feats, rois)  # no RoI in the batch: a zero loss, every parameter still in the graph
        scale = masks.shape[-1] / input_hw[1]  # masks may be stored at 1/mask_ratio of the input
        targets = crop_mask_targets(masks, gt_index, torch.cat(rois) * scale, logits.shape[-1])
        return mask_bce_loss(logits, targets, gt_classes[gt_index])
