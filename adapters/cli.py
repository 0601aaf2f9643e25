"""`yolo-mask segment MODE key=value ...`: Ultralytics' `yolo` command line, run on `YOLOMask`.

The arguments are read as `yolo segment MODE key=value ...` reads them, with Ultralytics' own functions:
`merge_equals_args` (spaces around '='), `parse_key_value_pair` (values as Python literals), `cfg=custom.yaml`
read by `cfg2dict`, and `check_dict_alignment` (unknown keys, with the similar ones). Then `YOLOMask(model).MODE(
**overrides)` runs, whose trainer, validator, predictor and exporter check the values (`get_cfg`) and write the
run folders as Ultralytics' do. As `yolo predict` does, predictions are saved (`save=True`) and streamed one image
at a time. YOLO-mask adds one train key, `mask=` (the mask loss gain), and requires `model=`: Ultralytics' default
model for the segment task is a YOLO-seg checkpoint, which has no RoIAlign mask head.
"""
from __future__ import annotations

from typing import Any

from ultralytics.cfg import cfg2dict, check_dict_alignment, merge_equals_args, parse_key_value_pair
from ultralytics.utils import ASSETS, DEFAULT_CFG_DICT, remove_colorstr

from yolo_mask_plugin.adapters.args import with_mask_args
from yolo_mask_plugin.adapters.model import YOLOMask
from yolo_mask_plugin.core.errors import InvalidInputError

MODES = ("train", "val", "predict", "export")
BARE_TRUE_FLAGS = {"half", "int8", "end2end", "nms"}  # as `yolo`: bare flags whose defaults are missing or None


def run_yolo_cli(mode: str, args: list[str]) -> None:
    """Run `yolo segment <mode> <args>` (Ultralytics' syntax and key checks) on `YOLOMask`."""
    if mode not in MODES:
        raise InvalidInputError(f"mode {mode!r}: yolo-mask segment runs one of {', '.join(MODES)}")
    overrides = parse_yolo_args(args, with_mask_args(DEFAULT_CFG_DICT) if mode == "train" else DEFAULT_CFG_DICT)
    if overrides.pop("mode", mode) != mode:
        raise InvalidInputError(f"mode is the word after 'segment' ({mode}); drop the mode= argument")
    if "model" not in overrides:
        raise InvalidInputError(
            "give model=: a YOLO-mask best.pt or export (.onnx, .torchscript, _openvino_model/), or for train a YOLO "
            "detection .pt/.yaml to start from (Ultralytics' default segment model is a YOLO-seg checkpoint)"
        )
    model = YOLOMask(overrides["model"], task=overrides.pop("task", None))  # `model` stays an argument, as in `yolo`
    if mode == "predict":
        overrides = {"source": ASSETS, "save": True, **overrides}
        for _ in model.predict(stream=True, **overrides):  # one image at a time, as `yolo predict` streams
            pass
    else:
        getattr(model, mode)(**overrides)


def parse_yolo_args(args: list[str], known: dict[str, Any]) -> dict[str, Any]:
    """`key=value` arguments as the `yolo` command reads them, checked against the `known` keys; `cfg=file.yaml`
    gives defaults that the other arguments override. Raises `InvalidInputError` naming the argument."""
    overrides: dict[str, Any] = {}
    for arg in merge_equals_args(args):
        if "=" not in arg:
            if isinstance(known.get(arg), bool) or arg in BARE_TRUE_FLAGS:
                overrides[arg] = True
                continue
            if arg in known:
                raise InvalidInputError(f"'{arg}' is a YOLO argument without a value: give {arg}={known[arg]}")
            check_keys(known, {arg: ""})
        try:
            key, value = parse_key_value_pair(arg)
        except (NameError, SyntaxError, ValueError, AssertionError) as e:
            raise InvalidInputError(f"{arg!r}: {e}") from e
        if key == "cfg" and value is not None:
            overrides = {**{k: v for k, v in cfg2dict(value).items() if k != "cfg"}, **overrides}
        else:
            overrides[key] = value
    check_keys(known, overrides)
    return overrides


def check_keys(known: dict[str, Any], given: dict[str, Any]) -> None:
    """Ultralytics' key check (`check_dict_alignment`), its message as one InvalidInputError line: no help text, no
    terminal colours (8.4.175 colours the key, 8.4.190 does not)."""
    try:
        check_dict_alignment(known, given)
    except SyntaxError as e:
        raise InvalidInputError(" ".join(remove_colorstr(str(e)).split("\n\n")[0].split())) from e
