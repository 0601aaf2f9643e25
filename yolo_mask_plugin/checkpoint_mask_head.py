"""A mask branch Ultralytics trained (a YOLO-mask checkpoint), run by Detectron2's `YOLOMaskROIHeads`.

With `build_yolo_backbone` and MODEL.YOLO.WEIGHTS a YOLO-mask `.pt`, the ROI heads start from the
checkpoint's laterals and FCN head, so one checkpoint gives the same masks in both frameworks. The config
must describe that head; `mask_head_opts` gives the keys (`configs/yolo_mask_ultralytics.yaml` holds them for
the default head).
"""
from __future__ import annotations

from detectron2.config import CfgNode
from torch import nn

POOLER_TYPE = "ROIAlignV2"  # RoIAlign with aligned=True, as `MultiLevelRoIAlign`


def mask_head_opts(spec: dict, head_maps: list[str]) -> list[str]:
    """Detectron2 config opts (for `merge_from_list` / the command line) describing a `RoIMaskBranch` spec
    that pools the detect head's maps `head_maps` (and the backbone's p2 with `pool_p2`)."""
    in_features = ["p2", *head_maps] if spec["pool_p2"] else list(head_maps)
    values = {
        "MODEL.ROI_HEADS.IN_FEATURES": list(in_features),
        "MODEL.ROI_MASK_HEAD.NAME": "YOLOMaskFCNHead",
        "MODEL.YOLO.MASK_HEAD.LATERAL_CHANNELS": spec["lateral_channels"],
        "MODEL.YOLO.MASK_HEAD.OUTPUT_RESOLUTION": spec["output_resolution"],
        "MODEL.ROI_MASK_HEAD.CONV_DIM": spec["conv_dim"],
        "MODEL.ROI_MASK_HEAD.NUM_CONV": spec["num_conv"],
        "MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION": spec["pooler_resolution"],
        "MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO": spec["sampling_ratio"],
        "MODEL.ROI_MASK_HEAD.POOLER_TYPE": POOLER_TYPE,
        "MODEL.ROI_MASK_HEAD.NORM": spec["norm"],
        "MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK": spec["class_agnostic"],
    }
    return [str(x) for key, value in values.items() for x in (key, value)]


def check_config_matches(cfg: CfgNode, spec: dict, head_maps: list[str]) -> None:
    """A clear error when the config describes another mask head than the checkpoint's."""
    opts = mask_head_opts(spec, head_maps)
    wrong = []
    for key, expected in zip(opts[::2], opts[1::2]):
        node = cfg
        for part in key.split("."):
            node = node[part]
        if str(list(node) if isinstance(node, (list, tuple)) else node) != expected:
            wrong.append(f"{key}={node!r} (checkpoint: {expected})")
    if wrong:
        raise ValueError(
            f"MODEL.YOLO.WEIGHTS={cfg.MODEL.YOLO.WEIGHTS!r} holds a trained mask head that this config does not "
            f"describe: {'; '.join(wrong)}. Use configs/yolo_mask_ultralytics.yaml or add these opts: "
            f"{' '.join(opts)}; or set MODEL.YOLO.MASK_HEAD.INIT_FROM_WEIGHTS False to train a new head."
        )


def copy_mask_branch(branch: nn.Module, laterals: nn.Module, fcn: nn.Module) -> None:
    """The checkpoint's lateral and FCN weights into Detectron2's modules (same classes, same names)."""
    laterals.load_state_dict(branch.laterals.state_dict())
    fcn.load_state_dict(branch.fcn.state_dict())
