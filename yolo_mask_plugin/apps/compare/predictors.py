"""Every compared model behind one call: a BGR image at its original size in, Detectron2 `Instances` out.

Detectron2 models run through `DefaultPredictor`, Ultralytics models through their own `predict` (with
`retina_masks`, so masks come back in the original image), each with its framework's own resizing, NMS and
mask pasting. Both kinds are built from a plain-dict spec, so another process can rebuild one
(the peak-memory probe does).
"""
from __future__ import annotations

import numpy as np
import torch
from detectron2.engine import DefaultPredictor
from detectron2.structures import Boxes, Instances
from detectron2.utils.analysis import FlopCountAnalysis as D2FlopCountAnalysis
from fvcore.nn import FlopCountAnalysis
from ultralytics import YOLO
from ultralytics.data.augment import LetterBox
from ultralytics.utils import nms, ops

from yolo_mask_plugin.adapters import YOLOMask
from yolo_mask_plugin.adapters.mask_model import YOLOMaskModel
from yolo_mask_plugin.core.paste import paste_masks
from yolo_mask_plugin.core.threads import kept_torch_threads
from yolo_mask_plugin.d2.config import build_cfg

# Same for every model: AP is computed from the detections scoring at least the score threshold (by default
# SCORE_THRESHOLD), at most MAX_DETECTIONS per image (Detectron2's SCORE_THRESH_TEST and DETECTIONS_PER_IMAGE defaults).
SCORE_THRESHOLD = 0.05
MAX_DETECTIONS = 100


class Detectron2Predictor:
    """`DefaultPredictor` of a config: BGR image at its original size -> `Instances` on the CPU.

    Args:
        config_file (str): a config name under `configs/` or a path.
        opts (list[str]): Detectron2 opts (KEY VALUE ...), MODEL.WEIGHTS among them.
    """

    def __init__(self, config_file: str, opts: list[str]):
        cfg = build_cfg(config_file, opts)
        cfg.freeze()
        self.cfg = cfg
        self.predictor = DefaultPredictor(cfg)
        self.model = self.predictor.model

    def __call__(self, image_bgr: np.ndarray) -> Instances:
        return self.predictor(image_bgr)["instances"].to("cpu")

    def count_flops(self, image_bgr: np.ndarray) -> int:
        """fvcore's count (via Detectron2's wrapper for its list-of-dicts inputs) of the whole inference.

        Args:
            image_bgr (np.ndarray): the image, (H, W, 3) uint8 BGR.

        Returns:
            (int): FLOPs (multiply-adds counted once).
        """
        image = image_bgr[:, :, ::-1] if self.predictor.input_format == "RGB" else image_bgr
        resized = self.predictor.aug.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)).astype("float32"))
        inputs = [{"image": tensor, "height": image.shape[0], "width": image.shape[1]}]
        with torch.no_grad():
            return _quiet_total(D2FlopCountAnalysis(self.model, inputs))


def load_ultralytics(weights: str, family: str):
    """The Ultralytics `Model` of a checkpoint or yaml.

    Args:
        weights (str): a .pt, exported file or model yaml.
        family (str): "yolo_mask" (`YOLOMask`) or "yolo_seg" (`YOLO`, segment task).

    Returns:
        (ultralytics.engine.model.Model): the model.
    """
    if family not in ("yolo_seg", "yolo_mask"):
        raise ValueError(f"Ultralytics model family must be 'yolo_seg' or 'yolo_mask', got {family!r}")
    return YOLOMask(weights) if family == "yolo_mask" else YOLO(weights, task="segment")


