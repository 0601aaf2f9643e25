"""A YOLO detection model cut at its detect head, and Ultralytics' layer wiring to run the part before it.

The split gives Detectron2 YOLO's body+neck (a backbone whose outputs are the detect head's inputs) and the
detect head on its own, so a single-pass model runs the image through YOLO once; the Ultralytics shell's
YOLO-mask model reads the same split to find the maps its mask branch pools.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn
from ultralytics.nn.modules.head import Detect
from ultralytics.nn.tasks import DetectionModel


class FeatureMap(NamedTuple):
    """Where a named YOLO map (p2-p5) comes from: the layer, its stride and width."""

    layer: int  # index of the YOLO layer whose output this is
    stride: int
    channels: int


@dataclass
class YOLOParts:
    """YOLO cut at its detect head: `layers` compute the maps listed in `head_inputs`, `head` detects on them."""

    layers: nn.ModuleList  # every layer but the detect head, in order, with Ultralytics' `.f` / `.i` wiring
    save: set[int]  # indices of layers whose outputs later layers read
    head_inputs: list[int]  # indices of the layers feeding the head, in the head's order
    head: Detect
    names: dict[int, str]
    # Maps a Detectron2 backbone can expose, named p<log2(stride)>: the head's inputs (p3-p5 for YOLO11) and,
    # when the body has one, its last map at half the finest head stride (p2), for sharper masks.
    maps: dict[str, FeatureMap]
    # The model definition (Ultralytics' `model.yaml`): what rebuilds this YOLO, e.g. as a `YOLOMaskModel`.
    definition: dict = field(default_factory=dict)
    # The checkpoint's trained RoIAlign mask branch (`RoIMaskBranch`) when it is a YOLO-mask checkpoint.
    mask_branch: nn.Module | None = None

    @property
    def head_maps(self) -> list[str]:
        """Names of the maps the detect head reads (e.g. ["p3", "p4", "p5"]), in its order."""
        return [name for name, m in self.maps.items() if m.layer in self.head_inputs]


def split_yolo(model: DetectionModel) -> YOLOParts:
    """Split a loaded YOLO detection model at its detect head.

    Args:
        model: a YOLO detection model, e.g. from `load_yolo`; its layers are shared, not copied.

    Returns:
        The `YOLOParts`: layers before the head, the head, and the maps a backbone can expose.

    Examples:
        >>> parts = split_yolo(load_yolo("yolo11n.pt"))
        >>> maps = run_layers(parts.layers, parts.save, parts.head_inputs, images)  # the head's inputs
        >>> raw = parts.head(maps)
    """
    head = model.model[-1]
    head_inputs = [head.f] if isinstance(head.f, int) else list(head.f)
    head_strides = [int(s) for s in head.stride.tolist()]
    layers = nn.ModuleList(list(model.model)[:-1])
    size = max(head_strides)
    training = model.training
    layers.eval()  # every layer's output shape, from a tiny forward pass that leaves BatchNorm statistics alone
    with torch.no_grad():
        outputs = run_layers(layers, set(model.save), list(range(len(layers))), torch.zeros(1, 3, size, size))
    layers.train(training)
    shapes = [m.shape for m in outputs]
    maps = {}
    fine_stride = min(head_strides) // 2
    body = range(min(head_inputs))
    fine = [i for i in body if len(shapes[i]) == 4 and shapes[i][-1] * fine_stride == size]
    if fine:
        maps[f"p{int(math.log2(fine_stride))}"] = FeatureMap(fine[-1], fine_stride, shapes[fine[-1]][1])
    for i, stride in zip(head_inputs, head_strides):
        maps[f"p{int(math.log2(stride))}"] = FeatureMap(i, stride, shapes[i][1])
    return YOLOParts(
        layers=layers, save=set(model.save), head_inputs=head_inputs, head=head, names=dict(model.names), maps=maps,
        definition=copy.deepcopy(model.yaml), mask_branch=getattr(model, "mask_head", None),
    )


def run_layers(layers: nn.ModuleList, save: set[int], outputs: list[int], x: torch.Tensor) -> list[torch.Tensor]:
    """Run YOLO's layers with Ultralytics' `_predict_once` wiring, stopping before the head.

    Args:
        layers: the layers before the head (`YOLOParts.layers`), with Ultralytics' `.f` / `.i` wiring.
        save: indices of layers whose outputs later layers read (`YOLOParts.save`).
        outputs: indices of the layers whose outputs to return.
        x: (B, 3, H, W) input images, in [0, 1].

    Returns:
        The outputs of the layers at `outputs`, in that order.
    """
    keep = save | set(outputs)
    cache: dict[int, torch.Tensor] = {}
    for m in layers:
        if m.f != -1:
            x = cache[m.f] if isinstance(m.f, int) else [x if j == -1 else cache[j] for j in m.f]
        x = m(x)
        if m.i in keep:
            cache[m.i] = x
    return [cache[i] for i in outputs]
