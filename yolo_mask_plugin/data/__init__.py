"""Datasets: the embedded shapes set, COCO <-> YOLO-seg conversion and Detectron2 registration."""
from .catalog import SHAPES_TRAIN, SHAPES_VAL, default_shapes_root, register_shapes_dataset
from .convert import coco_to_yolo_seg, write_yolo_data_yaml, yolo_seg_to_coco
from .shapes import SHAPES_CLASSES, generate_shapes_dataset

__all__ = [
    "SHAPES_CLASSES",
    "SHAPES_TRAIN",
    "SHAPES_VAL",
    "coco_to_yolo_seg",
    "default_shapes_root",
    "generate_shapes_dataset",
    "register_shapes_dataset",
    "write_yolo_data_yaml",
    "yolo_seg_to_coco",
]
