"""Checkpoints between the two shells: an Ultralytics YOLO(-mask) `.pt` as Detectron2 weights, and back.

It sits above both shells (it builds `YOLOMaskModel` of the Ultralytics shell from the Detectron2 shell's
single-pass model), so neither shell imports the other.
"""
from .checkpoint import (
    as_detectron2_weights,
    check_mask_head_config,
    convert_ultralytics_checkpoint,
    converted_metadata,
    export_ultralytics_checkpoint,
    mask_head_opts,
)

__all__ = [
    "as_detectron2_weights",
    "check_mask_head_config",
    "convert_ultralytics_checkpoint",
    "converted_metadata",
    "export_ultralytics_checkpoint",
    "mask_head_opts",
]
