"""`YOLOMaskModel`: an Ultralytics `DetectionModel` with the RoIAlign FCN mask branch on its detect head's maps.

The detector is unchanged (a YOLO detection checkpoint loads into it as is); the mask branch pools the
P3/P4/P5 maps the detect head returns as "feats" (in training, and in eval as the second output), and with
`pool_p2` (the default) also YOLO's stride-4 body map, added to that output as "p2"; the image goes through YOLO once.
Masks are predicted after NMS, for the kept boxes only, by `mask_probs`.
"""
from __future__ import annotations

import torch
from ultralytics.nn.modules.head import Detect
from ultralytics.nn.tasks import DetectionModel

from yolo_mask_plugin.adapters.loss import YOLOMaskLoss
from yolo_mask_plugin.core.errors import InvalidInputError
from yolo_mask_plugin.core.mask_branch import MASK_HEAD_DEFAULTS, RoIMaskBranch
from yolo_mask_plugin.core.postprocess import detection_mask_probs
from yolo_mask_plugin.yolo import split_yolo


class YOLOMaskModel(DetectionModel):
    """An Ultralytics `DetectionModel` plus the core `RoIMaskBranch` on its detect head's maps.

    Example::

        model = YOLOMaskModel("yolo11n.yaml", nc=4)      # or a dict with a `mask_head:` mapping
        outputs, raw = model.eval()(images)              # detections before NMS, and the head's maps
        probs = model.mask_probs(raw, [boxes_xyxy], [classes])
    """

    def __init__(self, cfg: str | dict = "yolo11n.yaml", ch: int = 3, nc: int | None = None, verbose: bool = True):
        """A YOLO detection yaml (or dict) plus an optional `mask_head:` mapping (keys of `MASK_HEAD_DEFAULTS`)."""
        super().__init__(cfg, ch=ch, nc=nc, verbose=False)
        head = self.model[-1]
        if type(head) is not Detect or getattr(head, "one2one_cv2", None) is not None:
            raise ValueError(
                f"YOLO-mask needs a YOLO detection model with a one-to-many Detect head (e.g. yolo11n.yaml / "
                f"yolo11n.pt); this model has a {type(head).__name__} head{' (end-to-end)' if head.end2end else ''}"
            )
        spec = {**MASK_HEAD_DEFAULTS, **self.yaml.get("mask_head", {})}
        channels = [branch[0].conv.in_channels for branch in head.cv2]
        strides = [int(s) for s in head.stride.tolist()]
        self.p2_layer = None
        if spec["pool_p2"]:
            p2 = split_yolo(self).maps.get("p2")
            if p2 is None:
                raise ValueError("mask_head pool_p2: this YOLO has no stride-4 body map")
            self.p2_layer = p2.layer
            channels, strides = [p2.channels, *channels], [p2.stride, *strides]
            self.model[p2.layer].register_forward_hook(self._keep_p2)
        self.mask_head = RoIMaskBranch(channels, strides, num_classes=head.nc, **spec)
        self.yaml["mask_head"] = dict(self.mask_head.spec)  # what a reload or a Detectron2 config must match
        if verbose:
            self.info()

    def _keep_p2(self, module, inputs, output) -> None:
        self._p2 = output

    def predict(self, x, *args, **kwargs):
        """Ultralytics' forward; with `pool_p2`, the detect head's output dict also carries the "p2" map. In eval mode
        that dict comes as `MaskBranchInputs`, which Ultralytics' YOLO-seg predictor and validator cannot misuse.

        Refused with the detect head in export mode: that is Ultralytics' own exporter (`YOLO("best.pt").export`,
        `yolo export`) tracing the model, which would write the detector alone. `YOLOMaskExporter` runs the layers
        itself and never gets here.
        """
        if self.model[-1].export:
            raise InvalidInputError(
                "this is a YOLO-mask model: Ultralytics' exporter would write its detector without the mask branch. "
                "Export it with YOLOMask(...).export(format=...) or `yolo-mask segment export model=... format=...` "
                "(onnx, torchscript, openvino: NMS, RoIAlign and the mask head in the graph)"
            )
        out = super().predict(x, *args, **kwargs)
        raw = out[1] if isinstance(out, tuple) else out
        if not isinstance(raw, dict):  # embeddings, or augmented inference (no maps)
            return out
        if getattr(self, "p2_layer", None) is not None and "_p2" in self.__dict__:
            raw["p2"] = self.__dict__.pop("_p2")
        return (out[0], MaskBranchInputs(raw)) if isinstance(out, tuple) else out

    def mask_features(self, raw: dict) -> list[torch.Tensor]:
        """The maps the mask branch pools, finest first.

        Args:
            raw: the detect head's output dict.

        Returns:
            ["p2",] + the head's "feats": (B, C_l, H_l, W_l) maps.
        """
        return [raw["p2"], *raw["feats"]] if getattr(self, "p2_layer", None) is not None else list(raw["feats"])

    def init_criterion(self):
        """The YOLO-mask loss (`YOLOMaskLoss`), which Ultralytics' `DetectionModel.loss` builds on first use."""
        return YOLOMaskLoss(self)

    def mask_probs(self, raw: dict, boxes: list[torch.Tensor], classes: list[torch.Tensor]) -> list[torch.Tensor]:
        """Mask probabilities of boxes, from the detect head's output dict.

        Args:
            raw: the detect head's output dict (the model's second output in eval mode).
            boxes: per image, (N_i, 4) xyxy boxes in input pixels (the detect head's frame).
            classes: per image, the (N_i,) class of each box.

        Returns:
            Per image, (N_i, R, R) mask probabilities.
        """
        return self.mask_head.mask_probs(self.mask_features(raw), boxes, classes)

    def detection_mask_probs(
        self, raw: dict, boxes: list[torch.Tensor], classes: list[torch.Tensor], input_hw: tuple[int, int]
    ) -> list[torch.Tensor]:
        """The post-NMS mask step (`core.detection_mask_probs`): boxes clipped to the input in place, then masks.

        Args:
            raw: the detect head's output dict.
            boxes: per image, the (N_i, 4) xyxy boxes NMS kept, in input pixels; clipped in place.
            classes: per image, their (N_i,) classes.
            input_hw: (H, W) of the input.

        Returns:
            Per image, (N_i, R, R) mask probabilities.
        """
        return detection_mask_probs(self.mask_head, self.mask_features(raw), boxes, classes, input_hw)


