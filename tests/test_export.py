"""YOLO-mask's end-to-end exports (onnx, torchscript, openvino), read back through Ultralytics' AutoBackend.

Each format's predictions must equal the PyTorch model's on validation images: the same detections (one to one by
class and box IoU > 0.99), scores within 1e-3, mask IoU >= 0.98 per instance; `.val()` of an export gives
Ultralytics' Box and Mask metrics. What cannot carry the mask branch is refused before any file is written.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from torchvision.ops import box_iou
from ultralytics import YOLO
from ultralytics.nn.tasks import load_checkpoint

from yolo_mask_plugin.adapters import YOLOMask
from yolo_mask_plugin.adapters.export import EXPORT_FORMATS, EXPORT_METADATA_KEY
from yolo_mask_plugin.data.polygon_masks import mask_to_yolo_polygon
from yolo_mask_plugin.core.errors import InvalidInputError

from .conftest import TEST_IMAGE_SIZE

pytestmark = pytest.mark.ultralytics_shell

# Export and prediction settings shared by the PyTorch model and its exports: the test detector is weak, so a low
# confidence keeps a few dozen detections per image to compare.
SETTINGS = {"conf": 0.0005, "iou": 0.7, "max_det": 100}


@pytest.fixture(scope="module")
def precise_bn_checkpoint(frozen_detector_run, shapes_root, tmp_path_factory) -> Path:
    """`frozen_detector_run`'s best.pt with its BatchNorm statistics recomputed on the training images.

    One epoch of six iterations (BatchNorm momentum 0.03) leaves the detector's statistics near their initial
    values: its features are almost constant, every anchor scores 0.0031 to seven digits, and NMS in two runtimes
    keeps different boxes among equals. Recomputed as Detectron2's PreciseBN does (one pass over the training images
    in train mode, no gradient), anchors score differently (logits -8.6 to -3.8), so each format has one answer.
    """
    model, ckpt = load_checkpoint(frozen_detector_run.best)
    paths = sorted((shapes_root / "images" / "train").glob("*.png"))
    images = torch.from_numpy(np.stack([cv2.imread(str(p))[..., ::-1] for p in paths])).permute(0, 3, 1, 2) / 255
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momentum = {bn: bn.momentum for bn in norms}
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # the plain average over this pass
    with torch.no_grad():
        model.train().predict(images.float())
    for bn in norms:
        bn.momentum = momentum[bn]
    path = tmp_path_factory.mktemp("precise_bn") / "best.pt"
    torch.save({**ckpt, "ema": model.eval().half(), "model": None}, path)
    return path


@pytest.fixture(scope="module")
def exports(precise_bn_checkpoint) -> dict[str, str]:
    """The checkpoint exported to every format that carries the mask branch."""
    model = YOLOMask(str(precise_bn_checkpoint))
    return {fmt: model.export(format=fmt, imgsz=TEST_IMAGE_SIZE, **SETTINGS) for fmt in EXPORT_FORMATS}


def _val_images(shapes_root: Path) -> list[str]:
    return [str(p) for p in sorted((shapes_root / "images" / "val").glob("*.png"))[:4]]


def _one_to_one(ours, theirs) -> list[int]:
    """For each of our detections, its counterpart: same class, box IoU > 0.99, the closest score not yet taken."""
    similar = (box_iou(ours.boxes.xyxy, theirs.boxes.xyxy) > 0.99) & (ours.boxes.cls[:, None] == theirs.boxes.cls)
    match = []
    for i in range(len(ours.boxes)):
        free = [j for j in torch.nonzero(similar[i]).flatten().tolist() if j not in match]
        assert free, f"detection {i} ({ours.boxes.data[i].tolist()}) has no counterpart"
        match.append(min(free, key=lambda j: abs(ours.boxes.conf[i].item() - theirs.boxes.conf[j].item())))
    return match


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_predicts_what_the_pytorch_model_predicts(fmt, exports, precise_bn_checkpoint, shapes_root):
    images = _val_images(shapes_root)
    common = {"imgsz": TEST_IMAGE_SIZE, "device": "cpu", "verbose": False, **SETTINGS}
    ours = YOLOMask(str(precise_bn_checkpoint)).predict(images, **common)
    exported = YOLOMask(exports[fmt]).predict(images, **common)
    assert sum(len(r.boxes) for r in ours) > 40
    for a, b in zip(ours, exported):
        assert len(a.boxes) == len(b.boxes) and a.masks.data.shape == b.masks.data.shape
        match = _one_to_one(a, b)
        torch.testing.assert_close(b.boxes.conf[match], a.boxes.conf, atol=1e-3, rtol=0)
        mask_a, mask_b = a.masks.data.bool(), b.masks.data.bool()[match]
        mask_iou = (mask_a & mask_b).flatten(1).sum(1) / (mask_a | mask_b).flatten(1).sum(1).clamp(min=1)
        assert (mask_iou >= 0.98).all(), mask_iou


@pytest.fixture(scope="module")
def self_labelled_data(precise_bn_checkpoint, shapes_root, tmp_path_factory) -> Path:
    """The val images labelled with the PyTorch model's own top detections (class and mask polygon).

    On the real labels the weak test model scores a Mask mAP of 0, and 0 == 0 would say nothing; on its own
    detections it scores high, so the exported model's mAP has something to agree with.
    """
    root = tmp_path_factory.mktemp("self_labelled")
    images = sorted((shapes_root / "images" / "val").glob("*.png"))
    (root / "labels").mkdir()
    shutil.copytree(images[0].parent, root / "images")
    results = YOLOMask(str(precise_bn_checkpoint)).predict(
        [str(p) for p in images], imgsz=TEST_IMAGE_SIZE, conf=0.001, max_det=5, retina_masks=True, device="cpu",
        verbose=False,
    )
    for image, result in zip(images, results):
        rows = []
        for cls, mask in zip(result.boxes.cls.int().tolist(), result.masks.data.numpy().astype(np.uint8)):
            polygon = mask_to_yolo_polygon(mask) / mask.shape[::-1]
            rows.append(" ".join([str(cls), *(f"{v:.6f}" for v in polygon.flatten())]))
        (root / "labels" / f"{image.stem}.txt").write_text("\n".join(rows) + "\n")
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images\nval: images\nnames: {{0: a, 1: b, 2: c, 3: d}}\n")
    return data


def test_exported_model_validates_with_the_stock_metrics(exports, self_labelled_data, tmp_path):
    """`.val()` of an export: Ultralytics' Box and Mask metrics on the boxes and masks the graph computed. The labels
    are the PyTorch model's own detections and masks, so the export must find every one of them: a box or a mask in
    the wrong frame or at the wrong scale would not.

    (Its mAP is not the PyTorch model's: Ultralytics' validator NMS lets a box stand once for each class above conf,
    `multi_label`, while the graph keeps each box's best class, as Ultralytics' own nms=True exports do. On this weak
    model, whose classes score alike, that moves Mask mAP50-95 from 0.39 (export) to 0.12 (PyTorch).)
    """
    metrics = YOLOMask(exports["onnx"]).val(
        data=str(self_labelled_data), imgsz=TEST_IMAGE_SIZE, batch=4, device="cpu", plots=False,
        project=str(tmp_path), name="onnx", **SETTINGS,
    ).results_dict
    assert metrics["metrics/recall(B)"] == 1.0, metrics
    # each mask lands on its label wherever its box does (AP is below 1: the labels are each image's top five, and
    # unlabelled detections of other images outscore some of them)
    assert metrics["metrics/mAP50(M)"] == pytest.approx(metrics["metrics/mAP50(B)"], abs=0.05), metrics
    assert metrics["metrics/mAP50(M)"] > 0.3, metrics


def test_onnx_graph_holds_nms_aligned_roialign_and_fixed_outputs(exports):
    graph = onnx.load(exports["onnx"]).graph
    ops = {node.op_type for node in graph.node}
    assert {"NonMaxSuppression", "RoiAlign", "ConvTranspose"} <= ops  # NMS, pooling, the head's upsampling
    modes = {a.s for n in graph.node if n.op_type == "RoiAlign" for a in n.attribute
             if a.name == "coordinate_transformation_mode"}
    assert modes == {b"half_pixel"}  # torchvision's aligned=True
    shapes = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.output]
    assert shapes == [[1, SETTINGS["max_det"], 6], [1, SETTINGS["max_det"], 28, 28]]  # static, as Ultralytics' NMS
    metadata = {p.key: p.value for p in onnx.load(exports["onnx"]).metadata_props}
    assert EXPORT_METADATA_KEY in metadata and metadata["end2end"] == "True"


@pytest.mark.parametrize("args, named", [
    ({"format": "tflite"}, "onnx, torchscript, openvino only"),
    ({"format": "engine"}, "onnx, torchscript, openvino only"),
    ({"format": "onnx", "half": True}, "quantize=16"),
    ({"format": "onnx", "nms": False}, "nms=False"),
    ({"format": "onnx", "opset": 13}, "opset=13"),
], ids=["tflite", "engine", "half", "nms=False", "opset13"])
def test_what_cannot_carry_the_mask_branch_is_refused_before_any_file(args, named, frozen_detector_run, tmp_path):
    best = Path(shutil.copy(frozen_detector_run.best, tmp_path / "best.pt"))
    with pytest.raises(InvalidInputError, match=named):
        YOLOMask(str(best)).export(imgsz=TEST_IMAGE_SIZE, **args)
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_stock_exporter_stops_on_a_yolo_mask_checkpoint_before_writing(frozen_detector_run, tmp_path):
    best = Path(shutil.copy(frozen_detector_run.best, tmp_path / "best.pt"))
    with pytest.raises(InvalidInputError, match=r"YOLOMask\(\.\.\.\)\.export.*yolo-mask segment export"):
        YOLO(str(best)).export(format="torchscript", imgsz=TEST_IMAGE_SIZE)
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_an_export_is_refused_as_the_model_to_export(exports):
    with pytest.raises(InvalidInputError, match=r"export needs a YOLO-mask PyTorch model .*best\.onnx"):
        YOLOMask(exports["onnx"]).export(format="onnx", imgsz=TEST_IMAGE_SIZE)
