"""Ablation on the embedded shapes dataset, CPU budget: Mask R-CNN R50-FPN (from scratch, GN, 256 px) with YOLO
proposals; the LazyConfig twin of shapes/yolo_proposals_R_50_FPN.yaml."""
from ..common.data.shapes import dataloader
from ..common.models.yolo_proposals import model
from ..common.shapes_resnet import scratch_resnet_at_256px
from ..common.shapes_schedule import lr_multiplier, optimizer, train

scratch_resnet_at_256px(model, dataloader, optimizer, train)
