"""An Ultralytics YOLO-mask checkpoint as a Detectron2 checkpoint, loaded the Detectron2 way.

`convert_ultralytics_checkpoint("best.pt", "best_d2.pth")` writes the checkpoint's weights under the names the
single-pass Detectron2 model gives them (YOLO's body `backbone.layers.*`, its detect head
`proposal_generator.head.*`, the mask branch `roi_heads.mask_laterals.*` and `roi_heads.mask_head.fcn.*`), for
`DetectionCheckpointer` to load through MODEL.WEIGHTS or `train.init_checkpoint`, as Detectron2 loads
converted torchvision or Caffe2 weights. The file also records the shape of the mask head, so
`check_mask_head_config` can name the config keys that must describe it (Detectron2's checkpointer would
only warn and skip tensors of another shape, leaving a fresh head).
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from detectron2.config import CfgNode
from ultralytics.nn.tasks import DetectionModel

from yolo_mask_plugin.adapters.yolo_model import load_yolo, split_yolo
from yolo_mask_plugin.core.errors import InputNotFoundError, InvalidInputError

POOLER_TYPE = "ROIAlignV2"  # RoIAlign with aligned=True, as `MultiLevelRoIAlign`
METADATA_KEY = "yolo_mask"  # what the converted file records next to "model"


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


def ultralytics_to_d2_state_dict(model: DetectionModel) -> dict[str, torch.Tensor]:
    """A YOLO (with or without a mask branch) under the single-pass Detectron2 model's names."""
    head_index = len(model.model) - 1
    renamed = {}
    for key, value in model.state_dict().items():
        if key.startswith("model."):
            index, rest = key[len("model.") :].split(".", 1)
            prefix = "proposal_generator.head" if int(index) == head_index else f"backbone.layers.{index}"
            renamed[f"{prefix}.{rest}"] = value
        elif key.startswith("mask_head.laterals."):
            renamed["roi_heads.mask_laterals." + key[len("mask_head.laterals.") :]] = value
        elif key.startswith("mask_head.fcn."):
            renamed["roi_heads.mask_head.fcn." + key[len("mask_head.fcn.") :]] = value
    return renamed


def convert_ultralytics_checkpoint(weights: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Write `output` (a Detectron2 `.pth`) from an Ultralytics detection or YOLO-mask checkpoint `weights`."""
    model = load_yolo(str(weights))
    branch = getattr(model, "mask_head", None)
    metadata = {
        "source": str(Path(weights).absolute()),
        "head_maps": split_yolo(model).head_maps,
        "mask_head": dict(branch.spec) if branch is not None else None,
    }
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in ultralytics_to_d2_state_dict(model).items()}
    torch.save({"model": state, "__author__": "yolo_mask_plugin", METADATA_KEY: metadata}, output)
    return output


def converted_metadata(path: str | os.PathLike) -> dict | None:
    """What `convert_ultralytics_checkpoint` recorded in `path`; None for any other checkpoint or a missing file."""
    if not str(path).endswith((".pth", ".pt")) or not Path(path).is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError):  # e.g. an Ultralytics .pt: not ours
        return None
    return checkpoint.get(METADATA_KEY) if isinstance(checkpoint, dict) else None


def check_mask_head_config(cfg: CfgNode, weights: str | os.PathLike) -> None:
    """A clear error when `weights` is a converted YOLO-mask checkpoint whose mask head `cfg` does not describe."""
    metadata = converted_metadata(weights)
    if not metadata or metadata.get("mask_head") is None:
        return
    opts = mask_head_opts(metadata["mask_head"], metadata["head_maps"])
    wrong = []
    for key, expected in zip(opts[::2], opts[1::2]):
        node = cfg
        for part in key.split("."):
            node = node[part]
        if str(list(node) if isinstance(node, (list, tuple)) else node) != expected:
            wrong.append(f"{key}={node!r} (checkpoint: {expected})")
    if wrong:
        raise InvalidInputError(
            f"MODEL.WEIGHTS={str(weights)!r} holds a trained mask head that this config does not describe: "
            f"{'; '.join(wrong)}. Use configs/yolo_mask_ultralytics.yaml or add these opts: {' '.join(opts)}"
        )


def _tensor_load_error(path: str | os.PathLike) -> Exception | None:
    """Why torch cannot load `path` as a checkpoint of tensors, as Detectron2 loads it; None if it can."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        return e
    return None


def as_detectron2_weights(weights: str, output_dir: str | os.PathLike, key: str = "MODEL.WEIGHTS") -> str:
    """`weights` as given, or, for an Ultralytics `.pt` (detection or YOLO-mask), its converted copy
    `<output_dir>/<name>_d2.pth`: what `yolo-mask train/eval/predict` give Detectron2's checkpointer.

    A local file that is missing or that torch cannot read raises an InputError naming `key` (where the user
    gave it), before any model is built; Detectron2 would fail later with an assertion or torch's advice to
    unpickle it unsafely. Empty `weights` (from scratch), URLs and Detectron2's `.pkl` pass as they are.
    """
    if not weights or "://" in weights:
        return weights
    if not Path(weights).is_file():
        raise InputNotFoundError(f"{key} {weights!r} does not exist")
    error = None if weights.endswith(".pkl") else _tensor_load_error(weights)
    if error is None:
        return weights
    if not weights.endswith(".pt"):
        raise InvalidInputError(
            f"{key} {weights!r} is not a checkpoint Detectron2 can load ({type(error).__name__}): the file is empty, "
            "truncated or not a torch checkpoint of tensors"
        )
    converted = convert_ultralytics_checkpoint(weights, Path(output_dir) / f"{Path(weights).stem}_d2.pth")
    print(f"[yolo-mask] converted the Ultralytics checkpoint {weights} for Detectron2: {converted}", flush=True)
    return str(converted)
