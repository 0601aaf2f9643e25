"""The Detectron2 shell of YOLO-mask: config keys, registered components, datasets.

Importing it registers, idempotently (re-imports and reloads are fine):
  * `build_yolo_backbone` (BACKBONE_REGISTRY)
  * `YOLOProposalGenerator` (PROPOSAL_GENERATOR_REGISTRY)
  * `YOLOMaskROIHeads` (ROI_HEADS_REGISTRY)
  * `YOLOMaskFCNHead` (ROI_MASK_HEAD_REGISTRY)
  * the embedded `shapes_train` / `shapes_val` datasets (DatasetCatalog)
It imports the core, the bridge (`yolo_mask_plugin.yolo`: load a YOLO, run it, train it with Ultralytics' own loss),
the data package and Detectron2; never the Ultralytics shell. Checkpoint conversion between the two shells lives
above both, in `yolo_mask_plugin.interop`.
"""
from .backbone import YOLOBackbone, build_yolo_backbone
from .config import add_yolo_mask_config, build_cfg, get_config_file
from .datasets import SHAPES_TRAIN, SHAPES_VAL, register_shapes_dataset
from .mask_head import YOLOMaskFCNHead
from .proposal_generator import YOLOProposalGenerator
from .roi_heads import YOLOMaskROIHeads

register_shapes_dataset()

__all__ = [
    "SHAPES_TRAIN",
    "SHAPES_VAL",
    "YOLOBackbone",
    "YOLOMaskFCNHead",
    "YOLOMaskROIHeads",
    "YOLOProposalGenerator",
    "add_yolo_mask_config",
    "build_cfg",
    "build_yolo_backbone",
    "get_config_file",
    "register_shapes_dataset",
]
