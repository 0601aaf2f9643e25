"""YOLO-mask's end-to-end exports (onnx, torchscript, openvino), read back through Ultralytics' AutoBackend.

Each format's predictions must equal the PyTorch model's on validation images: the same detections (one to one by
class and box IoU > 0.99, among those kept by more than rounding), scores within float32 rounding of the network
(tests/numerics.py), mask IoU >= 0.98 per instance; `.val()` of an export gives
Ultralytics' Box and Mask metrics. What cannot carry the mask branch is refused before any file is written.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

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
from .numerics import decided_beyond, network_tolerance

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


def _decided(result, tolerance: float) -> torch.Tensor:
    """Which detections every runtime keeps: scored more than `tolerance` above the confidence threshold and, when
    `max_det` cut the list, above the last one kept. Within it, whether a detection is kept is a near tie."""
    cut = SETTINGS["conf"]
    if len(result.boxes) == SETTINGS["max_det"]:
        cut = max(cut, result.boxes.conf.min().item())
    return decided_beyond(result.boxes.conf, cut, tolerance) & (result.boxes.conf > cut)


@pytest.mark.numerics
@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_predicts_what_the_pytorch_model_predicts(fmt, exports, precise_bn_checkpoint, shapes_root):
    """Scores within float32 rounding of the network (tests/numerics.py): each runtime sums its convolutions in its
    own order. Each side's detections kept by more than that margin have a twin on the other side."""
    images = _val_images(shapes_root)
    common = {"imgsz": TEST_IMAGE_SIZE, "device": "cpu", "verbose": False, **SETTINGS}
    model = YOLOMask(str(precise_bn_checkpoint))
    ours = model.predict(images, **common)
    exported = YOLOMask(exports[fmt]).predict(images, **common)
    tolerance = network_tolerance(model.model, 1)
    assert sum(int(_decided(r, tolerance).sum()) for r in ours) > 40
    for a, b in zip(ours, exported):
        assert a.masks.data.shape[1:] == b.masks.data.shape[1:]
        _one_to_one(b[_decided(b, tolerance)], a)  # what the export keeps by a margin, PyTorch keeps
        a = a[_decided(a, tolerance)]
        match = _one_to_one(a, b)  # and the other way round
        torch.testing.assert_close(b.boxes.conf[match], a.boxes.conf, atol=tolerance, rtol=0)
        mask_a, mask_b = a.masks.data.bool(), b.masks.data.bool()[match]
        mask_iou = (mask_a & mask_b).flatten(1).sum(1) / (mask_a | mask_b).flatten(1).sum(1).clamp(min=1)
        assert (mask_iou >= 0.98).all(), mask_iou  # a mask pixel whose probability is within rounding of 0.5 flips


# A label's box is its mask's box; the export finds the label when its own box of that detection has IoU >= 0.5 with
# it. The export's box is the PyTorch model's within float32 rounding (BOX_TOLERANCE_PX): a coordinate off by d px
# moves a box IoU by less than 4 d / (the box's shorter side), so a label kept only when its detection's box has IoU
# above 0.5 + LABEL_IOU_MARGIN with its mask's box is found by every runtime, while a box in the wrong frame or at
# the wrong scale (off by pixels) still is not.
LABEL_IOU_MARGIN = 0.05


@pytest.fixture(scope="module")
def self_labelled_data(precise_bn_checkpoint, shapes_root, tmp_path_factory) -> SimpleNamespace:
    """The val images labelled with the PyTorch model's own top detections (mask polygons, one class: `single_cls`
    validation, since classes that score alike are near ties, checked per detection by the test above).

    On the real labels the weak test model scores a Mask mAP of 0, and 0 == 0 would say nothing; on its own
    detections the exported model has something to find.
    """
    root = tmp_path_factory.mktemp("self_labelled")
    images = sorted((shapes_root / "images" / "val").glob("*.png"))
    (root / "labels").mkdir()
    shutil.copytree(images[0].parent, root / "images")
    results = YOLOMask(str(precise_bn_checkpoint)).predict(
        [str(p) for p in images], imgsz=TEST_IMAGE_SIZE, conf=0.001, max_det=5, retina_masks=True, device="cpu",
        verbose=False,
    )
    labelled = 0
    for image, result in zip(images, results):
        rows = []
        for box, mask in zip(result.boxes.xyxy, result.masks.data.numpy().astype(np.uint8)):
            ys, xs = np.nonzero(mask)
            if not len(xs):
                continue
            mask_box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float)
            if box_iou(box[None], mask_box).item() <= 0.5 + LABEL_IOU_MARGIN:
                continue  # a near tie at the validator's IoU threshold: found or not by rounding
            polygon = mask_to_yolo_polygon(mask) / mask.shape[::-1]
            rows.append(" ".join(["0", *(f"{v:.6f}" for v in polygon.flatten())]))
        labelled += len(rows)
        (root / "labels" / f"{image.stem}.txt").write_text("\n".join(rows) + "\n" if rows else "")
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images\nval: images\nnames: {{0: a, 1: b, 2: c, 3: d}}\n")
    return SimpleNamespace(data=data, labels=labelled)


@pytest.mark.numerics
def test_exported_model_validates_with_the_stock_metrics(exports, self_labelled_data, tmp_path):
    """`.val()` of an export: Ultralytics' Box and Mask metrics on the boxes and masks the graph computed. The labels
    are the PyTorch model's own detections and masks, so the export must find every one of them, box and mask: a
    box or a mask in the wrong frame or at the wrong scale would not.

    Counted exactly: the recall with every detection kept (Ultralytics' recall curve at confidence 0), not the
    `recall(B)` column, which Ultralytics reads at the confidence where F1 peaks, a threshold the scores of many
    unlabelled detections decide (1.0 on one CPU, 0.111 on another).
    """
    assert self_labelled_data.labels >= 10
    metrics = YOLOMask(exports["onnx"]).val(
        data=str(self_labelled_data.data), imgsz=TEST_IMAGE_SIZE, batch=4, device="cpu", plots=False,
        project=str(tmp_path), name="onnx", single_cls=True, **SETTINGS,
    )
    assert metrics.box.r_curve[:, 0].tolist() == [1.0], metrics.results_dict  # every label's box, at IoU >= 0.5
    assert metrics.seg.r_curve[:, 0].tolist() == [1.0], metrics.results_dict  # and its mask, at mask IoU >= 0.5


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
