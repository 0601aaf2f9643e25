"""Detectron2's tracing export (`apps/d2_export.py`, as `tools/deploy/export_model.py --export-method tracing`) of the
single-pass and two-branch models: TorchScript and ONNX files that predict what the eager model predicts.

Each model is traced on one validation image and compared with eager on another (so a graph that kept the traced
image's detections as constants would fail): the same detections, boxes, scores, classes and mask probabilities.
An image without detections runs in both, except in ONNX Runtime with the mask head's GroupNorm (README).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import onnx
import onnxruntime as ort
import pytest
import torch
from detectron2.modeling import GeneralizedRCNN
from detectron2.structures import Instances
from onnxruntime.capi.onnxruntime_pybind11_state import Fail as OnnxRuntimeFailure

from tests.conftest import TEST_IMAGE_SIZE, small_cfg
from tests.numerics import decided_beyond, network_tolerance
from yolo_mask_plugin.apps.cli import main as cli_main
from yolo_mask_plugin.apps.d2_export import (
    OUTPUT_NAMES,
    export_onnx,
    export_torchscript,
    load_model,
    sample_input,
    tracing_adapter,
)

MODELS = {"single_pass": "shapes/yolo_mask_single_pass.yaml", "two_branch": "shapes/yolo_mask_two_branch_R_50_FPN.yaml"}
FEW_DETECTIONS = ("TEST.DETECTIONS_PER_IMAGE", "20")  # the mask head's cost grows with the boxes
NO_DETECTIONS = ("MODEL.YOLO.CONF_THRESH_TEST", "1.0")  # NMS keeps scores above it


def _calibrate_batchnorm(model: GeneralizedRCNN, inputs: list[dict]) -> None:
    """YOLO's BatchNorm statistics measured on images, as a trained YOLO has them. With the initial ones (mean 0,
    variance 1) a random YOLO's features fade to nothing and every box of a level scores that level's class bias
    (0.0031 at stride 32): NMS among equal scores would then be decided by rounding, in each runtime differently."""

    def calibrate(module: torch.nn.BatchNorm2d, args: tuple[torch.Tensor]) -> None:
        module.running_mean.copy_(args[0].mean((0, 2, 3)))
        module.running_var.copy_(args[0].var((0, 2, 3)))

    hooks = [m.register_forward_pre_hook(calibrate) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():  # YOLO's BatchNorms are in the proposal generator, and in a YOLO backbone
        images = model.preprocess_image(inputs)
        yolo_backbone = model.proposal_generator.input_mode == "features"  # else YOLO reads the image, not features
        model.proposal_generator(images, model.backbone(images.tensor) if yolo_backbone else {})
    for hook in hooks:
        hook.remove()


@pytest.fixture(scope="module", params=list(MODELS))
def exported(request, shapes_root: Path, tmp_path_factory) -> SimpleNamespace:
    """A random-weight model of the config (YOLO's BatchNorm calibrated), traced on val image 0 and exported to both
    formats, and eager's detections on val image 1."""
    output = tmp_path_factory.mktemp(request.param)
    cfg = small_cfg(MODELS[request.param], shapes_root, output, *FEW_DETECTIONS)
    torch.manual_seed(0)
    model = load_model(cfg)
    train, val = (sorted((shapes_root / "images" / split).glob("*.png")) for split in ("train", "val"))
    _calibrate_batchnorm(model, [sample_input(cfg, p) for p in train[:8]])
    adapter = tracing_adapter(model, sample_input(cfg, val[0])["image"])
    files = {"torchscript": export_torchscript(adapter, output), "onnx": export_onnx(adapter, output)}
    image = sample_input(cfg, val[1])["image"]
    with torch.no_grad():
        eager = model.inference([{"image": image}], do_postprocess=False)[0]
    return SimpleNamespace(adapter=adapter, files=files, image=image, eager=eager, model=model)


def _run(fmt: str, path: Path, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The exported file's flat outputs on one image: torch.jit.load, or an ONNX Runtime CPU session."""
    if fmt == "torchscript":
        return torch.jit.load(str(path))(image)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return tuple(torch.from_numpy(out) for out in session.run(None, {"image": image.numpy()}))


def _twins(eager: Instances, exported: Instances, box_tolerance: float, score_tolerance: float) -> list[int]:
    """For each eager detection, the exported one of the same class with the nearest box and score, one to one:
    scores that differ in the 7th digit may rank two boxes the other way round in another runtime, and boxes
    clipped to the image may be equal."""
    distance = torch.cdist(eager.pred_boxes.tensor, exported.pred_boxes.tensor, p=float("inf"))
    distance += (eager.scores[:, None] - exported.scores[None]).abs()
    distance[eager.pred_classes[:, None] != exported.pred_classes[None]] = float("inf")
    match = distance.argmin(1).tolist()
    nearest = distance.min(1).values
    assert len(set(match)) == len(match) and nearest.max() <= box_tolerance + score_tolerance, nearest
    return match


@pytest.mark.numerics
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_model_predicts_what_eager_predicts(exported, fmt):
    """Within float32 rounding of the network (tests/numerics.py): TorchScript runs eager's kernels, ONNX Runtime
    sums its convolutions in its own order. Boxes in pixels of the input (scale: its longer side), scores and mask
    probabilities in [0, 1] (scale 1)."""
    eager = exported.eager
    assert 10 <= len(eager) and eager.pred_masks.shape[1:] == (1, 28, 28)
    instances = exported.adapter.outputs_schema(_run(fmt, exported.files[fmt], exported.image))[0]["instances"]
    assert tuple(instances.image_size.tolist()) == eager.image_size and len(instances) == len(eager)
    box_tolerance = network_tolerance(exported.model, max(exported.image.shape[-2:]))
    tolerance = network_tolerance(exported.model, 1)
    if len(eager) == int(FEW_DETECTIONS[1]):  # cut at DETECTIONS_PER_IMAGE: the last one kept is a near tie
        eager = eager[decided_beyond(eager.scores, eager.scores.min().item(), tolerance)]
    twins = instances[_twins(eager, instances, box_tolerance, tolerance)]
    torch.testing.assert_close(twins.pred_classes, eager.pred_classes, rtol=0, atol=0)
    torch.testing.assert_close(twins.pred_boxes.tensor, eager.pred_boxes.tensor, rtol=0, atol=box_tolerance)
    torch.testing.assert_close(twins.scores, eager.scores, rtol=0, atol=tolerance)
    torch.testing.assert_close(twins.pred_masks, eager.pred_masks, rtol=0, atol=tolerance)


def test_onnx_graph_holds_nms_and_aligned_roialign(exported):
    graph = onnx.load(str(exported.files["onnx"])).graph
    ops = {node.op_type for node in graph.node}
    assert {"NonMaxSuppression", "RoiAlign", "ConvTranspose"} <= ops  # Ultralytics' NMS, the pooler, the mask head
    modes = {a.s for n in graph.node if n.op_type == "RoiAlign" for a in n.attribute
             if a.name == "coordinate_transformation_mode"}
    assert modes == {b"half_pixel"}  # ROIAlignV2: torchvision's aligned=True
    assert [o.name for o in graph.output] == OUTPUT_NAMES
    [instances] = exported.adapter.outputs_schema.schemas[0].schemas
    assert [*instances.keys, "image_size"] == OUTPUT_NAMES


def test_export_command_and_an_image_without_detections(shapes_root, tmp_path, capsys):
    """`yolo-mask export` (a config, its weights, here none: random, and a sample image) writes both files. Where NMS
    keeps no box, TorchScript answers no instances; the single-pass configs' mask head has GroupNorm, which torch's
    ONNX exporter writes as Reshape(x, [0, 32, -1]): with zero boxes the -1 has no answer, and ONNX Runtime stops
    there (README, "Detectron2 export")."""
    size = str(TEST_IMAGE_SIZE)
    path = sorted((shapes_root / "images" / "val").glob("*.png"))[0]
    assert cli_main([
        "export", "--config-file", MODELS["single_pass"], "--sample-image", str(path), "--output", str(tmp_path),
        "INPUT.MIN_SIZE_TEST", size, "INPUT.MAX_SIZE_TEST", size, "MODEL.DEVICE", "cpu", *NO_DETECTIONS,
    ]) == 0
    printed = capsys.readouterr().out
    assert f"torchscript: {tmp_path / 'model.ts'}" in printed and f"onnx: {tmp_path / 'model.onnx'}" in printed
    image = sample_input(small_cfg(MODELS["single_pass"], shapes_root, tmp_path), path)["image"]
    assert _run("torchscript", tmp_path / "model.ts", image)[OUTPUT_NAMES.index("pred_boxes")].shape == (0, 4)
    with pytest.raises(OnnxRuntimeFailure, match=r"mask_head/fcn/norms\.0/Reshape.*requested shape:\{0,32,-1\}"):
        _run("onnx", tmp_path / "model.onnx", image)


def test_onnx_of_a_mask_head_without_norm_answers_an_image_without_detections(shapes_root, tmp_path):
    """Detectron2's default mask head, without a norm (the two-branch configs' head), runs on zero boxes in ONNX."""
    cfg = small_cfg(MODELS["single_pass"], shapes_root, tmp_path, *NO_DETECTIONS, "MODEL.ROI_MASK_HEAD.NORM", "")
    image = sample_input(cfg, sorted((shapes_root / "images" / "val").glob("*.png"))[0])["image"]
    adapter = tracing_adapter(load_model(cfg), image)
    outputs = _run("onnx", export_onnx(adapter, tmp_path), image)
    assert len(adapter.outputs_schema(outputs)[0]["instances"]) == 0
