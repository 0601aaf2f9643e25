"""`add_yolo_mask_config` (every key the plugin adds lives under `MODEL.YOLO`), and the plugin's config files."""
from __future__ import annotations

import os
from pathlib import Path

import yaml
from detectron2.config import CfgNode as CN
from detectron2.config import get_cfg
from yolo_mask_plugin.core.errors import ConfigKeyError, InputNotFoundError, InvalidInputError
from yolo_mask_plugin.yolo import DETECTION_LOSS_GAINS


def add_yolo_mask_config(cfg: CN) -> CN:
    """Add the plugin's keys, with defaults, to a Detectron2 config (call before `merge_from_file`).

    Args:
        cfg: a Detectron2 config, e.g. `get_cfg()`.

    Returns:
        `cfg`, with `MODEL.YOLO` and the plugin's other keys.
    """
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
    # Whether Detectron2 trains YOLO:
    #   False: YOLO trains with the rest of the model, as RPN does: in training the proposal generator returns
    #          YOLO's detection losses (Ultralytics' own v8DetectionLoss, gains under LOSS) next to the heads'
    #          losses, and YOLO's body (the backbone in single-pass configs) learns from them and the mask loss;
    #   True:  YOLO's weights and BatchNorm statistics stay as loaded (a YOLO trained by Ultralytics' trainer);
    #          only the mask branch trains. Refused for a model yaml: that YOLO was never trained;
    #   None:  True for an Ultralytics checkpoint (.pt), False for a model yaml (untrained: it must learn here).
    # A YOLO-mask checkpoint's mask head reaches the model through MODEL.WEIGHTS, converted by
    # `yolo-mask convert` (yolo_mask_plugin.interop.checkpoint).
    cfg.MODEL.YOLO.FREEZE = None
    # YOLO's detection loss when it trains here (FREEZE False): Ultralytics' v8DetectionLoss with Ultralytics'
    # default gains. Each loss is multiplied by the number of images in the batch (SOLVER.IMS_PER_BATCH, all GPUs),
    # as Ultralytics does, so every image adds to the gradient what it adds in Ultralytics' trainer.
    cfg.MODEL.YOLO.LOSS = CN()
    cfg.MODEL.YOLO.LOSS.BOX = DETECTION_LOSS_GAINS["box"]  # CIoU box loss
    cfg.MODEL.YOLO.LOSS.CLS = DETECTION_LOSS_GAINS["cls"]  # classification BCE
    cfg.MODEL.YOLO.LOSS.DFL = DETECTION_LOSS_GAINS["dfl"]  # distribution focal loss
    # The mask loss (the ROI heads' `loss_mask`, BCE averaged over the batch's RoIs). None: Detectron2's, weight 1.
    # A gain g: g x that x the images in the batch, as Ultralytics' YOLO-mask loss scales it (its `mask=` gain,
    # 2.5 by default), so it weighs against YOLO's losses as it does there.
    cfg.MODEL.YOLO.LOSS.MASK = None
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

    # The one key outside MODEL.YOLO, as Detectron2's own projects (DETR, Mask2Former) add it: "SGD" (Detectron2's
    # `build_optimizer`) or "ADAMW" (the optimizer of Ultralytics' YOLO recipes: betas (SOLVER.MOMENTUM, 0.999),
    # decoupled SOLVER.WEIGHT_DECAY), built by `yolo_mask_plugin.d2.solver.build_optimizer`.
    cfg.SOLVER.OPTIMIZER = "SGD"

    # Pieces of Ultralytics' training recipe Detectron2 lacks (yolo_mask_plugin.d2.recipe), all off by default.
    # Model EMA (d2/ema.py): Ultralytics' ModelEMA, decay DECAY * (1 - exp(-updates / TAU)), one update per
    # iteration; evaluation uses the averaged model, checkpoints carry it, OUTPUT_DIR/model_final_ema.pth holds it.
    cfg.MODEL_EMA = CN()
    cfg.MODEL_EMA.ENABLED = False
    cfg.MODEL_EMA.DECAY = 0.9999  # Ultralytics' default
    cfg.MODEL_EMA.TAU = 2000.0  # Ultralytics' default, in optimizer steps
    # Ultralytics' warm-up of biases and momentum over SOLVER.WARMUP_ITERS (d2/warmup.py): the bias LR starts
    # WARMUP_BIAS_LR above the scheduled one (Ultralytics: 0.1; 0.0: off); momentum (SGD) rises from
    # WARMUP_MOMENTUM (Ultralytics: 0.8; None: off) to SOLVER.MOMENTUM.
    cfg.SOLVER.WARMUP_BIAS_LR = 0.0
    cfg.SOLVER.WARMUP_MOMENTUM = None
    # SOLVER.CLIP_GRADIENTS.CLIP_TYPE may also be "full_model" (d2/clipping.py): the norm over all parameters, as
    # Ultralytics clips (CLIP_VALUE 10.0 there).
    return cfg


