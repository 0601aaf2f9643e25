"""The whole single-pass YOLO-mask trained end to end by Detectron2 on the embedded shapes dataset, CPU budget; the
LazyConfig twin of shapes/yolo_mask_single_pass_end2end.yaml (the model `YOLOMask("yolo11n.yaml")` trains, YOLO
learning on its detection losses, the demo's Ultralytics recipe as Detectron2's solver).

    yolo-mask train --config-file shapes/yolo_mask_single_pass_end2end.py
"""
import torch
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.solver import WarmupParamScheduler
from detectron2.solver.build import get_default_optimizer_params
from fvcore.common.param_scheduler import CosineParamScheduler

from yolo_mask_plugin.data import SHAPES_CLASSES

from ..common.data.shapes import dataloader
from ..common.models.yolo_mask_single_pass import model
from ..common.shapes_schedule import train

MAX_ITER = 188  # 50 epochs x 240 images / 64 images per iteration

dataloader.train.mapper.image_format = "RGB"  # YOLO takes RGB
dataloader.train.total_batch_size = 64  # Ultralytics' images per optimizer step (nbs)
model.backbone.num_classes = len(SHAPES_CLASSES)
model.backbone.thing_classes = list(SHAPES_CLASSES)
model.backbone.frozen = False
# the mask head YOLOMask trains: P2-P5 (the common model's levels), 64 wide; up to 32 RoIs per image
model.roi_heads.batch_size_per_image = 32
model.roi_heads.positive_fraction = 1.0
model.roi_heads.mask_laterals.out_channels = 64
model.roi_heads.mask_head.input_shape = ShapeSpec(channels=64, height=14, width=14)
model.roi_heads.mask_head.conv_dim = 64
model.roi_heads.mask_head.loss_gain_per_image = 2.5  # Ultralytics' YOLO-mask gain

optimizer = L(torch.optim.AdamW)(
    params=L(get_default_optimizer_params)(weight_decay_norm=0.0, weight_decay_bias=0.0),
    lr=0.005,
    betas=(0.937, 0.999),
    weight_decay=0.0005,
)
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(CosineParamScheduler)(start_value=1.0, end_value=0.01),
    warmup_length=4 / MAX_ITER,
    warmup_method="linear",
    warmup_factor=0.001,
)
train.max_iter = MAX_ITER
train.checkpointer.period = 50
# BatchNorm statistics recomputed after the last iteration (TEST.PRECISE_BN of the yaml twin; read by
# `yolo-mask train`'s LazyConfig loop, which adds Detectron2's PreciseBN hook)
train.precise_bn = dict(enabled=True, num_iter=10)
