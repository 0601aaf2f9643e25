"""YOLO-mask through Ultralytics' own trainer, validator and predictor, and the same checkpoint in Detectron2.

Every model here is trained by Ultralytics' trainer on the generated shapes data, on the CPU, and loaded back
from the files it wrote. The detection checkpoint they start from is the session's `yolo_checkpoint`.
"""
from __future__ import annotations

import os
import csv
import math
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from detectron2.engine import DefaultPredictor
from ultralytics import YOLO
from ultralytics.nn.tasks import load_checkpoint
from ultralytics.utils import ops
from ultralytics.utils.patches import torch_load

from yolo_mask_plugin.adapters import YOLOMask, YOLOMaskModel, YOLOMaskTrainer
from yolo_mask_plugin.adapters.args import DEFAULT_MASK_GAIN
from yolo_mask_plugin.adapters.training import train_ultralytics
from yolo_mask_plugin.apps import train_net
from yolo_mask_plugin.apps.cli import build_parser
from yolo_mask_plugin.interop.checkpoint import convert_ultralytics_checkpoint
from yolo_mask_plugin.d2.config import build_cfg

from .conftest import TEST_IMAGE_SIZE, TRAIN_ARGS
from .same_predictions import assert_same_detections_and_masks, mask_ious, twins

pytestmark = pytest.mark.ultralytics_shell


