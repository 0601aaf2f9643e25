"""Reading YOLO-mask's end-to-end exports back through Ultralytics' AutoBackend, for the predictor and validator.

An export (`adapters/export.py`) returns padded detections (B, max_det, 6) and their mask probabilities
(B, max_det, R, R). Joined as (B, max_det, 6 + R*R) rows they go through Ultralytics' own end-to-end filtering
(`non_max_suppression(..., end2end=True)`: score > conf, classes, max_det), which keeps extra columns with their row,
as it keeps YOLO-seg's mask coefficients.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from yolo_mask_plugin.adapters.export import EXPORT_METADATA_KEY
from yolo_mask_plugin.core.errors import InvalidInputError


def is_pytorch_backend(model: torch.nn.Module, what: str) -> bool:
    """Whether a model runs the PyTorch model, rather than a YOLO-mask end-to-end export.

    Args:
        model: an AutoBackend, or the training EMA.
        what: who asks, for the error.

    Returns:
        True for the PyTorch model, False for a YOLO-mask end-to-end export.

    Raises:
        InvalidInputError: any other export, naming its format.
    """
    fmt = getattr(model, "format", "pt")
    if fmt == "pt":
        return True
    if EXPORT_METADATA_KEY in getattr(model, "metadata", {}):
        return False
    raise InvalidInputError(
        f"{what} runs a YOLO-mask model or its end-to-end export (YOLOMask(...).export(format=...)); this {fmt} "
        "model has no YOLO-mask mark in its metadata (a stock YOLO or YOLO-seg export has no RoIAlign mask branch)"
    )


def end_to_end_rows(preds: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """An end-to-end export's two outputs as one tensor of rows, as Ultralytics' NMS rows with extra columns.

    Args:
        preds: (B, max_det, 6) detections and (B, max_det, R, R) their mask probabilities.

    Returns:
        (B, max_det, 6 + R*R): each detection row followed by its mask probabilities.
    """
    detections, probs = preds
    return torch.cat([detections, probs.flatten(2).to(detections.dtype)], 2)


def unflatten_mask_probs(columns: torch.Tensor) -> torch.Tensor:
    """The mask probabilities carried in the extra columns of `end_to_end_rows`.

    Args:
        columns: (N, R*R) the extra columns.

    Returns:
        (N, R, R) mask probabilities.
    """
    resolution = math.isqrt(columns.shape[1])
    return columns.reshape(-1, resolution, resolution)


def run_openvino_at_fp32(backend: torch.nn.Module, model_path: str | Path) -> None:
    """Recompile an AutoBackend's OpenVINO export on the CPU at FP32.

    OpenVINO runs an FP32 model in bf16 on CPUs with AMX / AVX512-BF16 unless told otherwise, and Ultralytics tells
    it only on Windows and ARM; the detections near the score and NMS thresholds and the masks' 0.5 cut then differ
    from the PyTorch model's beyond tests/test_export.py's tolerances. Other devices keep their setting.

    Args:
        backend: an AutoBackend; changed in place when it runs an OpenVINO export on the CPU.
        model_path: the export (the `.xml` or its folder).
    """
    if backend.format != "openvino":
        return
    if list(backend.backend.ov_compiled_model.get_property("EXECUTION_DEVICES")) != ["CPU"]:
        return
    ov = backend.backend.ov  # the openvino module Ultralytics' backend imported
    xml = Path(model_path)
    xml = next(xml.glob("*.xml")) if xml.is_dir() else xml
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": ov.Type.f32}
    backend.backend.ov_compiled_model = core.compile_model(core.read_model(xml), "CPU", config)
