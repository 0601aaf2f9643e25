"""Two-branch YOLO-mask R50-FPN on COCO with Detectron2's common pieces (1x schedule, SGD, COCO loader,
ImageNet R-50); the LazyConfig twin of yolo_mask_two_branch_R_50_FPN.yaml."""
from detectron2 import model_zoo

from .common.models.yolo_mask_two_branch import model

dataloader = model_zoo.get_config("common/data/coco.py").dataloader
optimizer = model_zoo.get_config("common/optim.py").SGD
lr_multiplier = model_zoo.get_config("common/coco_schedule.py").lr_multiplier_1x
train = model_zoo.get_config("common/train.py").train
model.backbone.bottom_up.freeze_at = 2
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
