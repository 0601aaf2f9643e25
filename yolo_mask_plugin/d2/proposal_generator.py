"""`YOLOProposalGenerator`: YOLO's detections as Detectron2 proposals.

MODEL.YOLO.INPUT picks what YOLO runs on:
  * "image": the whole YOLO on each image, letterboxed to MODEL.YOLO.IMAGE_SIZE (the two-branch design,
    next to any Detectron2 backbone); boxes are mapped back to Detectron2's resized-image frame;
  * "features": only YOLO's detect head, on the maps a YOLO backbone already computed (single pass).
YOLO is trained by Ultralytics, so here it stays fixed: eval mode, no gradients, no losses.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from detectron2.config import CfgNode, configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY
from detectron2.structures import ImageList, Instances
from torch import nn
from ultralytics.utils.nms import non_max_suppression

from yolo_mask_plugin.adapters.yolo_model import run_layers
from yolo_mask_plugin.core.frames import Letterbox
from yolo_mask_plugin.d2.class_map import build_class_map
from yolo_mask_plugin.d2.config import require_yolo_mask_config
from yolo_mask_plugin.d2.detections import detections_to_instances
from yolo_mask_plugin.d2.registration import register_once
from yolo_mask_plugin.d2.yolo_source import D2ToYOLOPixels, freeze, yolo_parts, yolo_source_args

INPUT_MODES = ("image", "features")


@register_once(PROPOSAL_GENERATOR_REGISTRY)
class YOLOProposalGenerator(nn.Module):
    """YOLO (its detect head on the backbone's maps, or the whole YOLO on the image) + NMS as proposals.

    Example (LazyConfig; with yacs, `MODEL.PROPOSAL_GENERATOR.NAME: YOLOProposalGenerator`)::

        proposal_generator = L(YOLOProposalGenerator)(
            weights="best.pt", num_classes=4, thing_classes=["a", "b", "c", "d"], input_mode="features",
            in_features=["p3", "p4", "p5"], pixel_mean=[0, 0, 0], pixel_std=[255, 255, 255], input_format="RGB")
    """

    @configurable
    def __init__(
        self,
        *,
        weights: str,
        num_classes: int | None = None,
        thing_classes: list[str] | None = None,
        class_mapping: Sequence[Sequence[str]] = (),
        input_mode: str = "features",
        in_features: list[str] = ("p3", "p4", "p5"),
        image_size: int = 640,
        pixel_mean: list[float] = (0.0, 0.0, 0.0),
        pixel_std: list[float] = (255.0, 255.0, 255.0),
        input_format: str = "RGB",
        conf_thresh_train: float = 0.05,
        conf_thresh_test: float = 0.01,
        nms_thresh: float = 0.5,
        agnostic_nms: bool = False,
        max_detections_train: int = 100,
        max_detections_test: int = 100,
        frozen: bool = True,
    ):
        """
        Args:
            weights, num_classes: the YOLO (see `YOLOBackbone`).
            thing_classes: the dataset's class names; YOLO's classes map onto them by name (or by
                `class_mapping` pairs [yolo_name, dataset_name]). None: YOLO's own classes.
            input_mode: "features" (detect head on `in_features` of a YOLO backbone) or "image" (the whole YOLO
                on the image letterboxed to `image_size`).
            conf_thresh_*, nms_thresh, agnostic_nms, max_detections_*: Ultralytics NMS, in training / at test.
            frozen: YOLO stays fixed (trained by Ultralytics); proposals carry no losses.
        """
        super().__init__()
        if input_mode not in INPUT_MODES:
            raise ValueError(f"MODEL.YOLO.INPUT={input_mode!r}: expected one of {INPUT_MODES}")
        parts = yolo_parts(weights, num_classes, thing_classes)
        if input_mode == "features" and list(in_features) != parts.head_maps:
            raise ValueError(
                f"MODEL.YOLO.IN_FEATURES={list(in_features)}, but YOLO's detect head reads {parts.head_maps}"
            )
        if thing_classes is None:  # no dataset named: classes are YOLO's own indices
            thing_classes = [parts.names[i] for i in sorted(parts.names)]
        if num_classes is not None and len(thing_classes) != num_classes:
            raise ValueError(
                f"MODEL.ROI_HEADS.NUM_CLASSES={num_classes} but the dataset has {len(thing_classes)} "
                f"thing_classes {thing_classes}"
            )
        self.input_mode = input_mode
        self.in_features = list(in_features)
        self.image_size = image_size
        self.head = parts.head
        # The body is only needed when YOLO runs on images; in single-pass mode the backbone owns it.
        self.body = parts.layers if input_mode == "image" else None
        self._save, self._head_inputs = parts.save, parts.head_inputs
        self.to_yolo_pixels = D2ToYOLOPixels(list(pixel_mean), list(pixel_std), input_format)
        self.register_buffer("class_map", build_class_map(parts.names, thing_classes, class_mapping), persistent=False)
        self.conf_thresh = {True: conf_thresh_train, False: conf_thresh_test}
        self.max_detections = {True: max_detections_train, False: max_detections_test}
        self.nms_thresh = nms_thresh
        self.agnostic_nms = agnostic_nms
        if not frozen:
            raise NotImplementedError("YOLOProposalGenerator does not train YOLO yet: keep MODEL.YOLO.FREEZE True")
        freeze(self)

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: dict[str, ShapeSpec]) -> dict:
        require_yolo_mask_config(cfg, "YOLOProposalGenerator")
        y = cfg.MODEL.YOLO
        if y.INPUT == "features":
            missing = [f for f in y.IN_FEATURES if f not in input_shape]
            if missing:
                raise ValueError(
                    f"MODEL.YOLO.IN_FEATURES {missing} are not backbone outputs {sorted(input_shape)}; "
                    "MODEL.YOLO.INPUT='features' needs MODEL.BACKBONE.NAME='build_yolo_backbone'"
                )
        return {
            **yolo_source_args(cfg),
            "class_mapping": [list(p) for p in y.CLASS_MAPPING],
            "input_mode": y.INPUT,
            "in_features": list(y.IN_FEATURES),
            "image_size": y.IMAGE_SIZE,
            "conf_thresh_train": y.CONF_THRESH_TRAIN,
            "conf_thresh_test": y.CONF_THRESH_TEST,
            "nms_thresh": y.NMS_THRESH,
            "agnostic_nms": y.AGNOSTIC_NMS,
            "max_detections_train": y.MAX_DETECTIONS_TRAIN,
            "max_detections_test": cfg.TEST.DETECTIONS_PER_IMAGE,
        }

    def train(self, mode: bool = True) -> "YOLOProposalGenerator":
        """Keep YOLO in eval mode: it is trained by Ultralytics, and its eval output is the detections."""
        self.training = mode
        return self

    @torch.no_grad()
    def forward(
        self, images: ImageList, features: dict[str, torch.Tensor], gt_instances: list[Instances] | None = None
    ) -> tuple[list[Instances], dict]:
        """Per-image proposals in Detectron2's resized-image frame (see `detections_to_instances`); no losses."""
        del gt_instances  # YOLO is not trained here
        if self.input_mode == "image":
            detections_d2 = self._detect_on_images(images)
        else:
            detections_d2 = self._detect([features[f] for f in self.in_features])
        proposals = [
            detections_to_instances(det, tuple(size), self.class_map, with_classes=not self.training)
            for det, size in zip(detections_d2, images.image_sizes)
        ]
        return proposals, {}

    def _detect(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        """Detect head + Ultralytics NMS -> per image (N, 6) rows in the frame of `maps`' input."""
        predictions, _ = self.head(maps)
        return non_max_suppression(
            predictions,
            conf_thres=self.conf_thresh[self.training],
            iou_thres=self.nms_thresh,
            agnostic=self.agnostic_nms,
            max_det=self.max_detections[self.training],
            nc=self.head.nc,  # given, not read from a shape: FLOP counting traces this path
        )

    def _detect_on_images(self, images: ImageList) -> list[torch.Tensor]:
        letterboxes = [Letterbox(int(h), int(w), self.image_size) for h, w in images.image_sizes]
        batch_yolo_input = torch.stack(
            [
                lb.apply_image(self.to_yolo_pixels(img[:, : lb.height, : lb.width]))
                for lb, img in zip(letterboxes, images.tensor)
            ]
        )
        maps = run_layers(self.body, self._save, self._head_inputs, batch_yolo_input)
        detections_yolo_input = self._detect(maps)
        detections_d2 = []
        for lb, det in zip(letterboxes, detections_yolo_input):
            det = det.clone()
            det[:, :4] = lb.boxes_yolo_input_to_d2(det[:, :4])
            detections_d2.append(det)
        return detections_d2
