"""Single-pass YOLO-mask on the embedded shapes dataset, CPU budget; the LazyConfig twin of
shapes/yolo_mask_single_pass.yaml. `model.backbone.weights`: the YOLO Ultralytics trained on the same images.

    yolo-mask train --config-file shapes/yolo_mask_single_pass.py model.backbone.weights=best.pt
"""
from yolo_mask_plugin.data import SHAPES_CLASSES

from ..common.data.shapes import dataloader
from ..common.models.yolo_mask_single_pass import model
from ..common.shapes_schedule import lr_multiplier, optimizer, train

dataloader.train.mapper.image_format = "RGB"  # YOLO takes RGB
model.backbone.num_classes = len(SHAPES_CLASSES)
model.backbone.thing_classes = list(SHAPES_CLASSES)
model.proposal_generator.conf_thresh_train = 0.1
# At most 32 RoIs per image (GT + matched YOLO boxes) train the mask head: its cost grows with the RoIs.
model.roi_heads.batch_size_per_image = 32
model.roi_heads.mask_head.conv_dim = 128
