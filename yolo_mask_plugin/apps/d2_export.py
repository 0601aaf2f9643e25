"""A Detectron2 model of the plugin -> TorchScript and ONNX, as Detectron2's `tools/deploy/export_model.py
--export-method tracing` exports its own models.

`TracingAdapter` wraps `GeneralizedRCNN.inference(inputs, do_postprocess=False)`: one image tensor (3, H, W), resized
as DefaultPredictor resizes it, goes in; YOLO's detections in that frame come out as flat tensors (`OUTPUT_NAMES`),
which the adapter's `outputs_schema` turns back into `Instances`. Pasting the masks into the image
(`detector_postprocess`) stays outside the graph, as in export_model.py. The graph is traced: the input size is the
sample's (the image size, YOLO's anchors and, in the two-branch model, its letterbox are constants of the trace)
while the number of detections stays dynamic (Ultralytics' NMS and Detectron2's ROIPooler run torchvision's `nms`
and `roi_align` in the graph).
"""
from __future__ import annotations

from pathlib import Path

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode
from detectron2.data import transforms as T
from detectron2.export import TracingAdapter, dump_torchscript_IR
from detectron2.modeling import GeneralizedRCNN, build_model
from detectron2.structures import Instances

from yolo_mask_plugin.apps.predict import load_image_bgr

FORMATS = ("torchscript", "onnx")
ONNX_OPSET = 17  # >= 16: RoiAlign's half_pixel mode is torchvision's aligned=True (ROIAlignV2)
# The flat outputs, in `flatten_to_tuple`'s order: the Instances fields sorted by name, then the image size.
OUTPUT_NAMES = ["pred_boxes", "pred_classes", "pred_masks", "scores", "image_size"]


def load_model(cfg: CfgNode) -> GeneralizedRCNN:
    """`build_model` + MODEL.WEIGHTS, in eval mode (random weights when MODEL.WEIGHTS is empty).

    Args:
        cfg (CfgNode): the model's config.

    Returns:
        (GeneralizedRCNN): the model.
    """
    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    return model.eval()


def sample_input(cfg: CfgNode, image_path: str | Path) -> dict:
    """An image file as DefaultPredictor feeds it: in INPUT.FORMAT, resized to the test size.

    Args:
        cfg (CfgNode): the model's config (INPUT.FORMAT, test size).
        image_path (str | Path): the image.

    Returns:
        (dict): Detectron2's input dict: "image" (3, H, W) float32, "height", "width" of the original.
    """
    bgr = load_image_bgr(Path(image_path))
    original = bgr if cfg.INPUT.FORMAT == "BGR" else bgr[..., ::-1]
    resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    image = resize.get_transform(original).apply_image(original)
    height, width = original.shape[:2]
    return {"image": torch.as_tensor(image.astype("float32").transpose(2, 0, 1)), "height": height, "width": width}


def _inference(model: GeneralizedRCNN, inputs: list[dict]) -> list[dict[str, Instances]]:
    """export_model.py's traced function: no postprocess, so the masks stay each box's mask probabilities."""
    return [{"instances": model.inference(inputs, do_postprocess=False)[0]}]


def tracing_adapter(model: GeneralizedRCNN, image: torch.Tensor) -> TracingAdapter:
    """The model as a function of one image tensor with flat tensor outputs; `outputs_schema` rebuilds Instances.

    In eval mode, as the model: `torch.onnx.export` restores the adapter's mode afterwards, and a new module's
    (training) would switch the model to training with it."""
    return TracingAdapter(model, [{"image": image}], _inference).eval()


def export_torchscript(adapter: TracingAdapter, output_dir: Path) -> Path:
    """`torch.jit.trace` -> `model.ts`, plus Detectron2's IR dump (code, graphs) next to it.

    Without torch's trace check: it would run the model twice more; tests/test_d2_export.py compares the traced
    model's outputs with eager's on another image instead."""
    traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
    path = output_dir / "model.ts"
    torch.jit.save(traced, str(path))
    dump_torchscript_IR(traced, str(output_dir))
    return path


def export_onnx(adapter: TracingAdapter, output_dir: Path, opset: int = ONNX_OPSET) -> Path:
    """`torch.onnx.export` -> `model.onnx`, with the TorchScript-based exporter (`dynamo=False`).

    The torch.export-based exporter stops at Ultralytics' NMS (`if not x.shape[0]`: a branch on the number of
    candidates, which torch.export cannot guard on), and needs onnxscript, not a requirement here."""
    path = output_dir / "model.onnx"
    torch.onnx.export(
        adapter, adapter.flattened_inputs, str(path), opset_version=opset, input_names=["image"],
        output_names=OUTPUT_NAMES, dynamo=False,
    )
    return path


def export_model(
    cfg: CfgNode, image_path: str | Path, output_dir: str | Path, formats: tuple[str, ...] = FORMATS
) -> dict[str, Path]:
    """The model of `cfg` traced on `image_path` and written in each of `formats` under `output_dir`.

    Args:
        cfg (CfgNode): the model's config, MODEL.WEIGHTS included.
        image_path (str | Path): the image traced on.
        output_dir (str | Path): where the files go.
        formats (tuple[str, ...]): "torchscript" and/or "onnx".

    Returns:
        (dict[str, Path]): format -> the written file.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    adapter = tracing_adapter(load_model(cfg), sample_input(cfg, image_path)["image"])
    writers = {"torchscript": export_torchscript, "onnx": export_onnx}
    return {fmt: writers[fmt](adapter, output_dir) for fmt in formats}
