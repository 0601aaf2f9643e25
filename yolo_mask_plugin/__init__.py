"""yolo-mask-plugin: YOLO boxes + an RoIAlign FCN mask head, as Detectron2 components.

Importing the package registers, idempotently:
  * `build_yolo_backbone` (BACKBONE_REGISTRY)
  * `YOLOProposalGenerator` (PROPOSAL_GENERATOR_REGISTRY)
  * `YOLOMaskROIHeads` (ROI_HEADS_REGISTRY)
  * `YOLOMaskFCNHead` (ROI_MASK_HEAD_REGISTRY)
  * the embedded `shapes_train` / `shapes_val` datasets (DatasetCatalog)
"""
from yolo_mask_plugin import _source_layout

_source_layout.install()  # before anything imports yolo_mask_plugin.adapters

from yolo_mask_plugin.config import add_yolo_mask_config  # noqa: E402
from yolo_mask_plugin.backbone import YOLOBackbone, build_yolo_backbone  # noqa: E402
from yolo_mask_plugin.proposal_generator import YOLOProposalGenerator  # noqa: E402
from yolo_mask_plugin.mask_head import YOLOMaskFCNHead  # noqa: E402
from yolo_mask_plugin.roi_heads import YOLOMaskROIHeads  # noqa: E402
from yolo_mask_plugin.data import register_shapes_dataset  # noqa: E402

register_shapes_dataset()

__version__ = "0.1.0"
__all__ = [
    "YOLOBackbone",
    "YOLOMaskFCNHead",
    "YOLOMaskROIHeads",
    "YOLOProposalGenerator",
    "add_yolo_mask_config",
    "build_yolo_backbone",
]
