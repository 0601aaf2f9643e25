"""The one train argument YOLO-mask adds to Ultralytics' `default.yaml`: `mask`, the mask loss gain.

Ultralytics rejects arguments its `default.yaml` lacks, so the trainer extends its base config with this key
(a `mask=` override then passes Ultralytics' own check, and `last.pt` resumes with it), and the validator,
which never computes a gain, drops it before Ultralytics checks its arguments.
"""
from __future__ import annotations

from types import SimpleNamespace

from ultralytics.cfg import cfg2dict

MASK_GAIN_ARG = "mask"
DEFAULT_MASK_GAIN = 2.5  # next to Ultralytics' box 7.5 / cls 0.5 / dfl 1.5


def with_mask_args(cfg: str | dict | SimpleNamespace) -> dict:
    """Ultralytics' base config with the `mask` gain added.

    Args:
        cfg: `DEFAULT_CFG`, a yaml path or a dict.

    Returns:
        The config as a dict, `mask` defaulting to `DEFAULT_MASK_GAIN`.
    """
    return {MASK_GAIN_ARG: DEFAULT_MASK_GAIN, **cfg2dict(cfg)}


def without_mask_args(args: dict | SimpleNamespace | None) -> dict:
    """Arguments without the `mask` gain, which Ultralytics' validator would refuse.

    Args:
        args: Ultralytics arguments (None: none).

    Returns:
        The arguments as a dict, without `mask`.
    """
    return {k: v for k, v in cfg2dict(args or {}).items() if k != MASK_GAIN_ARG}
