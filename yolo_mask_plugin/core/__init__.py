"""The framework-neutral core of YOLO-mask: imports torch and torchvision only.

Both shells (Detectron2: `yolo_mask_plugin.d2`; Ultralytics: `yolo_mask_plugin.adapters`) build on these pieces,
each with exactly one implementation: frame mapping, multi-level RoIAlign, the FCN head and the whole mask
branch, loss targets, the post-NMS mask step, mask pasting, and the errors that mean bad user input.
"""
from .errors import ConfigKeyError, InputError, InputNotFoundError, InvalidInputError
from .fcn_head import FCNMaskHead, LevelLaterals
from .frames import Letterbox
from .mask_branch import MASK_HEAD_DEFAULTS, RoIMaskBranch, select_class
from .mask_loss import crop_mask_targets, mask_bce_loss
from .paste import paste_masks
from .postprocess import clip_boxes_, detection_mask_probs
from .roi_align import MultiLevelRoIAlign
from .threads import kept_torch_threads

__all__ = [
    "ConfigKeyError",
    "FCNMaskHead",
    "InputError",
    "InputNotFoundError",
    "InvalidInputError",
    "LevelLaterals",
    "Letterbox",
    "MASK_HEAD_DEFAULTS",
    "MultiLevelRoIAlign",
    "RoIMaskBranch",
    "clip_boxes_",
    "crop_mask_targets",
    "detection_mask_probs",
    "kept_torch_threads",
    "mask_bce_loss",
    "paste_masks",
    "select_class",
]
