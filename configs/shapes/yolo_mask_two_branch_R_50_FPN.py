"""Two-branch YOLO-mask R50-FPN on the embedded shapes dataset, CPU budget; the LazyConfig twin of
shapes/yolo_mask_two_branch_R_50_FPN.yaml (ResNet from scratch with GN, 256 px)."""
from ..common.data.shapes import dataloader
from ..common.models.yolo_mask_two_branch import model
from ..common.shapes_resnet import scratch_resnet_at_256px
from ..common.shapes_schedule import lr_multiplier, optimizer, train

scratch_resnet_at_256px(model, dataloader, optimizer, train)
model.proposal_generator.conf_thresh_train = 0.1
model.roi_heads.mask_head.conv_dim = 128
