"""Datasets: the embedded shapes set, COCO <-> YOLO-seg conversion, and mask <-> polygon (holes kept).

Below both shells: it imports neither (Detectron2's catalog of these datasets: `yolo_mask_plugin.d2`).
"""
from .convert import coco_to_yolo_seg, write_yolo_data_yaml, yolo_seg_to_coco
from .shapes import SHAPES_CLASSES, default_shapes_root, generate_shapes_dataset

__all__ = [
    "SHAPES_CLASSES",
    "coco_to_yolo_seg",
    "default_shapes_root",
    "generate_shapes_dataset",
    "write_yolo_data_yaml",
    "yolo_seg_to_coco",
]
