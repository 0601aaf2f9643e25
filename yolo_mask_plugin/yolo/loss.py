"""Ultralytics' YOLO detection loss for a detect head on its own, with Ultralytics' default gains."""
from __future__ import annotations

from types import SimpleNamespace

from ultralytics.nn.modules.head import Detect
from ultralytics.utils import DEFAULT_CFG_DICT
from ultralytics.utils.loss import v8DetectionLoss

# Ultralytics' default gains of its detection loss (`default.yaml`: box 7.5, cls 0.5, dfl 1.5).
DETECTION_LOSS_GAINS = {k: float(DEFAULT_CFG_DICT[k]) for k in ("box", "cls", "dfl")}


def detection_loss(head: Detect, gains: dict[str, float]) -> v8DetectionLoss:
    """Ultralytics' own `v8DetectionLoss` (task-aligned assigner, CIoU + DFL + BCE) for a detect head on its own.

    The loss reads three things of a `DetectionModel`: its detect head (`model[-1]`: strides, classes, reg_max),
    its device, and the gains in `args`; these are given here, so a shell that owns only the head (Detectron2's
    proposal generator) trains it with the same loss as Ultralytics' trainer.

    Args:
        head: the detect head, with its strides set (as in a built model).
        gains: the loss gains, exactly the keys "box", "cls", "dfl" (Ultralytics': `DETECTION_LOSS_GAINS`).

    Returns:
        The loss; called with the head's training outputs and a batch, as Ultralytics' trainer calls it.

    Raises:
        ValueError: `gains` lacks one of the keys or has another.
    """
    unknown = sorted(set(gains) - set(DETECTION_LOSS_GAINS))
    missing = sorted(set(DETECTION_LOSS_GAINS) - set(gains))
    if unknown or missing:
        raise ValueError(f"detection loss gains need exactly {sorted(DETECTION_LOSS_GAINS)}; got {sorted(gains)}")
    model = SimpleNamespace(model=[head], args=SimpleNamespace(**gains), parameters=head.parameters)
    return v8DetectionLoss(model)
