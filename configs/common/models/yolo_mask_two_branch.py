"""Two-branch YOLO-mask (the seed paper) as a LazyConfig model (the yacs twin: yolo_mask_two_branch_R_50_FPN.yaml).

YOLO runs on the letterboxed image for boxes and classes (the proposal generator, "image" mode); Detectron2's
ResNet-50-FPN (its `common/models/mask_rcnn_fpn.py` backbone) computes the features the FCN mask head pools:
the single-pass model's mask branch on 256-wide FPN levels, which need no laterals.
"""
from detectron2 import model_zoo
from detectron2.layers import ShapeSpec

from .yolo_mask_single_pass import model as single_pass

model = model_zoo.get_config("common/models/mask_rcnn_fpn.py").model
# the single-pass model's YOLO proposals, with YOLO whole on the image instead of its head on the backbone's maps
model.proposal_generator = single_pass.proposal_generator
model.proposal_generator.weights = "yolo11n.yaml"
model.proposal_generator.num_classes = "${..roi_heads.num_classes}"
model.proposal_generator.thing_classes = None
model.proposal_generator.frozen = None  # frozen for a .pt; a model yaml (as shipped) trains on the letterboxed image
model.proposal_generator.input_mode = "image"
model.proposal_generator.image_size = 640
model.roi_heads = single_pass.roi_heads
model.roi_heads.num_classes = 80
model.roi_heads.mask_laterals = None  # FPN levels already share 256 channels
model.roi_heads.mask_head.input_shape = ShapeSpec(channels=256, height=14, width=14)
model.roi_heads.mask_head.norm = ""
