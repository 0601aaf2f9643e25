"""`add_yolo_mask_config`: every key the plugin adds lives under `MODEL.YOLO`."""
from __future__ import annotations

from detectron2.config import CfgNode as CN


def add_yolo_mask_config(cfg: CN) -> CN:
    """Add the plugin's keys, with defaults, to a Detectron2 config (call before `merge_from_file`)."""
    cfg.MODEL.YOLO = CN()
    # An Ultralytics checkpoint (`best.pt`, `yolo11n.pt`) or a model yaml (`yolo11n.yaml`, built untrained
    # with ROI_HEADS.NUM_CLASSES classes named after the training dataset's thing_classes).
    cfg.MODEL.YOLO.WEIGHTS = ""
    # What the proposal generator runs YOLO on:
    #   "image": the whole YOLO on each image, letterboxed to IMAGE_SIZE (the seed's two-branch design);
    #   "features": only YOLO's detect head, on IN_FEATURES that build_yolo_backbone already computed
    #               (the shared single-pass design: the image goes through YOLO once).
    cfg.MODEL.YOLO.INPUT = "image"
    cfg.MODEL.YOLO.IMAGE_SIZE = 640  # letterbox side for INPUT == "image"
    cfg.MODEL.YOLO.IN_FEATURES = ["p3", "p4", "p5"]  # backbone maps fed to the detect head (INPUT == "features")
    # Keep YOLO's weights fixed while Detectron2 trains the rest: YOLO gets no detection loss here, it is
    # trained by Ultralytics' own trainer.
    cfg.MODEL.YOLO.FREEZE = True
    # NMS. The seed paper shows detections at confidence 0.6; AP evaluation needs a low threshold.
    cfg.MODEL.YOLO.CONF_THRESH_TRAIN = 0.05  # YOLO boxes offered to the mask branch in training
    cfg.MODEL.YOLO.CONF_THRESH_TEST = 0.01
    cfg.MODEL.YOLO.NMS_THRESH = 0.5
    cfg.MODEL.YOLO.AGNOSTIC_NMS = False
    cfg.MODEL.YOLO.MAX_DETECTIONS_TRAIN = 100  # at test time: TEST.DETECTIONS_PER_IMAGE
    # YOLO class names are matched to the dataset's thing_classes by name. For other names give pairs
    # [yolo_name, dataset_name]; YOLO classes not mapped are dropped.
    cfg.MODEL.YOLO.CLASS_MAPPING = []

    cfg.MODEL.YOLO.MASK_HEAD = CN()
    # Side of the predicted mask logits: a power-of-two multiple of ROI_MASK_HEAD.POOLER_RESOLUTION
    # (28 from a 14x14 pool, or 56 for finer masks). Channels, convs, pooler: Detectron2's ROI_MASK_HEAD.
    cfg.MODEL.YOLO.MASK_HEAD.OUTPUT_RESOLUTION = 28
    # 1x1 convs bringing every pooled level to this width, needed when levels differ in width (YOLO's
    # P3/P4/P5 do). 0: no laterals (ResNet-FPN levels already share 256 channels).
    cfg.MODEL.YOLO.MASK_HEAD.LATERAL_CHANNELS = 0
    # With build_yolo_backbone and a YOLO-mask checkpoint (trained by YOLOMaskTrainer) as MODEL.YOLO.WEIGHTS,
    # start the mask branch from the checkpoint's (the config must then describe that head); False: a new head.
    cfg.MODEL.YOLO.MASK_HEAD.INIT_FROM_WEIGHTS = True
    return cfg


def require_yolo_mask_config(cfg: CN, component: str) -> None:
    """Fail with a useful message when a config names a plugin component but lacks the plugin's keys."""
    if "YOLO" not in cfg.MODEL:
        raise KeyError(
            f"{component} needs the config keys MODEL.YOLO.*: call "
            "yolo_mask_plugin.add_yolo_mask_config(cfg) on the config before merge_from_file / building the model."
        )
