"""`yolo-mask segment MODE key=value ...`: Ultralytics' own `yolo` command line, run on `YOLOMask`.

A `yolo` command line works by changing the program name: the arguments go to Ultralytics' `entrypoint` as
`yolo segment MODE key=value ...`, so parsing, key checks (`check_dict_alignment`, `check_cfg`), defaults, warnings,
`cfg=custom.yaml`, saving predictions and the run folders are Ultralytics' own. YOLO-mask adds one train key,
`mask=` (the mask loss gain), and requires `model=`: Ultralytics' default model for the segment task is a
YOLO-seg checkpoint, which has no RoIAlign mask head.
"""
from __future__ import annotations

from contextlib import ExitStack
from unittest import mock

import ultralytics
from ultralytics import cfg as ultralytics_cfg
from ultralytics.engine import model as ultralytics_model

from yolo_mask_plugin.adapters.args import with_mask_args
from yolo_mask_plugin.adapters.model import YOLOMask
from yolo_mask_plugin.core.errors import InvalidInputError

MODES = ("train", "val", "predict", "export")


def run_yolo_cli(mode: str, args: list[str]) -> None:
    """Run `yolo segment <mode> <args>` (Ultralytics' syntax and checks) with `YOLOMask` as the model class."""
    if mode not in MODES:
        raise InvalidInputError(f"mode {mode!r}: yolo-mask segment runs one of {', '.join(MODES)}")
    keys = {a.split("=", 1)[0].strip() for a in ultralytics_cfg.merge_equals_args(args) if "=" in a}
    if not keys & {"model", "cfg"}:
        raise InvalidInputError(
            "give model=: a YOLO-mask best.pt or export (.onnx, .torchscript, _openvino_model/), or for train a YOLO "
            "detection .pt/.yaml to start from (Ultralytics' default segment model is a YOLO-seg checkpoint)"
        )
    argv = ["yolo", "segment", mode, *args]
    # Ultralytics' entrypoint has no hook for the model class or extra keys, so for this one call it sees:
    #  - YOLOMask where it builds `YOLO(model, task=task)` (it imports the class from the package on each call);
    #  - the argument list as `yolo` would get it: `entrypoint` reads ARGV, and `Model.predict` saves results and
    #    streams them (predict_cli) only when the program is named `yolo`;
    #  - `mask` among the known keys, as YOLOMaskTrainer's config has it (predict/export still refuse it).
    with ExitStack() as patches:
        patches.enter_context(mock.patch.object(ultralytics, "YOLO", YOLOMask))
        patches.enter_context(mock.patch.object(ultralytics_cfg, "ARGV", argv))
        patches.enter_context(mock.patch.object(ultralytics_model, "ARGV", argv))
        patches.enter_context(
            mock.patch.object(ultralytics_cfg, "DEFAULT_CFG_DICT", with_mask_args(ultralytics_cfg.DEFAULT_CFG_DICT))
        )
        try:
            ultralytics_cfg.entrypoint()
        except SyntaxError as e:  # Ultralytics' key checks: an unknown key, or a key without '=' (+ its help text)
            raise InvalidInputError(" ".join(str(e).split("\n\n")[0].split())) from e