def require_yolo_mask_config(cfg: CN, component: str) -> None:
    """Fail with a useful message when a config names a plugin component but lacks the plugin's keys.

    Args:
        cfg: the config a component is built from.
        component: the component's registered name, for the message.

    Raises:
        KeyError: `cfg` has no `MODEL.YOLO`.
    """
    if "YOLO" not in cfg.MODEL:
        raise KeyError(
            f"{component} needs the config keys MODEL.YOLO.*: call "
            "yolo_mask_plugin.add_yolo_mask_config(cfg) on the config before merge_from_file / building the model."
        )


def config_dir() -> Path:
    """The folder holding the plugin's configs (`configs/`, installed as `yolo_mask_plugin.configs`)."""
    import yolo_mask_plugin.configs as configs

    return Path(list(configs.__path__)[0])


def get_config_file(config_file: str) -> str:
    """Find a config file: the path as given if it exists, else the file of that name in the plugin's `configs/`.

    So `--config-file shapes/yolo_mask_single_pass.yaml` works from any directory, as
    `detectron2.model_zoo.get_config_file` does for Detectron2's own configs.

    Args:
        config_file: a path, or a name relative to `configs/`.

    Returns:
        The path of the file.

    Raises:
        InputNotFoundError: neither exists.
    """
    if os.path.isfile(config_file):
        return config_file
    packaged = config_dir() / config_file
    if packaged.is_file():
        return str(packaged)
    raise InputNotFoundError(
        f"config file {config_file!r} is neither a file nor one of the plugin's configs under {config_dir()}"
    )


def _reason(error: Exception) -> str:
    """What went wrong, without the quotes KeyError puts around its message."""
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


def build_cfg(config_file: str, opts: list[str] | None = None) -> CN:
    """Build a yacs config: get_cfg() -> add_yolo_mask_config -> merge_from_file -> merge_from_list.

    That is the order that works. A config file or override yacs cannot take raises an InputError naming the
    file or the override.

    Args:
        config_file: a yacs yaml, as `get_config_file` finds it.
        opts: overrides, as on Detectron2's command line (["KEY", "value", ...]).

    Returns:
        The config.

    Examples:
        >>> cfg = build_cfg("shapes/yolo_mask_single_pass.yaml", ["MODEL.DEVICE", "cpu"])
        >>> model = detectron2.modeling.build_model(cfg)
    """
    cfg = get_cfg()
    add_yolo_mask_config(cfg)
    path = get_config_file(config_file)
    try:
        cfg.merge_from_file(path)
    except (KeyError, ValueError, FileNotFoundError, yaml.YAMLError) as e:  # unknown key, wrong type, _BASE_, syntax
        raise InvalidInputError(f"config file {path!r}: {_reason(e)}") from e
    try:
        cfg.merge_from_list(list(opts or []))
    except (AssertionError, KeyError) as e:  # yacs reports unknown keys / odd pairs with bare asserts (gone under -O)
        raise ConfigKeyError(f"bad command-line config override: {_reason(e)}") from e
    except ValueError as e:  # a value of the wrong type
        raise InvalidInputError(f"bad command-line config override: {e}") from e
    return cfg
