"""Ablation: YOLO boxes as proposals to Detectron2's own box + mask heads, i.e. Mask R-CNN R50-FPN
(`common/models/mask_rcnn_fpn.py`) with the RPN swapped for the two-branch model's YOLO (the yacs twin:
yolo_proposals_R_50_FPN.yaml)."""
from detectron2 import model_zoo

from .yolo_mask_two_branch import model as two_branch

model = model_zoo.get_config("common/models/mask_rcnn_fpn.py").model
model.proposal_generator = two_branch.proposal_generator
model.proposal_generator.conf_thresh_train = 0.001  # proposals: recall matters, the box head rescores them
model.proposal_generator.conf_thresh_test = 0.001
model.proposal_generator.agnostic_nms = True
model.proposal_generator.max_detections_train = 300
model.proposal_generator.max_detections_test = 100
