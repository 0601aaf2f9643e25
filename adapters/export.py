"""End-to-end export of a YOLO-mask model: detector, NMS, multi-level RoIAlign and the FCN head in one graph.

`YOLOMaskExporter` is Ultralytics' `Exporter` given `YOLOMaskEndToEnd` as the model, so its own `onnx`,
`torchscript` and `openvino` exports (tracing, ONNX slimming, metadata, file naming) write the whole inference.
The graph takes the letterboxed image batch and returns two fixed-size outputs, as Ultralytics' end-to-end
(`nms=True`) exports do:

    output0  (B, max_det, 6)       x1 y1 x2 y2 score class, in input pixels, clipped to the input; zero rows pad
    output1  (B, max_det, R, R)    mask probabilities of each box (R = the head's output resolution, 28)

NMS is Ultralytics' own export NMS (`NMSModel`: per image, score > conf, torchvision `nms` on class-offset boxes,
the top `max_det`, zero-padded; ONNX NonMaxSuppression). The mask branch is the core one
(`core.detection_mask_probs`: boxes clipped, `MultiLevelRoIAlign` with aligned=True, i.e. ONNX RoiAlign with
half_pixel, then the FCN head), run on the kept boxes only, its output padded to `max_det`.
"""
from __future__ import annotations

import torch
from torch import nn
from ultralytics.engine.exporter import Exporter, NMSModel
from ultralytics.utils import ops

from yolo_mask_plugin.adapters.mask_model import YOLOMaskModel
from yolo_mask_plugin.core.errors import InvalidInputError
from yolo_mask_plugin.core.postprocess import clip_boxes_, detection_mask_probs
from yolo_mask_plugin.yolo import run_layers

EXPORT_FORMATS = ("onnx", "torchscript", "openvino")
MIN_ONNX_OPSET = 16  # RoiAlign's coordinate_transformation_mode=half_pixel (torchvision's aligned=True)
DEFAULT_EXPORT_CONF = 0.25  # what Ultralytics' nms=True exports use when no conf is given
# Metadata key that marks an export as YOLO-mask's end-to-end graph; the predictor and validator check it.
EXPORT_METADATA_KEY = "yolo_mask"
EXPORT_OUTPUTS = "detections (B, max_det, 6), mask_probs (B, max_det, R, R)"


