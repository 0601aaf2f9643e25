"""Ablation on COCO: Mask R-CNN R50-FPN with YOLO proposals, with the two-branch config's Detectron2 common
pieces (1x schedule, SGD, COCO loader, ImageNet R-50); the LazyConfig twin of yolo_proposals_R_50_FPN.yaml."""
from .common.models.yolo_proposals import model
from .yolo_mask_two_branch_R_50_FPN import dataloader, lr_multiplier, optimizer, train

model.backbone.bottom_up.freeze_at = 2
