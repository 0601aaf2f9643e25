"""Ultralytics compatibility: the releases the plugin supports, and every Ultralytics internal it must touch.

Importing this module checks the installed Ultralytics against `ULTRALYTICS_REQUIREMENT` and stops, in one line,
outside it; both shells import Ultralytics through it (the Ultralytics shell first thing, `adapters/__init__.py`).
Each function below wraps one Ultralytics internal (a private name, a call that skips a parent class, a file
Ultralytics writes) for which no public API exists, naming the API that is missing and the releases checked:
the oldest supported one and the pinned one of requirements.txt, which CI tests (`make test-oldest-ultralytics`).
`tests/test_compat.py` checks that no other module of the plugin uses a private Ultralytics name. The functions
import Ultralytics' submodules when called: only after the version check, which an old release may not pass.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import ultralytics

# Below 8.4.175 AutoBackend runs a static-batch (NMS) export on a whole batch and fails (the end-to-end export
# predicting or validating several images); below 8.4.114 `YOLODataset.format_class` is missing; below 8.4.104 the
# detection loss returns no dict of named items (`YOLOMaskLoss`).
OLDEST_ULTRALYTICS = (8, 4, 175)
NEXT_ULTRALYTICS_MINOR = (8, 5)  # a new minor release may change what the shell subclasses: not supported untested
ULTRALYTICS_REQUIREMENT = (
    f"ultralytics>={'.'.join(map(str, OLDEST_ULTRALYTICS))},<{'.'.join(map(str, NEXT_ULTRALYTICS_MINOR))}"
)


class UnsupportedUltralyticsError(ImportError):
    """The installed Ultralytics is outside the range the plugin supports."""


def release_tuple(version: str) -> tuple[int, ...]:
    """(8, 4, 190) from "8.4.190" (a pre-release or local suffix after the numbers is ignored)."""
    found = re.match(r"\d+(\.\d+)*", version)
    if not found:
        raise UnsupportedUltralyticsError(f"Ultralytics reports an unreadable version {version!r}")
    return tuple(int(part) for part in found.group().split("."))


def check_ultralytics_version(version: str) -> None:
    """Raise `UnsupportedUltralyticsError`, naming `version` and the supported range, when it lies outside."""
    release = release_tuple(version)
    if not OLDEST_ULTRALYTICS <= release < NEXT_ULTRALYTICS_MINOR:
        raise UnsupportedUltralyticsError(
            f"yolo-mask-plugin supports {ULTRALYTICS_REQUIREMENT}, but Ultralytics {version} is installed "
            f"(pip install '{ULTRALYTICS_REQUIREMENT}')"
        )


check_ultralytics_version(ultralytics.__version__)


def decode_detect_head(head: torch.nn.Module, raw: dict[str, torch.Tensor]) -> torch.Tensor:
    """Decode a Detect head's training-mode output (the dict its loss takes) into the (B, 4 + nc, anchors) boxes
    and scores its eval mode returns, without running the head again.

    Missing public API: `Detect.forward` decodes only in eval mode; the decoding alone is `Detect._inference`
    (checked: Ultralytics 8.4.175 and 8.4.190).
    """
    return head._inference(raw)


def detection_nms(validator: Any, preds: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """Ultralytics' validation NMS as a `DetectionValidator` runs it (its conf, iou, max_det, agnostic and end2end
    arguments), giving per-image dicts of bboxes, conf, cls, extra.

    Missing public API: `SegmentationValidator.postprocess` runs the NMS and then decodes YOLO-seg's mask
    prototypes, which a YOLO-mask model does not have; the NMS step alone is its parent's `postprocess`, called here
    unbound on the segmentation validator (checked: Ultralytics 8.4.175 and 8.4.190).
    """
    from ultralytics.models.yolo.detect import DetectionValidator

    return DetectionValidator.postprocess(validator, preds)


def add_train_args(checkpoint: Path, extra: dict[str, Any]) -> None:
    """Write `extra` into the `train_args` of a finished Ultralytics checkpoint file.

    Missing public API: a trainer's own arguments beyond `default.yaml`'s keys are dropped from finished
    checkpoints by `strip_optimizer` (which `BaseTrainer.final_eval` calls, keeping `DEFAULT_CFG_KEYS` only), and no
    hook runs between the stripping and the end of training, so the file is rewritten after
    `final_eval` (checked: Ultralytics 8.4.175 and 8.4.190).
    """
    from ultralytics.utils.patches import torch_load, torch_save

    ckpt = torch_load(checkpoint, map_location="cpu")
    ckpt["train_args"].update(extra)
    torch_save(ckpt, checkpoint)

