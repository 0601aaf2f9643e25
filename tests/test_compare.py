"""`yolo-mask compare`: the evaluator against Detectron2's and Ultralytics', bad input, and a whole tiny run.

The tiny run (`tiny_run` in conftest.py) really trains all four models (1 epoch / 2 iterations) from the session's
YOLO checkpoint and a Detectron2 checkpoint saved there, then checks every file of the report; its numbers are not
judged, the budget is far too small to learn anything. It is the rerun of a comparison killed during its second
model (tests/test_killed_runs.py checks that part).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes, Instances
from PIL import Image

from yolo_mask_plugin.apps.cli import build_parser
from yolo_mask_plugin.apps.compare import MODEL_LABELS, CompareBudget, prepare_dataset, run_compare
from yolo_mask_plugin.apps.compare import evaluate
from yolo_mask_plugin.apps.compare.dataset import COMPARE_VAL
from yolo_mask_plugin.apps.compare.run import train_models

from .conftest import TEST_IMAGE_SIZE, TINY, compare_splits


def _copy_dataset(shapes_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(shapes_root / "annotations", root / "annotations")
    shutil.copytree(shapes_root / "images", root / "images")
    return root


# --- the evaluator --------------------------------------------------------------------------------------------

def _predictions_from_ground_truth(gt, records, category_ids, perturb: bool) -> list[Instances]:
    """Per val image, its ground truth as predictions; with `perturb`, some dropped, shifted, relabelled, and
    false positives added, so AP lands in between and every part of the matching is exercised."""
    rng = np.random.default_rng(0)
    contiguous = {c: i for i, c in enumerate(category_ids)}
    out = []
    for record in records:
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[record["image_id"]]))
        h, w = record["height"], record["width"]
        boxes, masks, classes, scores = [], [], [], []
        for k, a in enumerate(anns):
            if perturb and k % 4 == 3:
                continue  # a miss
            mask = gt.annToMask(a).astype(bool)
            x, y, bw, bh = a["bbox"]
            cls = contiguous[a["category_id"]]
            if perturb and k % 4 == 1:  # a sloppy one: shifted by an eighth of its size (box IoU ~0.6)
                dx, dy = int(bw / 8) + 1, int(bh / 8) + 1
                mask = np.roll(mask, (dy, dx), axis=(0, 1))
                x, y = x + dx, y + dy
            if perturb and k % 4 == 2 and k % 8 == 2:
                cls = (cls + 1) % len(category_ids)  # a wrong class
            boxes.append([x, y, x + bw, y + bh])
            masks.append(mask)
            classes.append(cls)
            scores.append(float(rng.uniform(0.3, 1.0)))
        if perturb:  # a confident false positive in the corner
            fp = np.zeros((h, w), bool)
            fp[: h // 6, : w // 6] = True
            boxes.append([0, 0, w // 6, h // 6])
            masks.append(fp)
            classes.append(0)
            scores.append(0.95)
        out.append(Instances(
            (h, w), pred_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)),
            scores=torch.tensor(scores), pred_classes=torch.tensor(classes, dtype=torch.long),
            pred_masks=torch.from_numpy(np.stack(masks)) if masks else torch.zeros((0, h, w), dtype=bool),
        ))
    return out


@pytest.fixture(scope="module")
def val_setup(shapes_root, tmp_path_factory):
    dataset = prepare_dataset(*compare_splits(shapes_root), tmp_path_factory.mktemp("compare_data"))
    records = DatasetCatalog.get(COMPARE_VAL)
    gt = evaluate.load_ground_truth(str(dataset.val.json_file))
    return dataset, records, gt


def _score(gt, records, predictions, category_ids):
    image_ids = [r["image_id"] for r in records]
    results = [r for i, p in zip(image_ids, predictions) for r in evaluate.to_coco_results(p, i, category_ids)]
    return (
        evaluate.coco_metrics(gt, results),
        evaluate.detectron2_coco_evaluator(COMPARE_VAL, image_ids, predictions),
        evaluate.ultralytics_ap(gt, image_ids, predictions, category_ids),
    )


def test_evaluators_agree_on_perfect_predictions(val_setup):
    dataset, records, gt = val_setup
    predictions = _predictions_from_ground_truth(gt, records, dataset.category_ids, perturb=False)
    ours, d2, ultralytics = _score(gt, records, predictions, dataset.category_ids)
    for iou_type in evaluate.IOU_TYPES:
        assert ours[iou_type]["AP"] == pytest.approx(100.0)
        assert d2[iou_type]["AP"] == pytest.approx(100.0)
        # Ultralytics' envelope ends at (recall 1, precision 0): its perfect score is 99.5, not 100
        assert ultralytics[iou_type]["mAP50_95"] == pytest.approx(99.5)


def test_evaluators_agree_on_imperfect_predictions(val_setup):
    """COCOeval here == Detectron2's COCOEvaluator on every metric; Ultralytics' AP close, not equal (its
    101-point envelope and IoU-only matching differ from COCOeval by design)."""
    dataset, records, gt = val_setup
    predictions = _predictions_from_ground_truth(gt, records, dataset.category_ids, perturb=True)
    ours, d2, ultralytics = _score(gt, records, predictions, dataset.category_ids)
    compared = 0
    for iou_type in evaluate.IOU_TYPES:
        assert 10.0 < ours[iou_type]["AP"] < 90.0, ours  # in between: misses, shifts and false positives count
        for metric in evaluate.METRICS:
            a, b = ours[iou_type][metric], d2[iou_type][metric]
            assert (a is None) == (b is None), (iou_type, metric, a, b)
            if a is not None:
                assert a == pytest.approx(b, abs=1e-9), (iou_type, metric)
                compared += 1
        assert ultralytics[iou_type]["mAP50_95"] == pytest.approx(ours[iou_type]["AP"], abs=2.0)
        assert ultralytics[iou_type]["mAP50"] == pytest.approx(ours[iou_type]["AP50"], abs=2.0)
    assert compared >= 8
    # shifted instances match at IoU 0.5 but not 0.75
    assert ours["segm"]["AP75"] < ours["segm"]["AP50"] and ours["bbox"]["AP75"] < ours["bbox"]["AP50"]


def test_no_predictions_score_zero(val_setup):
    dataset, records, gt = val_setup
    empty = [
        Instances(
            (r["height"], r["width"]), pred_boxes=Boxes(torch.zeros(0, 4)), scores=torch.zeros(0),
            pred_classes=torch.zeros(0, dtype=torch.long), pred_masks=torch.zeros(0, r["height"], r["width"], dtype=bool),
        )
        for r in records
    ]
    ours, d2, ultralytics = _score(gt, records, empty, dataset.category_ids)
    assert ours["segm"]["AP"] == 0.0 and ultralytics["segm"]["mAP50_95"] == 0.0
    assert d2["segm"]["AP"] is None  # Detectron2 reports NaN when there is nothing to score


# --- bad input, refused before anything trains ----------------------------------------------------------------

def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _strip_segmentations(data):
    for a in data["annotations"][:3]:
        del a["segmentation"]


def _rename_category(data):
    data["categories"][0]["name"] = "blob"


def _shift_category_ids(data):
    for c in data["categories"]:
        c["id"] += 10
    for a in data["annotations"]:
        a["category_id"] += 10


def _empty(data):
    data["images"], data["annotations"] = [], []


@pytest.mark.parametrize(
    "split, edit, error, message",
    [
        ("train", _strip_segmentations, ValueError, "3 of .* annotations have no 'segmentation'"),
        ("val", _rename_category, ValueError, "categories differ between train .* and val"),
        ("val", _shift_category_ids, ValueError, "categories differ between train .* and val"),
        ("val", _empty, ValueError, "val split is empty"),
        ("val", "missing_image", FileNotFoundError, "1 of 12 listed images are not on disk"),
    ],
)
def test_bad_input_fails_before_training(shapes_root, tmp_path, split, edit, error, message):
    root = _copy_dataset(shapes_root, tmp_path)
    if edit == "missing_image":
        next((root / "images" / split).iterdir()).unlink()
    else:
        _edit_json(root / "annotations" / f"instances_{split}.json", edit)
    output = tmp_path / "compare"
    with pytest.raises(error, match=message):
        run_compare(output, *compare_splits(root), budget=CompareBudget(imgsz=TEST_IMAGE_SIZE))
    assert not (output / "models").exists()  # nothing started training


def test_cli_wants_all_split_paths_or_none(shapes_root):
    from yolo_mask_plugin.apps.cli import _compare

    args = build_parser().parse_args(["compare", "--train-json", str(shapes_root / "annotations/instances_train.json")])
    with pytest.raises(SystemExit, match="give all of --train-json"):
        _compare(args)


def test_missing_weights_path_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="--mask-rcnn-weights"):
        run_compare(tmp_path / "c", mask_rcnn_weights=str(tmp_path / "nope.pkl"))


# --- a whole run on a tiny budget (conftest.py: `tiny_run`) ---------------------------------------------------

def test_tiny_run_writes_every_report_file(tiny_run):
    output, results = tiny_run
    assert json.loads((output / "results.json").read_text()) == json.loads(json.dumps(results))
    report = (output / "report.md").read_text()
    for label in MODEL_LABELS.values():
        assert f"| {label} |" in report
    for section in ("## Evaluator cross-check", "## How it was run", "## Fairness rules", "## Machine and versions"):
        assert section in report
    assert set(results["models"]) == set(MODEL_LABELS)
    for name, model in results["models"].items():
        for iou_type in evaluate.IOU_TYPES:
            assert set(model["accuracy"][iou_type]) == set(evaluate.METRICS)
            assert model["accuracy"][iou_type]["AP"] is not None and 0.0 <= model["accuracy"][iou_type]["AP"] <= 100.0
        assert 0 < model["speed"]["median_ms"] <= model["speed"]["p90_ms"] and model["speed"]["runs"] == 4
        assert model["params"] > 1e6 and model["flops"] > 1e7, name
        assert model["memory"]["peak_rss_mb"] > 0, name
        assert model["train"]["wall_s"] > 0 and model["train"]["cpu_s"] > 0
        assert f"{model['speed']['median_ms']:.1f}" in report
    assert results["models"]["mask_rcnn"]["speed"]["ratio_to_reference"] == 1.0
    # the R50 models are bigger than the YOLO-n ones; the YOLO-mask head adds little to the detector
    assert results["models"]["mask_rcnn"]["params"] > 10 * results["models"]["yolo_mask"]["params"]
    for png, min_width in (("speed_accuracy.png", 400), ("image_grid.png", 5 * 200)):
        with Image.open(output / png) as image:
            assert image.width >= min_width


def test_tiny_run_cross_check_agrees(tiny_run):
    _, results = tiny_run
    for name, check in results["evaluator_cross_check"]["per_model"].items():
        agreement = check["detectron2_agreement"]
        if agreement["metrics_compared"]:
            assert agreement["max_abs_diff"] <= 1e-9, name
    validator = results["evaluator_cross_check"]["ultralytics_validator"]
    assert set(validator) == {"yolo_mask", "yolo_seg"}
    assert all(0.0 <= v <= 100.0 for r in validator.values() for v in r.values())


def test_tiny_run_used_the_given_weights(tiny_run, mask_rcnn_checkpoint, yolo_checkpoint):
    """FREEZE_AT 2 (Detectron2's default with pretrained weights) keeps the stem as loaded: after training,
    both ResNets' stems still equal the checkpoint passed as --mask-rcnn-weights."""
    _, results = tiny_run
    given = torch.load(mask_rcnn_checkpoint, map_location="cpu", weights_only=False)["model"]
    key = "backbone.bottom_up.stem.conv1.weight"
    for name in ("mask_rcnn", "yolo_mask_two_branch"):
        trained = torch.load(results["models"][name]["train"]["weights"], map_location="cpu", weights_only=False)
        assert torch.equal(trained["model"][key], given[key]), name
    for name in ("yolo_mask", "yolo_seg"):
        assert str(yolo_checkpoint) in results["models"][name]["recipe"]


def test_rerun_reuses_finished_models(tiny_run, shapes_root, yolo_checkpoint, mask_rcnn_checkpoint):
    """What an interrupted compare does on its next start: finished runs are reused, not retrained."""
    output, results = tiny_run
    dataset = prepare_dataset(*compare_splits(shapes_root), output / "data")
    weights = {n: Path(m["train"]["weights"]) for n, m in results["models"].items()}
    stamps = {n: p.stat().st_mtime_ns for n, p in weights.items()}
    again = train_models(dataset, TINY, output / "models", "yolo11n", str(yolo_checkpoint), str(mask_rcnn_checkpoint))
    assert {n: Path(m["record"]["weights"]) for n, m in again.items()} == weights
    assert {n: p.stat().st_mtime_ns for n, p in weights.items()} == stamps


def test_unfinished_run_resumes_only_with_the_same_settings(tmp_path):
    """An interrupted Detectron2 run resumes from its checkpoint; one left by another budget is cleared."""
    from yolo_mask_plugin.apps.runs import start_run as _start

    run = tmp_path / "run"
    _start(run, {"opts": ["SOLVER.MAX_ITER", "40"]})
    (run / "last_checkpoint").write_text("model_0000019.pth")
    _start(run, {"opts": ["SOLVER.MAX_ITER", "40"]})
    assert (run / "last_checkpoint").is_file()
    _start(run, {"opts": ["SOLVER.MAX_ITER", "80"]})
    assert not (run / "last_checkpoint").exists()
