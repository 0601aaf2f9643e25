"""The embedded shapes dataset (`shapes_train` / `shapes_val`, registered by `yolo_mask_plugin.d2`) through
Detectron2's own COCO loader pieces (`common/data/coco.py`), resized to 192 px as the CPU-sized configs train."""
import detectron2.data.transforms as T
from detectron2 import model_zoo
from detectron2.config import LazyCall as L

import yolo_mask_plugin.d2  # noqa: F401  (registers shapes_train / shapes_val)

dataloader = model_zoo.get_config("common/data/coco.py").dataloader
dataloader.train.dataset.names = "shapes_train"
dataloader.train.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=(192,), max_size=192, sample_style="choice"),
    L(T.RandomFlip)(horizontal=True),
]
dataloader.train.total_batch_size = 8
dataloader.train.num_workers = 2
dataloader.test.dataset.names = "shapes_val"
dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=192, max_size=192)]
dataloader.test.num_workers = 2
