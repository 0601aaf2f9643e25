"""Single-pass YOLO-mask on COCO with Detectron2's common pieces (1x schedule, SGD, COCO loader); the LazyConfig
twin of yolo_mask_single_pass.yaml.

    yolo-mask train --config-file yolo_mask_single_pass.py model.backbone.weights=yolo11n.pt
"""
from detectron2 import model_zoo

from .common.models.yolo_mask_single_pass import model

dataloader = model_zoo.get_config("common/data/coco.py").dataloader
dataloader.train.mapper.image_format = "RGB"  # YOLO takes RGB
optimizer = model_zoo.get_config("common/optim.py").SGD
lr_multiplier = model_zoo.get_config("common/coco_schedule.py").lr_multiplier_1x
train = model_zoo.get_config("common/train.py").train
# YOLO's weights come with model.backbone.weights; a YOLO-mask checkpoint converted by `yolo-mask convert`
# (detector and mask head) goes here.
train.init_checkpoint = ""
