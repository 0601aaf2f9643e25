"""Checkpoints both ways between Ultralytics' YOLO-mask and the single-pass Detectron2 model.

It imports both shells (`YOLOMaskModel`, the Detectron2 components), so it lives above them.

`convert_ultralytics_checkpoint("best.pt", "best_d2.pth")` writes the checkpoint's weights under the names the
single-pass Detectron2 model gives them (YOLO's body `backbone.layers.*`, its detect head
`proposal_generator.head.*`, the mask branch `roi_heads.mask_laterals.*` and `roi_heads.mask_head.fcn.*`), for
`DetectionCheckpointer` to load through MODEL.WEIGHTS or `train.init_checkpoint`, as Detectron2 loads
converted torchvision or Caffe2 weights. The file also records the shape of the mask head, so
`check_mask_head_config` can name the config keys that must describe it (Detectron2's checkpointer would
only warn and skip tensors of another shape, leaving a fresh head).

`export_ultralytics_checkpoint(model, "model.pt")` goes the other way: a single-pass Detectron2 model (e.g. trained
end to end by DefaultTrainer) as the `YOLOMaskModel` it is, saved as Ultralytics saves one, for `YOLOMask("model.pt")`.
"""
from __future__ import annotations

import copy
import os
import pickle
from datetime import datetime
from pathlib import Path

import torch
import ultralytics
from detectron2.config import CfgNode
from detectron2.layers import ROIAlign
from torch import nn
from ultralytics.nn.tasks import DetectionModel

from yolo_mask_plugin.adapters.mask_model import YOLOMaskModel
from yolo_mask_plugin.core.errors import InputNotFoundError, InvalidInputError
from yolo_mask_plugin.core.mask_branch import MASK_HEAD_DEFAULTS
from yolo_mask_plugin.d2.backbone import YOLOBackbone
from yolo_mask_plugin.d2.mask_head import YOLOMaskFCNHead
from yolo_mask_plugin.d2.proposal_generator import YOLOProposalGenerator
from yolo_mask_plugin.d2.roi_heads import YOLOMaskROIHeads
from yolo_mask_plugin.yolo import load_yolo, split_yolo

POOLER_TYPE = "ROIAlignV2"  # RoIAlign with aligned=True, as `MultiLevelRoIAlign`
METADATA_KEY = "yolo_mask"  # what the converted file records next to "model"


def mask_head_opts(spec: dict, head_maps: list[str]) -> list[str]:
    """The Detectron2 config opts that describe a trained mask branch.

    Args:
        spec: the `RoIMaskBranch` spec (keys of `MASK_HEAD_DEFAULTS`).
        head_maps: the detect head's maps it pools (and the backbone's p2 with `pool_p2`).

    Returns:
        ["KEY", "value", ...], for `merge_from_list` or the command line.
    """
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


def _d2_name(key: str, head_index: int) -> str | None:
    """The single-pass Detectron2 model's name of a YOLO(-mask) state-dict key; None for a key it has no part for."""
    if key.startswith("model."):
        index, rest = key[len("model.") :].split(".", 1)
        return f"{'proposal_generator.head' if int(index) == head_index else f'backbone.layers.{index}'}.{rest}"
    if key.startswith("mask_head.laterals."):
        return "roi_heads.mask_laterals." + key[len("mask_head.laterals.") :]
    if key.startswith("mask_head.fcn."):
        return "roi_heads.mask_head.fcn." + key[len("mask_head.fcn.") :]
    return None


def ultralytics_to_d2_state_dict(model: DetectionModel) -> dict[str, torch.Tensor]:
    """A YOLO's weights (with or without a mask branch) under the single-pass Detectron2 model's names.

    Args:
        model: an Ultralytics detection or YOLO-mask model.

    Returns:
        The state dict; keys the Detectron2 model has no part for are left out.
    """
    head_index = len(model.model) - 1
    names = {key: _d2_name(key, head_index) for key in model.state_dict()}
    return {names[key]: value for key, value in model.state_dict().items() if names[key] is not None}


def single_pass_mask_head_spec(model: nn.Module) -> dict:
    """The `RoIMaskBranch` spec (keys of `MASK_HEAD_DEFAULTS`) a single-pass Detectron2 model's mask branch has.

    Args:
        model: a Detectron2 `GeneralizedRCNN`.

    Returns:
        The spec.

    Raises:
        InvalidInputError: the model is not one YOLO-mask (another backbone, YOLO run on the image, a Detectron2
            mask head, a pooler other than ROIAlignV2, classes that do not map one to one).
    """
    backbone, proposals, heads = model.backbone, model.proposal_generator, model.roi_heads
    if not (isinstance(backbone, YOLOBackbone) and isinstance(proposals, YOLOProposalGenerator)
            and proposals.input_mode == "features" and isinstance(heads, YOLOMaskROIHeads)
            and heads.mask_laterals is not None and isinstance(heads.mask_head, YOLOMaskFCNHead)):
        raise InvalidInputError(
            "only the single-pass design (build_yolo_backbone, YOLOProposalGenerator on its features, "
            "YOLOMaskROIHeads with MASK_HEAD.LATERAL_CHANNELS > 0 and YOLOMaskFCNHead) is one YOLO-mask model; got "
            f"{type(backbone).__name__} + {type(proposals).__name__}"
            f"({getattr(proposals, 'input_mode', '?')}) + {type(heads).__name__}"
        )
    poolers = heads.mask_pooler.level_poolers
    if not all(isinstance(p, ROIAlign) and p.aligned for p in poolers):
        raise InvalidInputError(f"YOLO-mask pools with ROIAlignV2 (aligned=True); this model's pooler is {poolers[0]}")
    in_features = list(heads.mask_in_features)
    if in_features not in (proposals.in_features, ["p2", *proposals.in_features]):
        raise InvalidInputError(
            f"YOLO-mask's mask head pools the detect head's maps {proposals.in_features} (and p2); this model's "
            f"pools {in_features}"
        )
    if not torch.equal(proposals.class_map.cpu(), torch.arange(len(proposals.class_map))):
        raise InvalidInputError(
            "YOLO's classes map onto the dataset's other than one to one (MODEL.YOLO.CLASS_MAPPING, or a YOLO with "
            "classes the dataset lacks): Ultralytics would predict YOLO's own classes"
        )
    fcn = heads.mask_head.fcn
    return {
        "lateral_channels": heads.mask_laterals.convs[0].out_channels,
        "conv_dim": fcn.predictor.in_channels if len(fcn.convs) + len(fcn.deconvs) else MASK_HEAD_DEFAULTS["conv_dim"],
        "num_conv": len(fcn.convs),
        "pooler_resolution": fcn.pooler_resolution,
        "output_resolution": fcn.output_resolution,
        "sampling_ratio": poolers[0].sampling_ratio,
        "class_agnostic": fcn.num_classes == 1,
        "norm": "GN" if any(isinstance(n, nn.GroupNorm) for n in fcn.norms) else "",
        "pool_p2": "p2" in in_features,
    }


