"""`build_yolo_backbone`: YOLO's body + neck as a Detectron2 Backbone.

Its outputs are the maps that feed YOLO's detect head (p3/p4/p5 at strides 8/16/32 for YOLO11), so the
detect head and the mask head share one pass of YOLO (single-pass design), plus YOLO's finer stride-4 body
map (p2), which the mask head may also pool for sharper mask boundaries.
"""
from __future__ import annotations

import torch
from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone

from yolo_mask_plugin.d2.config import require_yolo_mask_config
from yolo_mask_plugin.d2.registration import register_once
from yolo_mask_plugin.d2.yolo_source import (
    D2ToYOLOPixels,
    freeze,
    unfreeze,
    yolo_is_frozen,
    yolo_parts,
    yolo_source_args,
)
from yolo_mask_plugin.yolo import run_layers


class YOLOBackbone(Backbone):
    """YOLO's body + neck as a Detectron2 `Backbone`: outputs p3-p5 (the detect head's inputs) and p2.

    Example (LazyConfig; with yacs, `MODEL.BACKBONE.NAME: build_yolo_backbone`)::

        backbone = L(YOLOBackbone)(weights="yolo11n.yaml", num_classes=4, thing_classes=["a", "b", "c", "d"],
                                   pixel_mean=[0, 0, 0], pixel_std=[255, 255, 255], input_format="RGB")
    """

    def __init__(
        self,
        *,
        weights: str,
        num_classes: int | None = None,
        thing_classes: list[str] | None = None,
        pixel_mean: list[float] = (0.0, 0.0, 0.0),
        pixel_std: list[float] = (255.0, 255.0, 255.0),
        input_format: str = "RGB",
        frozen: bool | None = None,
    ):
        """
        Args:
            weights: an Ultralytics detection checkpoint (`.pt`) or model yaml (built untrained with `num_classes`
                classes named `thing_classes`); the same as the proposal generator's.
            pixel_mean, pixel_std, input_format: the model's (`GeneralizedRCNN`), undone before YOLO sees pixels.
            frozen: keep YOLO's weights and BatchNorm statistics fixed; False: YOLO's body trains (BatchNorm in
                training mode, as in Ultralytics' trainer); None: frozen for a `.pt`, trained for a yaml.
        """
        super().__init__()
        frozen = yolo_is_frozen(weights, frozen)
        parts = yolo_parts(weights, num_classes, thing_classes)
        self.layers = parts.layers
        self.to_yolo_pixels = D2ToYOLOPixels(list(pixel_mean), list(pixel_std), input_format)
        self._save = parts.save
        self._out_layers = [m.layer for m in parts.maps.values()]
        self.feature_shapes = {name: ShapeSpec(channels=m.channels, stride=m.stride) for name, m in parts.maps.items()}
        self.frozen = frozen
        (freeze if frozen else unfreeze)(self.layers)

    @property
    def size_divisibility(self) -> int:
        """The coarsest output stride: GeneralizedRCNN pads each batch to a multiple of it."""
        return max(shape.stride for shape in self.feature_shapes.values())

    def train(self, mode: bool = True) -> "YOLOBackbone":
        """A frozen YOLO stays in eval mode (its BatchNorm statistics are YOLO's own)."""
        return super().train(mode and not self.frozen)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run YOLO's body + neck once.

        Args:
            x: (B, 3, H, W) images normalised by GeneralizedRCNN (PIXEL_MEAN / PIXEL_STD, INPUT.FORMAT).

        Returns:
            The maps by name ("p2"-"p5"), each (B, C, H / stride, W / stride).
        """
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            maps = run_layers(self.layers, self._save, self._out_layers, self.to_yolo_pixels(x))
        return dict(zip(self.feature_shapes, maps))

    def output_shape(self) -> dict[str, ShapeSpec]:
        """Channels and stride of each output map, by name."""
        return dict(self.feature_shapes)


@register_once(BACKBONE_REGISTRY)
def build_yolo_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> YOLOBackbone:
    """Build YOLO from MODEL.YOLO.WEIGHTS, cut before its detect head; frozen or trained by MODEL.YOLO.FREEZE.

    Args:
        cfg: a config with the plugin's keys (`add_yolo_mask_config`).
        input_shape: the input's shape; 3 channels.

    Returns:
        The backbone (registered as BACKBONE_REGISTRY "build_yolo_backbone").
    """
    require_yolo_mask_config(cfg, "build_yolo_backbone")
    if input_shape.channels != 3:
        raise ValueError(f"build_yolo_backbone needs 3-channel input, got {input_shape.channels} (INPUT.FORMAT)")
    return YOLOBackbone(**yolo_source_args(cfg))
