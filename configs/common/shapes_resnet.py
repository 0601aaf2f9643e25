"""What the ResNet designs change for the embedded shapes data on a CPU: the ResNet from scratch with
Detectron2's scratch recipe (GN, nothing frozen; no weights can be downloaded here), 256 px images, 4 images
per batch at LR 0.01 (the yacs configs' values), and the dataset's 4 classes."""
import detectron2.data.transforms as T
from detectron2.config import LazyCall as L

from yolo_mask_plugin.data import SHAPES_CLASSES


def scratch_resnet_at_256px(model, dataloader, optimizer, train) -> None:
    """Apply the shapes CPU recipe to a ResNet-FPN model with a YOLO proposal generator, in place."""
    dataloader.train.mapper.augmentations = [
        L(T.ResizeShortestEdge)(short_edge_length=(256,), max_size=256, sample_style="choice"),
        L(T.RandomFlip)(horizontal=True),
    ]
    dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=256, max_size=256)]
    dataloader.train.total_batch_size = 4
    optimizer.lr = 0.01
    model.backbone.bottom_up.freeze_at = 0
    model.backbone.bottom_up.stem.norm = model.backbone.bottom_up.stages.norm = model.backbone.norm = "GN"
    model.backbone.bottom_up.stages.stride_in_1x1 = False
    model.proposal_generator.num_classes = len(SHAPES_CLASSES)
    model.proposal_generator.thing_classes = list(SHAPES_CLASSES)
    model.proposal_generator.image_size = 256
    model.roi_heads.num_classes = len(SHAPES_CLASSES)
    train.init_checkpoint = ""
