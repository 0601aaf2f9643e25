"""`YOLOProposalGenerator`: YOLO's detections as Detectron2 proposals, and YOLO's losses when it trains here.

MODEL.YOLO.INPUT picks what YOLO runs on:
  * "image": the whole YOLO on each image, letterboxed to MODEL.YOLO.IMAGE_SIZE (the two-branch design,
    next to any Detectron2 backbone); boxes are mapped back to Detectron2's resized-image frame;
  * "features": only YOLO's detect head, on the maps a YOLO backbone already computed (single pass).
MODEL.YOLO.FREEZE picks who trains YOLO. Frozen (a YOLO Ultralytics trained): eval mode, no gradients, no losses.
Trained here: in training it returns YOLO's detection losses next to its proposals, as Detectron2's RPN returns
`loss_rpn_cls` / `loss_rpn_loc`: Ultralytics' own `v8DetectionLoss` on targets built from `gt_instances` in the
frame YOLO sees, and the proposals are the NMS detections of the same forward pass.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from detectron2.config import CfgNode, configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY
from detectron2.structures import ImageList, Instances
from detectron2.utils import comm
from torch import nn
from ultralytics.utils.nms import non_max_suppression
from ultralytics.utils.ops import xyxy2xywh

from yolo_mask_plugin.core.errors import InvalidInputError
from yolo_mask_plugin.core.frames import Letterbox
from yolo_mask_plugin.d2.class_map import build_class_map
from yolo_mask_plugin.d2.config import require_yolo_mask_config
from yolo_mask_plugin.d2.detections import detections_to_instances
from yolo_mask_plugin.d2.registration import register_once
from yolo_mask_plugin.d2.yolo_source import (
    D2ToYOLOPixels,
    freeze,
    unfreeze,
    yolo_is_frozen,
    yolo_parts,
    yolo_source_args,
)
from yolo_mask_plugin.yolo import DETECTION_LOSS_GAINS, detection_loss, run_layers
from yolo_mask_plugin.yolo.compat import decode_detect_head

INPUT_MODES = ("image", "features")


@register_once(PROPOSAL_GENERATOR_REGISTRY)
class YOLOProposalGenerator(nn.Module):
    """YOLO (its detect head on the backbone's maps, or the whole YOLO on the image) + NMS as proposals, and YOLO's
    detection losses when it trains here (`frozen=False`).

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
        frozen: bool | None = None,
        loss_gains: Mapping[str, float] = DETECTION_LOSS_GAINS,
    ):
        """
        Args:
            weights, num_classes: the YOLO (see `YOLOBackbone`).
            thing_classes: the dataset's class names; YOLO's classes map onto them by name (or by
                `class_mapping` pairs [yolo_name, dataset_name]). None: YOLO's own classes.
            input_mode: "features" (detect head on `in_features` of a YOLO backbone) or "image" (the whole YOLO
                on the image letterboxed to `image_size`).
            conf_thresh_*, nms_thresh, agnostic_nms, max_detections_*: Ultralytics NMS, in training / at test.
            frozen: True: YOLO stays fixed (trained by Ultralytics), proposals carry no losses; False: YOLO trains
                here on its detection losses; None: frozen for a `.pt`, trained for a model yaml.
            loss_gains: "box", "cls", "dfl" gains of YOLO's detection loss (Ultralytics' defaults).
        """
        super().__init__()
        if input_mode not in INPUT_MODES:
            raise ValueError(f"MODEL.YOLO.INPUT={input_mode!r}: expected one of {INPUT_MODES}")
        self.frozen = yolo_is_frozen(weights, frozen)
        parts = yolo_parts(weights, num_classes, thing_classes)
        if input_mode == "features" and list(in_features) != parts.head_maps:
            raise ValueError(
                f"MODEL.YOLO.IN_FEATURES={list(in_features)}, but YOLO's detect head reads {parts.head_maps}"
            )
        max_stride = max(m.stride for m in parts.maps.values())
        if input_mode == "image" and image_size % max_stride:
            raise InvalidInputError(
                f"MODEL.YOLO.IMAGE_SIZE={image_size}: YOLO's input side must be a multiple of its largest stride "
                f"{max_stride}, e.g. {max(round(image_size / max_stride), 1) * max_stride}"
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
        self.yolo_names = dict(parts.names)
        self.yolo_definition = parts.definition  # rebuilds this YOLO in Ultralytics (`export_ultralytics_checkpoint`)
        class_map = build_class_map(parts.names, thing_classes, class_mapping)
        self.register_buffer("class_map", class_map, persistent=False)
        # YOLO's class of each dataset class, -1 for one no YOLO class maps to (its instances are background to YOLO)
        yolo_class = torch.full((len(thing_classes),), -1, dtype=torch.long)
        mapped = torch.nonzero(class_map >= 0).squeeze(1)
        yolo_class[class_map[mapped]] = mapped
        self.register_buffer("yolo_class", yolo_class, persistent=False)
        self.conf_thresh = {True: conf_thresh_train, False: conf_thresh_test}
        self.max_detections = {True: max_detections_train, False: max_detections_test}
        self.nms_thresh = nms_thresh
        self.agnostic_nms = agnostic_nms
        self.loss_gains = dict(loss_gains)
        self._criterion = detection_loss(self.head, self.loss_gains)  # made again if the head moves to another device
        (freeze if self.frozen else unfreeze)(self)

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: dict[str, ShapeSpec]) -> dict:
        """The constructor's arguments from a yacs config (MODEL.YOLO, the backbone's shapes in "features" mode)."""
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
            "loss_gains": {"box": y.LOSS.BOX, "cls": y.LOSS.CLS, "dfl": y.LOSS.DFL},
        }

    def train(self, mode: bool = True) -> "YOLOProposalGenerator":
        """A frozen YOLO stays in eval mode (its eval output is the detections, its BatchNorm statistics its own);
        a YOLO that trains here switches like any module (BatchNorm on batch statistics, as in Ultralytics)."""
        if not self.frozen:
            return super().train(mode)
        self.training = mode
        return self

    def forward(
        self, images: ImageList, features: dict[str, torch.Tensor], gt_instances: list[Instances] | None = None
    ) -> tuple[list[Instances], dict[str, torch.Tensor]]:
        """Per-image proposals in Detectron2's resized-image frame (see `detections_to_instances`), and YOLO's
        losses when it trains here (`loss_yolo_box`, `loss_yolo_cls`, `loss_yolo_dfl`), else none."""
        trains = self.training and not self.frozen
        if trains and gt_instances is None:
            raise ValueError("YOLOProposalGenerator trains YOLO on ground-truth instances: none were given")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            if self.input_mode == "image":  # YOLO sees each image letterboxed; boxes cross frames by `Letterbox`
                letterboxes = [Letterbox(int(h), int(w), self.image_size) for h, w in images.image_sizes]
                maps = run_layers(self.body, self._save, self._head_inputs, self._letterboxed(images, letterboxes))
                yolo_input_hw = (self.image_size, self.image_size)
            else:  # the detect head sees the backbone's maps of the padded batch: Detectron2's frame
                letterboxes = None
                maps = [features[f] for f in self.in_features]
                yolo_input_hw = tuple(images.tensor.shape[-2:])
            if trains:
                raw = self.head(maps)  # training mode: the dict Ultralytics' loss takes
                losses = self._losses(raw, self._targets(gt_instances, letterboxes, yolo_input_hw))
                with torch.no_grad():
                    predictions = decode_detect_head(self.head, raw)  # the decoding eval mode runs, of this same pass
            else:
                predictions, _ = self.head(maps)
                losses = {}
        detections = self._nms(predictions)
        if letterboxes is not None:
            detections = [torch.cat([lb.boxes_yolo_input_to_d2(d[:, :4]), d[:, 4:]], 1)
                          for lb, d in zip(letterboxes, detections)]
        proposals = [
            detections_to_instances(det, tuple(size), self.class_map, with_classes=not self.training)
            for det, size in zip(detections, images.image_sizes)
        ]
        return proposals, losses

    def _letterboxed(self, images: ImageList, letterboxes: list[Letterbox]) -> torch.Tensor:
        """The batch as YOLO takes it: each image (without Detectron2's padding) letterboxed, RGB in [0, 1]."""
        return torch.stack(
            [
                lb.apply_image(self.to_yolo_pixels(img[:, : lb.height, : lb.width]))
                for lb, img in zip(letterboxes, images.tensor)
            ]
        )

    def _nms(self, predictions: torch.Tensor) -> list[torch.Tensor]:
        """Ultralytics NMS of decoded predictions -> per image (N, 6) rows in the frame of YOLO's input."""
        return non_max_suppression(
            predictions,
            conf_thres=self.conf_thresh[self.training],
            iou_thres=self.nms_thresh,
            agnostic=self.agnostic_nms,
            max_det=self.max_detections[self.training],
            nc=self.head.nc,  # given, not read from a shape: FLOP counting traces this path
        )

    def _targets(
        self, gt_instances: list[Instances], letterboxes: list[Letterbox] | None, yolo_input_hw: tuple[int, int]
    ) -> dict[str, torch.Tensor]:
        """Ultralytics' batch of targets from Detectron2's ground truth: `batch_idx`, YOLO `cls`, and `bboxes` as
        xywh normalised to YOLO's input (the padded batch, or the letterboxed square)."""
        height, width = yolo_input_hw
        batch_idx, classes, boxes = [], [], []
        for i, gt in enumerate(gt_instances):
            yolo_classes = self.yolo_class[gt.gt_classes]
            keep = yolo_classes >= 0
            xyxy = gt.gt_boxes.tensor[keep]
            if letterboxes is not None:
                xyxy = letterboxes[i].boxes_d2_to_yolo_input(xyxy)
            batch_idx.append(torch.full_like(yolo_classes[keep], i))
            classes.append(yolo_classes[keep])
            boxes.append(xyxy2xywh(xyxy) / xyxy.new_tensor([width, height, width, height]))
        device = self.class_map.device
        return {
            "batch_idx": torch.cat(batch_idx).float().to(device),
            "cls": torch.cat(classes).float()[:, None].to(device),
            "bboxes": torch.cat(boxes).float().to(device),
        }

    def _losses(self, raw: dict, targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Ultralytics' `v8DetectionLoss` under Detectron2's names: each loss times its gain and the images of the
        whole batch (this process's, which the loss multiplies by, times the processes whose gradients DDP
        averages), as Ultralytics' trainer backpropagates it (`loss * batch_size`, times `world_size` in DDP)."""
        device = raw["scores"].device
        if self._criterion.device != device:
            self._criterion = detection_loss(self.head, self.loss_gains)
        loss, _ = self._criterion(raw, targets)
        loss = loss * comm.get_world_size()
        names = [f"loss_yolo_{name.removesuffix('_loss')}" for name in self._criterion.loss_names]
        return dict(zip(names, loss))