class MaskBranchInputs(dict):
    """The detect head's output dict ("boxes", "scores", "feats"; "p2" with pool_p2), the second output of a
    YOLOMaskModel in eval mode: the maps the mask branch pools once NMS has kept its boxes.

    Ultralytics' YOLO-seg predictor and validator, which `YOLO("best.pt")` and `yolo predict/val model=best.pt` pick
    for a segment checkpoint, take that output for prototype masks: they iterate it or read its `shape`. Both stop
    here with an error naming YOLOMask, at the first batch, instead of an AttributeError deep in Ultralytics. Keys,
    `items()`, `len()` and copies work as for any dict.
    """

    def __iter__(self):
        raise TypeError(STOCK_SEGMENT_ERROR)

    @property
    def shape(self):
        """Refused: Ultralytics' YOLO-seg code reads it as a prototype-mask tensor's (see the class docstring)."""
        raise TypeError(STOCK_SEGMENT_ERROR)


STOCK_SEGMENT_ERROR = (
    "this is a YOLO-mask model (an RoIAlign mask head after NMS), not YOLO-seg: Ultralytics' segment predictor and "
    "validator cannot make its masks. Use YOLOMask('best.pt').predict/val(...) or `yolo-mask segment predict|val "
    "model=...`"
)


def find_mask_model(model: torch.nn.Module, what: str) -> YOLOMaskModel:
    """Find the `YOLOMaskModel` in `model`: itself, wrapped by EMA/DDP, or the `.model` AutoBackend runs.

    Args:
        model: what a trainer, validator or predictor holds.
        what: who asks, for the error.

    Returns:
        The `YOLOMaskModel`.

    Raises:
        TypeError: `model` holds none (a stock YOLO-seg or detect model).
    """
    inner = getattr(model, "model", None)
    for candidate in (model, inner):
        if isinstance(candidate, torch.nn.Module):
            found = next((m for m in candidate.modules() if isinstance(m, YOLOMaskModel)), None)
            if found is not None:
                return found
    got = type(inner if isinstance(inner, torch.nn.Module) else model).__name__
    raise TypeError(
        f"{what} needs a YOLO-mask model (YOLOMaskModel, trained with YOLOMaskTrainer), got a {got}: a stock "
        "YOLO-seg or detect checkpoint has no RoIAlign mask head; validate it with YOLO(...).val() instead, "
        "or fine-tune a detect checkpoint with YOLOMask('<detect>.pt').train(...)"
    )