def export_ultralytics_checkpoint(model: nn.Module, output: str | os.PathLike, imgsz: int | None = None) -> Path:
    """Save a single-pass Detectron2 model as the Ultralytics YOLO-mask checkpoint it is: a `YOLOMaskModel` of its
    YOLO's definition and its mask head's spec, holding its weights, that `YOLOMask(output)` loads and predicts with.

    Written as Ultralytics' trainer writes `best.pt` (`model`, `train_args`, version, date), but in float32, not
    half: both frameworks then run the very same weights.

    Args:
        model: a single-pass Detectron2 model (see `single_pass_mask_head_spec`).
        output: the `.pt` to write.
        imgsz: the input size recorded as the default for Ultralytics' predictor (Detectron2's INPUT.MAX_SIZE_TEST).

    Returns:
        `output`.

    Examples:
        >>> export_ultralytics_checkpoint(build_model(cfg), "model.pt", imgsz=cfg.INPUT.MAX_SIZE_TEST)
        >>> YOLOMask("model.pt").predict("image.jpg")
    """
    proposals = model.proposal_generator
    spec = single_pass_mask_head_spec(model)
    definition = {**copy.deepcopy(proposals.yolo_definition), "mask_head": spec}
    yolo_mask = YOLOMaskModel(definition, nc=proposals.head.nc, verbose=False)
    head_index = len(yolo_mask.model) - 1
    weights = model.state_dict()
    state = {}
    for key in yolo_mask.state_dict():
        name = _d2_name(key, head_index)
        if name not in weights:
            raise InvalidInputError(f"the Detectron2 model has no {name!r} for Ultralytics' {key!r}")
        state[key] = weights[name].detach().cpu().clone()
    yolo_mask.load_state_dict(state)
    yolo_mask.names = dict(proposals.yolo_names)
    train_args = {"task": "segment", **({"imgsz": int(imgsz)} if imgsz else {})}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": yolo_mask.float().eval(), "ema": None, "train_args": train_args,
            "date": datetime.now().astimezone().isoformat(), "version": ultralytics.__version__,
            METADATA_KEY: {"exported_from": "detectron2", "mask_head": spec},
        },
        output,
    )
    return output


def convert_ultralytics_checkpoint(weights: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Convert an Ultralytics detection or YOLO-mask checkpoint into Detectron2 weights.

    Args:
        weights: the Ultralytics `.pt`.
        output: the Detectron2 `.pth` to write (folders created).

    Returns:
        `output`, for MODEL.WEIGHTS of a single-pass config (the mask head's opts: `mask_head_opts`).

    Examples:
        >>> convert_ultralytics_checkpoint("best.pt", "best_d2.pth")  # `yolo-mask convert best.pt best_d2.pth`
    """
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
    """Read what `convert_ultralytics_checkpoint` recorded in a file.

    Args:
        path: any checkpoint path.

    Returns:
        The record (source, head_maps, mask_head); None for any other checkpoint or a missing file.
    """
    if not str(path).endswith((".pth", ".pt")) or not Path(path).is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError):  # e.g. an Ultralytics .pt: not ours
        return None
    return checkpoint.get(METADATA_KEY) if isinstance(checkpoint, dict) else None


def check_mask_head_config(cfg: CfgNode, weights: str | os.PathLike) -> None:
    """Fail clearly when `weights` is a converted YOLO-mask checkpoint whose mask head `cfg` does not describe.

    Detectron2's checkpointer would only warn and skip tensors of another shape, leaving a fresh head.

    Args:
        cfg: the config the model is built from.
        weights: its MODEL.WEIGHTS.

    Raises:
        InvalidInputError: naming each config key that differs and the opts that would fix it.
    """
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

    Args:
        weights: MODEL.WEIGHTS (or another key's value) as the user gave it.
        output_dir: where a converted copy goes.
        key: the config key or argument the user gave `weights` as, for errors.

    Returns:
        What to give Detectron2's checkpointer.

    Raises:
        InputNotFoundError: a local `weights` does not exist.
        InvalidInputError: torch cannot read it and it is no Ultralytics `.pt`.
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