class UltralyticsPredictor:
    """An Ultralytics checkpoint through its own `predict`: BGR image at its original size -> `Instances` on the CPU.

    Args:
        weights (str): the checkpoint.
        family (str): "yolo_mask" (YOLO-mask) or "yolo_seg" (YOLO-seg).
        imgsz (int): input size.
        device (str): "cpu" or "cuda".
        score_threshold (float): Ultralytics' `conf`.
    """

    def __init__(self, weights: str, family: str, imgsz: int, device: str = "cpu",
                 score_threshold: float = SCORE_THRESHOLD):
        self.family, self.imgsz, self.device, self.score_threshold = family, imgsz, device, score_threshold
        self.yolo = load_ultralytics(weights, family)
        self.model = self.yolo.model

    def __call__(self, image_bgr: np.ndarray) -> Instances:
        with kept_torch_threads():  # Ultralytics' CPU device setup would leave cpu_count - 1 threads
            result = self.yolo.predict(
                image_bgr, imgsz=self.imgsz, conf=self.score_threshold, max_det=MAX_DETECTIONS, retina_masks=True,
                device=self.device, verbose=False,
            )[0].cpu()
        height, width = image_bgr.shape[:2]
        masks = result.masks.data > 0.5 if result.masks is not None else torch.zeros((0, height, width), dtype=bool)
        return Instances(
            (height, width), pred_boxes=Boxes(result.boxes.xyxy.float()), scores=result.boxes.conf.float(),
            pred_classes=result.boxes.cls.long(), pred_masks=masks,
        )

    def count_flops(self, image_bgr: np.ndarray) -> int:
        """fvcore's count of forward + NMS + masks, on the letterboxed image.

        Args:
            image_bgr (np.ndarray): the image, (H, W, 3) uint8 BGR.

        Returns:
            (int): FLOPs (multiply-adds counted once).
        """
        image = LetterBox((self.imgsz, self.imgsz), auto=True, stride=32)(image=image_bgr)
        x = torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))).float()[None] / 255
        path = _UltralyticsInference(self.model.float().eval(), tuple(x.shape[2:]), self.score_threshold)
        with torch.no_grad():
            return _quiet_total(FlopCountAnalysis(path, x))


class _UltralyticsInference(torch.nn.Module):
    """What `predict` runs on the network's side, as one module fvcore can trace."""

    def __init__(self, model: torch.nn.Module, input_hw: tuple[int, int], score_threshold: float):
        super().__init__()  # the size as Python ints: tracing would turn x.shape into tensors
        self.model, self.input_hw, self.score_threshold = model, input_hw, score_threshold

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's outputs and the masks at the input size. Returning both keeps the whole network in the
        traced graph even when NMS keeps nothing (the trace drops ops no output depends on); masks are counted
        at the input size because Ultralytics' native-size path rounds traced sizes, which tracing cannot do."""
        outputs, raw = self.model(x)
        nc = len(self.model.names)  # given, not read from a shape, which tracing turns into a tensor
        det = nms.non_max_suppression(outputs, self.score_threshold, 0.7, nc=nc, max_det=MAX_DETECTIONS)[0]
        if isinstance(self.model, YOLOMaskModel):
            probs = self.model.detection_mask_probs(raw, [det[:, :4]], [det[:, 5]], self.input_hw)[0]
            return outputs, paste_masks(probs, det[:, :4], self.input_hw)
        proto = raw["proto"] if isinstance(raw, dict) else raw[1]
        return outputs, ops.process_mask(proto[0], det[:, 6:], det[:, :4], self.input_hw, upsample=True)


def _quiet_total(analysis) -> int:
    """Total count, without fvcore's per-op warnings (NMS and elementwise ops it does not count)."""
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    return int(analysis.total())


def build_predictor(spec: dict):
    """A predictor from a spec (`models.predict_spec`).

    Args:
        spec (dict): {"framework": "detectron2", "config_file", "opts"} or {"framework": "ultralytics", "weights",
            "family", "imgsz", "device", "score_threshold"}.

    Returns:
        (Detectron2Predictor | UltralyticsPredictor): BGR image -> `Instances` on the CPU.
    """
    spec = dict(spec)
    framework = spec.pop("framework")
    if framework == "detectron2":
        return Detectron2Predictor(**spec)
    if framework == "ultralytics":
        return UltralyticsPredictor(**spec)
    raise ValueError(f"model spec framework must be 'detectron2' or 'ultralytics', got {framework!r}")