class MaskFeatureDetector(nn.Module):
    """The detector as Ultralytics' `NMSModel` wants it: xyxy detections before NMS, plus the maps the mask branch
    pools (NMSModel passes a segmentation model's second output through).

    It runs the YOLO layers and the detect head itself: Ultralytics' exporter puts the head in export mode, in which
    the head returns its detections only and the model's own forward refuses to run (`YOLOMaskModel.predict`).
    """

    def __init__(self, model: YOLOMaskModel):
        super().__init__()
        self.model = model
        self.names, self.task = model.names, model.task  # read by NMSModel
        head = model.model[-1]
        self.head_inputs = [head.f] if isinstance(head.f, int) else list(head.f)
        self.pooled_layers = [model.p2_layer] if model.p2_layer is not None else []

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, 3, H, W) images -> (B, 4 + nc, anchors) xyxy detections before NMS, and the maps the mask branch pools."""
        layers, head = self.model.model[:-1], self.model.model[-1]
        maps = run_layers(layers, set(self.model.save), [*self.pooled_layers, *self.head_inputs], images)
        detect_maps = maps[len(self.pooled_layers) :]
        y = head(detect_maps)
        y = y[0] if isinstance(y, tuple) else y  # (B, 4 + nc, anchors), boxes xywh
        boxes = ops.xywh2xyxy(y[:, :4].transpose(1, 2)).transpose(1, 2)
        pooled = {"feats": detect_maps, **({"p2": maps[0]} if self.pooled_layers else {})}
        return torch.cat([boxes, y[:, 4:]], 1), self.model.mask_features(pooled)


class YOLOMaskEndToEnd(nn.Module):
    """The exported YOLO-mask inference: images in, padded detections and their mask probabilities out.

    Ultralytics' exporter reads the model's attributes (`names`, `stride`, `args`, `yaml`, `model[-1]`, ...): any
    attribute this module lacks is the YOLO-mask model's.
    """

    def __init__(self, model: YOLOMaskModel, args):
        """`args`: Ultralytics' export arguments; NMS reads `conf`, `iou`, `max_det`, `agnostic_nms` from them."""
        super().__init__()
        self.nms = NMSModel(MaskFeatureDetector(model), args)
        self.mask_model = model
        self.task = model.task

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)  # parameters, buffers and submodules of this module
        except AttributeError:
            if name == "mask_model":  # not set yet (a copy being built)
                raise
            return getattr(self.mask_model, name)

    def fuse(self, *args, **kwargs) -> YOLOMaskEndToEnd:
        """Fuse the YOLO's Conv+BN (Ultralytics' exporter does, and keeps what `fuse` returns)."""
        self.mask_model.fuse(*args, **kwargs)
        return self

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) images -> [(B, max_det, 6) padded detections, (B, max_det, R, R) their mask probabilities]."""
        detections, features = self.nms(images)  # kept rows first (score > conf >= 0), zero rows after
        input_hw = images.shape[2:]
        # The PyTorch predictor clips its NMS rows in place (`detection_mask_probs`); the ONNX export loses an
        # in-place write through a view of a view, so each image's rows are clipped into a fresh tensor first and
        # `detection_mask_probs` clipping them again changes nothing.
        kept = [d[d[:, 4] > 0] for d in detections]
        kept = [torch.cat([clip_boxes_(k[:, :4].clone(), input_hw), k[:, 4:]], 1) for k in kept]
        # One more box for the head, dropped after: with no box at all, the exported GroupNorm's reshape of an empty
        # batch fails in ONNX Runtime. A 1-pixel box costs the least RoIAlign sampling.
        kept[0] = torch.cat([kept[0], kept[0].new_tensor([[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]])])
        probs = detection_mask_probs(
            self.mask_model.mask_head, features, [k[:, :4] for k in kept], [k[:, 5] for k in kept], input_hw
        )
        kept[0], probs[0] = kept[0][:-1], probs[0][:-1]
        max_det, resolution = self.nms.args.max_det, self.mask_model.mask_head.spec["output_resolution"]
        return [
            torch.stack([padded(k, (max_det, 6)) for k in kept]),
            torch.stack([padded(p, (max_det, resolution, resolution)) for p in probs]),
        ]


def padded(rows: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """`rows` followed by zero rows, as a tensor of the fixed `shape`: the kept count stays dynamic inside the graph
    (its size is traced), the output shape is static (a reshape to constants, as Ultralytics' NMSModel pads)."""
    return torch.cat([rows, rows.new_zeros((shape[0] - rows.shape[0], *shape[1:]))]).reshape(shape)


class YOLOMaskExporter(Exporter):
    """Ultralytics' `Exporter` for YOLO-mask: the whole inference in the graph, or no file at all.

    Formats: onnx, torchscript, openvino (any other is refused). NMS is always in the graph (`nms=False`, an
    NMS-free head, is refused); `conf` (default 0.25, as Ultralytics' NMS exports), `iou`, `max_det` and
    `agnostic_nms` are fixed at export. `batch`, `imgsz`, `dynamic` and `simplify` behave as in Ultralytics; reduced
    precision (`quantize`, `half`, `int8`) is refused.
    """

    def __call__(self, model: torch.nn.Module) -> str:
        if not isinstance(model, YOLOMaskModel):
            raise InvalidInputError(
                f"YOLOMaskExporter exports a YOLO-mask model (YOLOMaskModel), got a {type(model).__name__}"
            )
        check_export_args(self.args)
        self.args.conf = DEFAULT_EXPORT_CONF if self.args.conf is None else self.args.conf
        self.args.nms = None  # NMS is inside YOLOMaskEndToEnd; Ultralytics' own NMS wrapper must not wrap it again
        return super().__call__(YOLOMaskEndToEnd(model, self.args))

    def run_callbacks(self, event: str) -> None:
        """Ultralytics' callbacks, after marking the export's metadata as end-to-end YOLO-mask at its start."""
        if event == "on_export_start":  # metadata is complete, no file written yet
            mark_end_to_end(self)
        super().run_callbacks(event)


def check_export_args(args) -> None:
    """Refuse, naming the argument, what the end-to-end graph cannot be exported with."""
    fmt = str(args.format).lower()
    if fmt not in EXPORT_FORMATS:
        raise InvalidInputError(
            f"format={args.format!r}: a YOLO-mask model exports with its mask branch (NMS, RoIAlign, FCN head in the "
            f"graph) to {', '.join(EXPORT_FORMATS)} only"
        )
    if args.nms is False:
        raise InvalidInputError(
            "nms=False asks for an NMS-free head; YOLO-mask's detector has a one-to-many head, so its exports always "
            "embed NMS (nms=True or unset)"
        )
    if args.quantize not in (None, 32):
        raise InvalidInputError(
            f"quantize={args.quantize} (half/int8): YOLO-mask exports are FP32 only; the mask head's RoIAlign and NMS "
            "are not checked at reduced precision"
        )
    if fmt == "onnx" and args.opset is not None and args.opset < MIN_ONNX_OPSET:
        raise InvalidInputError(
            f"opset={args.opset}: the mask branch needs ONNX opset >= {MIN_ONNX_OPSET} (RoiAlign with half_pixel "
            "coordinates, torchvision's aligned=True)"
        )


def mark_end_to_end(exporter: Exporter) -> None:
    """Metadata of an end-to-end export: NMS in the graph (so AutoBackend feeds it its export batch, as Ultralytics'
    NMS exports), and the YOLO-mask mark with the layout of the two outputs."""
    exporter.metadata["end2end"] = True
    exporter.metadata["args"]["nms"] = True
    exporter.metadata[EXPORT_METADATA_KEY] = EXPORT_OUTPUTS