def _results_csv(save_dir: Path) -> list[dict[str, float]]:
    with open(save_dir / "results.csv") as f:
        return [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_finetune_from_detection_checkpoint_trains_only_the_mask_head(frozen_detector_run, yolo_checkpoint):
    run = frozen_detector_run
    assert run.seen["trainable"] and all(n.startswith("mask_head.") for n in run.seen["trainable"])
    trained, _ = load_checkpoint(run.best)
    detector, _ = load_checkpoint(yolo_checkpoint)
    assert isinstance(trained, YOLOMaskModel)
    for (name, p), (_, q) in zip(trained.model.named_parameters(), detector.model.named_parameters()):
        torch.testing.assert_close(p, q, msg=f"frozen detector parameter {name} changed")
    # every FCN tensor trained, and the P3 lateral: at 128 px every box is under 224 px, so the FPN rule
    # (Detectron2's ROIPooler's) pools all of them from the finest level
    changed = {k: (trained.mask_head.state_dict()[k] - v).abs().max().item() for k, v in run.seen["mask_head"].items()
               if k.startswith(("fcn.", "laterals.convs.0."))}
    assert min(changed.values()) > 1e-3, changed


def test_finished_checkpoints_keep_the_mask_gain(frozen_detector_run):
    """Ultralytics' strip_optimizer keeps only its default.yaml's train args; the finished files still name `mask`."""
    for weights in ("best.pt", "last.pt"):
        checkpoint = torch_load(frozen_detector_run.best.parent / weights, map_location="cpu")
        assert checkpoint["epoch"] == -1 and checkpoint["train_args"]["mask"] == DEFAULT_MASK_GAIN, weights


def test_mask_loss_is_reported_in_training_and_validation(frozen_detector_run):
    rows = _results_csv(frozen_detector_run.save_dir)
    assert len(rows) == 3
    assert all(math.isfinite(r["train/mask_loss"]) and math.isfinite(r["val/mask_loss"]) for r in rows)
    assert rows[-1]["val/mask_loss"] < rows[0]["val/mask_loss"]  # the same val images, a head that learned
    assert rows[-1]["train/mask_loss"] < rows[0]["train/mask_loss"]
    assert {"metrics/mAP50-95(M)", "metrics/mAP50(M)", "metrics/mAP50-95(B)"} <= set(rows[0])


def test_yolo_detect_model_trains_with_the_yolo_mask_trainer_and_mask_gain(shapes_root, yolo_checkpoint, tmp_path):
    model = YOLO(str(yolo_checkpoint))
    model.train(data=str(shapes_root / "shapes-seg.yaml"), trainer=YOLOMaskTrainer, epochs=1, mask=0.0,
                project=str(tmp_path), name="gain0", plots=False, **TRAIN_ARGS)
    rows = _results_csv(tmp_path / "gain0")
    assert rows[0]["train/mask_loss"] == 0.0 and rows[0]["train/box_loss"] > 0
    trained, _ = load_checkpoint(tmp_path / "gain0" / "weights" / "best.pt")
    assert isinstance(trained, YOLOMaskModel)


def test_loss_has_the_same_keys_in_eval_mode_and_handles_images_without_instances():
    model = YOLOMaskModel("yolo11n.yaml", nc=4, verbose=False)
    model.args = SimpleNamespace(box=7.5, cls=0.5, dfl=1.5, mask=2.5, overlap_mask=False)
    masks = torch.zeros(2, 64, 64)
    masks[0, 10:30, 10:40] = 1
    masks[1, 40:60, 5:25] = 1
    batch = {"img": torch.rand(3, 3, 64, 64), "batch_idx": torch.tensor([0.0, 2.0]), "cls": torch.tensor([[1.0], [3.0]]),
             "bboxes": torch.tensor([[25 / 64, 20 / 64, 30 / 64, 20 / 64], [15 / 64, 50 / 64, 20 / 64, 20 / 64]]),
             "masks": masks}  # image 1 has no instance
    model.train()
    loss, items = model.loss(batch)
    assert set(items) == {"box_loss", "cls_loss", "dfl_loss", "mask_loss"}
    # an untrained head predicts 0.5 everywhere (its predictor starts near zero): per-pixel BCE ln 2, times the gain
    assert items["mask_loss"].item() == pytest.approx(2.5 * math.log(2), rel=0.01)
    loss.sum().backward()
    assert model.mask_head.fcn.predictor.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        _, eval_items = model.loss(batch, model(batch["img"]))
    assert set(eval_items) == set(items)
    empty = {**batch, "batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1), "bboxes": torch.zeros(0, 4),
             "masks": torch.zeros(0, 64, 64)}
    model.train()
    loss, items = model.loss(empty)
    assert torch.isfinite(loss).all() and items["mask_loss"] == 0


def _threads_ultralytics_would_not_choose() -> int:
    """Set torch to cpu_count threads (Ultralytics' CPU device selection sets cpu_count - 1) and return it."""
    torch.set_num_threads(os.cpu_count() or 1)
    return torch.get_num_threads()


def test_validator_reports_mask_metrics_at_both_resolutions(frozen_detector_run, shapes_root, tmp_path):
    model = YOLOMask(str(frozen_detector_run.best))
    common = dict(data=str(shapes_root / "shapes-seg.yaml"), imgsz=TEST_IMAGE_SIZE, batch=4, device="cpu",
                  plots=False, conf=0.001, project=str(tmp_path), exist_ok=True)
    threads = _threads_ultralytics_would_not_choose()
    quarter = model.val(name="quarter", **common).results_dict
    full = model.val(name="full", save_txt=True, **common).results_dict
    assert torch.get_num_threads() == threads  # Ultralytics' CPU set-up leaves cpu_count - 1 unless kept
    for metrics in (quarter, full):
        assert {"metrics/mAP50-95(M)", "metrics/mAP50-95(B)"} <= set(metrics)
    assert quarter["metrics/mAP50-95(B)"] == pytest.approx(full["metrics/mAP50-95(B)"])  # boxes do not change
    label_files = list((tmp_path / "full" / "labels").glob("*.txt"))
    assert label_files and all(len(line.split()) > 5 for f in label_files for line in f.read_text().splitlines())


def test_predictor_masks_in_input_and_original_frames(frozen_detector_run, shapes_root, tmp_path):
    image = cv2.imread(str(sorted((shapes_root / "images" / "val").iterdir())[0]))
    image = cv2.resize(image[: TEST_IMAGE_SIZE * 3 // 4], None, fx=2, fy=2)  # 192 x 256: letterboxed, rescaled
    path = tmp_path / "wide.png"
    cv2.imwrite(str(path), image)
    model = YOLOMask(str(frozen_detector_run.best))
    common = dict(imgsz=TEST_IMAGE_SIZE, conf=0.001, max_det=20, device="cpu", verbose=False)
    threads = _threads_ultralytics_would_not_choose()
    small = model.predict(str(path), **common)[0]
    retina = model.predict(str(path), retina_masks=True, **common)[0]
    assert torch.get_num_threads() == threads
    assert small.masks is not None and retina.masks is not None
    assert tuple(retina.masks.data.shape[1:]) == image.shape[:2]
    assert tuple(small.masks.data.shape[1:]) == (96, 128)  # Ultralytics' letterboxed input
    torch.testing.assert_close(small.boxes.xyxy, retina.boxes.xyxy)
    upscaled = ops.scale_masks(small.masks.data[None].float(), image.shape[:2])[0] > 0.5
    both = retina.masks.data.bool()
    big = both.flatten(1).sum(1) > 200
    iou = (upscaled & both).flatten(1).sum(1) / (upscaled | both).flatten(1).sum(1).clamp(min=1)
    assert big.any() and (iou[big] > 0.8).all()
    assert retina.plot().shape == image.shape and small.plot().shape == image.shape


@pytest.mark.numerics
def test_same_checkpoint_gives_the_same_detections_and_masks_in_detectron2(frozen_detector_run, shapes_root, tmp_path):
    """Ultralytics' predictor and Detectron2's DefaultPredictor (yolo_mask_ultralytics.yaml, the checkpoint converted
    by `convert_ultralytics_checkpoint` and loaded by DetectionCheckpointer) on one image.

    Every box NMS keeps (confidence 0) is compared: the weakly trained test detector is rarely sure of
    anything, and a low threshold gives many boxes to compare. Detections are matched by class and box, since fused
    (Ultralytics) and unfused (Detectron2) Conv+BN may order near-equal scores differently.
    """
    best = str(frozen_detector_run.best)
    image_path = str(sorted((shapes_root / "images" / "val").iterdir())[1])
    conf, iou, max_det = 0.0, 0.5, 300
    model = YOLOMask(best)
    ours = model.predict(image_path, imgsz=TEST_IMAGE_SIZE, conf=conf, iou=iou, max_det=max_det,
                         retina_masks=True, device="cpu", verbose=False)[0]
    converted = convert_ultralytics_checkpoint(best, tmp_path / "best_d2.pth")
    cfg = build_cfg("yolo_mask_ultralytics.yaml", [
        "MODEL.YOLO.WEIGHTS", best, "MODEL.WEIGHTS", str(converted), "MODEL.ROI_HEADS.NUM_CLASSES", "4",
        "MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST", str(TEST_IMAGE_SIZE), "INPUT.MAX_SIZE_TEST", str(TEST_IMAGE_SIZE),
        "MODEL.YOLO.CONF_THRESH_TEST", str(conf), "MODEL.YOLO.NMS_THRESH", str(iou),
        "TEST.DETECTIONS_PER_IMAGE", str(max_det),
    ])
    assert_same_detections_and_masks(DefaultPredictor(cfg)(cv2.imread(image_path))["instances"], ours, model.model)


@pytest.mark.numerics
def test_a_resized_and_padded_image_gives_nearly_the_same_results_in_both_frameworks(frozen_detector_run, shapes_root,
                                                                                   tmp_path):
    """A 250x156 image at input size 128: both frameworks scale it by 0.512 and pad it to 128x96, but not alike:
    Ultralytics resizes with OpenCV and centres the image (8 grey rows above, 8 below), Detectron2 resizes with
    PIL and pads 16 rows below. The detector sees shifted pixels (not a multiple of its 16 and 32 strides), so the
    two agree only up to that shift: the measured limit the README states. A frame bug (swapped height and width,
    a wrong pad offset, masks pasted in the padded frame) would move every mask, not a few."""
    best = str(frozen_detector_run.best)
    image = cv2.resize(cv2.imread(str(sorted((shapes_root / "images" / "val").iterdir())[1]))[:80], (250, 156))
    path = tmp_path / "wide.png"
    cv2.imwrite(str(path), image)
    conf, iou, max_det = 0.0, 0.5, 300
    ours = YOLOMask(best).predict(str(path), imgsz=TEST_IMAGE_SIZE, conf=conf, iou=iou, max_det=max_det,
                                  retina_masks=True, device="cpu", verbose=False)[0]
    cfg = build_cfg("yolo_mask_ultralytics.yaml", [
        "MODEL.YOLO.WEIGHTS", best, "MODEL.WEIGHTS", str(convert_ultralytics_checkpoint(best, tmp_path / "d2.pth")),
        "MODEL.ROI_HEADS.NUM_CLASSES", "4", "MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST", str(TEST_IMAGE_SIZE),
        "INPUT.MAX_SIZE_TEST", str(TEST_IMAGE_SIZE), "MODEL.YOLO.CONF_THRESH_TEST", str(conf),
        "MODEL.YOLO.NMS_THRESH", str(iou), "TEST.DETECTIONS_PER_IMAGE", str(max_det),
    ])
    d2 = DefaultPredictor(cfg)(image)["instances"]
    assert d2.image_size == ours.orig_shape == (156, 250) and tuple(ours.masks.data.shape[1:]) == (156, 250)
    pairs = twins(d2, ours, 0.9)
    ious = mask_ious(d2, ours, pairs)
    print(f"\n{len(d2)} / {len(ours.boxes)} detections, {len(pairs)} twins, mask IoU min {ious.min():.3f} "
          f"median {ious.median():.3f}")
    assert len(d2) >= 8 and len(pairs) >= 0.7 * len(d2)
    assert ious.median() >= 0.99 and ious.min() >= 0.85


def test_detectron2_config_must_describe_the_checkpoint_head(frozen_detector_run, tmp_path):
    """`yolo-mask eval` converts a YOLO-mask .pt given as MODEL.WEIGHTS, and refuses a config describing another
    head (Detectron2's checkpointer alone would skip the mismatched tensors with a warning)."""
    args = build_parser().parse_args([
        "eval", "--config-file", "yolo_mask_ultralytics.yaml", "MODEL.YOLO.WEIGHTS", str(frozen_detector_run.best),
        "MODEL.WEIGHTS", str(frozen_detector_run.best), "MODEL.ROI_HEADS.NUM_CLASSES", "4", "MODEL.DEVICE", "cpu",
        "MODEL.ROI_MASK_HEAD.CONV_DIM", "256", "OUTPUT_DIR", str(tmp_path),
    ])
    with pytest.raises(ValueError, match=r"CONV_DIM=256 \(checkpoint: 64\).*yolo_mask_ultralytics.yaml"):
        train_net.setup(args)
    assert (tmp_path / "best_d2.pth").is_file()  # converted next to the run's outputs
    args.opts = args.opts[:-4] + args.opts[-2:]  # without CONV_DIM 256: the config describes the head
    cfg = train_net.setup(args)
    assert cfg.MODEL.WEIGHTS == str(tmp_path / "best_d2.pth")


def test_checkpoint_reloads_by_import_path_in_a_fresh_interpreter(frozen_detector_run):
    code = (
        "from ultralytics.nn.tasks import load_checkpoint; import sys; "
        f"m, _ = load_checkpoint({str(frozen_detector_run.best)!r}); "
        "print(type(m).__module__, type(m).__name__, sys.modules['yolo_mask_plugin.adapters.train'].__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["yolo_mask_plugin.adapters.mask_model", "YOLOMaskModel"]
    assert YOLOMaskTrainer.__module__ == "yolo_mask_plugin.adapters.train"  # Ultralytics DDP imports it by path


def test_boxes_only_dataset_is_refused_for_lack_of_masks(shapes_root, tmp_path):
    root = tmp_path / "boxes"
    for split in ("train", "val"):
        (root / "labels" / split).mkdir(parents=True)
        shutil.copytree(shapes_root / "images" / split, root / "images" / split)  # Ultralytics resolves links
        for label in (shapes_root / "labels" / split).glob("*.txt"):
            rows = []
            for line in label.read_text().splitlines():
                cls, *xy = line.split()
                xy = np.array(xy, dtype=float).reshape(-1, 2)
                (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
                rows.append(f"{cls} {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} {x1 - x0:.6f} {y1 - y0:.6f}")
            (root / "labels" / split / label.name).write_text("\n".join(rows) + "\n")
    data = root / "boxes.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: {{0: a, 1: b, 2: c, 3: d}}\n")
    with pytest.raises(ValueError, match="segment"):
        YOLOMask("yolo11n.yaml").train(data=str(data), epochs=1, project=str(tmp_path), plots=False, **TRAIN_ARGS)


def test_images_without_instances_train(shapes_root, tmp_path):
    root = tmp_path / "sparse"
    for split in ("train", "val"):
        shutil.copytree(shapes_root / "images" / split, root / "images" / split)  # Ultralytics resolves links
        (root / "labels" / split).mkdir(parents=True)
        for i, label in enumerate(sorted((shapes_root / "labels" / split).glob("*.txt"))):
            (root / "labels" / split / label.name).write_text("" if i % 2 else label.read_text())
    data = root / "sparse.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: {{0: a, 1: b, 2: c, 3: d}}\n")
    best = train_ultralytics(YOLOMask("yolo11n.yaml"), data, tmp_path, "sparse", epochs=1, **TRAIN_ARGS)
    assert np.isfinite(list(_results_csv(best.parent.parent)[0].values())).all()


def test_stock_yolo_seg_checkpoint_is_refused_clearly(shapes_root, tmp_path):
    seg = YOLO("yolo11n-seg.yaml")
    seg.save(tmp_path / "seg.pt")
    with pytest.raises(TypeError, match="needs a YOLO-mask model.*SegmentationModel"):
        YOLOMask(str(tmp_path / "seg.pt")).val(data=str(shapes_root / "shapes-seg.yaml"), imgsz=TEST_IMAGE_SIZE,
                                               device="cpu", plots=False, project=str(tmp_path))
    with pytest.raises(ValueError, match="needs a YOLO detection model.*Segment head"):
        YOLOMaskModel("yolo11n-seg.yaml", verbose=False)


def test_pool_p2_adds_yolos_stride_4_map_and_survives_a_checkpoint(tmp_path):
    from ultralytics.nn.tasks import yaml_model_load

    from yolo_mask_plugin.interop.checkpoint import mask_head_opts

    model = YOLOMaskModel({**yaml_model_load("yolo11n.yaml"), "mask_head": {"pool_p2": True}}, nc=4, verbose=False)
    assert model.mask_head.pooler.strides == [4, 8, 16, 32] and len(model.mask_head.laterals.convs) == 4
    torch.save({"model": model}, tmp_path / "p2.pt")
    reloaded, _ = load_checkpoint(tmp_path / "p2.pt")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        _, raw = reloaded.eval()(x)
        probs = reloaded.mask_probs(raw, [torch.tensor([[4.0, 4.0, 40.0, 36.0]])], [torch.tensor([1.0])])
    assert raw["p2"].shape[-2:] == (16, 16) and probs[0].shape == (1, 28, 28)
    opts = mask_head_opts(reloaded.mask_head.spec, ["p3", "p4", "p5"])
    assert opts[opts.index("MODEL.ROI_HEADS.IN_FEATURES") + 1] == "['p2', 'p3', 'p4', 'p5']"
