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

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes, Instances
from PIL import Image
from ultralytics.nn.tasks import load_checkpoint

from yolo_mask_plugin.yolo import load_yolo
from yolo_mask_plugin.apps.cli import build_parser
from yolo_mask_plugin.apps.compare import MODEL_LABELS, CompareBudget, prepare_dataset, run_compare
from yolo_mask_plugin.apps.compare import evaluate
from yolo_mask_plugin.apps.compare.dataset import COMPARE_VAL
from yolo_mask_plugin.apps.compare.models import ModelChoice, train_models
from yolo_mask_plugin.apps.predict import coco_results
from yolo_mask_plugin.core.errors import InvalidInputError
from yolo_mask_plugin.d2.config import build_cfg

from .conftest import (
    TEST_IMAGE_SIZE,
    TINY,
    TINY_PASS_THROUGH,
    TINY_SCORE_THRESHOLD,
    compare_splits,
    user_compare_splits,
)


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
    results = [r for i, p in zip(image_ids, predictions) for r in coco_results(p, i, category_ids)]
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
    # an area range without ground truth says None with predictions or without: the same keys as a perfect run's
    perfect = evaluate.coco_metrics(gt, [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0,
         "segmentation": gt.annToRLE(a)} for a in gt.loadAnns(gt.getAnnIds()) if not a.get("iscrowd", 0)])
    for iou_type in evaluate.IOU_TYPES:
        assert {m for m, v in ours[iou_type].items() if v is None} == {m for m, v in perfect[iou_type].items() if v is None}
        assert all(v == 0.0 for v in ours[iou_type].values() if v is not None)


def test_boundary_iou_equals_a_direct_computation(user_coco):
    """faster-coco-eval's Boundary IoU type against the paper's definition, min(mask IoU, boundary-band IoU), on
    every ground truth x prediction pair of a few images; predictions are ground truth grown, shrunk or shifted."""
    from faster_coco_eval import COCO as FastCOCO
    from faster_coco_eval import COCOeval_faster

    json_file = str(user_coco["val"][0])
    gt = evaluate.load_ground_truth(json_file)
    kernel = np.ones((3, 3), np.uint8)
    edits = (lambda m: cv2.dilate(m, kernel), lambda m: cv2.erode(m, kernel), lambda m: np.roll(m, 3, axis=1))
    results, masks = [], {}
    for a in gt.loadAnns(gt.getAnnIds(iscrowd=False)):
        predicted = edits[a["id"] % 3](gt.annToMask(a))
        rle = mask_utils.encode(np.asfortranarray(predicted))
        masks[len(results) + 1] = predicted  # loadRes numbers the results 1, 2, ... in order
        results.append({"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9,
                        "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
    fast_gt = FastCOCO(json_file)
    evaluation = COCOeval_faster(fast_gt, fast_gt.loadRes(results), "boundary", print_function=lambda *a: None,
                                 boundary_dilation_ratio=evaluate.BOUNDARY_DILATION_RATIO)
    evaluation.evaluate()
    checked = 0
    for (image_id, cat_id), ious in evaluation.ious.items():
        if len(ious) == 0:
            continue
        dts = [d for d in evaluation.cocoDt.loadAnns(evaluation.cocoDt.getAnnIds(imgIds=[image_id], catIds=[cat_id]))]
        dts = sorted(dts, key=lambda d: -d["score"])[: evaluation.params.maxDets[-1]]
        gts = evaluation.cocoGt.loadAnns(evaluation.cocoGt.getAnnIds(imgIds=[image_id], catIds=[cat_id]))
        for i, d in enumerate(dts):
            for j, g in enumerate(gts):
                if g["iscrowd"]:
                    continue
                p, t = masks[d["id"]], gt.annToMask(g)
                bp, bt = (evaluate.boundary_band(m) for m in (p, t))  # the paper's reference definition
                direct = min((p & t).sum() / (p | t).sum(), (bp & bt).sum() / max((bp | bt).sum(), 1))
                assert ious[i][j] == pytest.approx(direct, abs=1e-6), (image_id, cat_id, i, j)
                checked += 1
    assert checked >= 10


def test_boundary_ap_punishes_what_mask_ap_barely_sees(user_coco):
    """Ground truth grown by one pixel: mask AP stays high, Boundary AP drops; exact ground truth: both 100."""
    json_file = str(user_coco["val"][0])
    gt = evaluate.load_ground_truth(json_file)
    exact, grown = [], []
    for a in gt.loadAnns(gt.getAnnIds(iscrowd=False)):
        for out, mask in ((exact, gt.annToMask(a)), (grown, cv2.dilate(gt.annToMask(a), np.ones((3, 3), np.uint8)))):
            rle = mask_utils.encode(np.asfortranarray(mask))
            out.append({"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9,
                        "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
    perfect = evaluate.boundary_metrics(json_file, exact)
    assert perfect["AP"] == pytest.approx(100.0) and set(perfect["per_class"]) == {"ring", "blob", "bar"}
    loose_mask, loose_boundary = evaluate.coco_metrics(gt, grown)["segm"]["AP"], evaluate.boundary_metrics(json_file, grown)["AP"]
    assert loose_mask > 50 and loose_boundary < loose_mask - 20, (loose_mask, loose_boundary)
    assert evaluate.boundary_metrics(json_file, [])["AP"] == 0.0


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


def _wrong_size(data):
    data["images"][1]["width"] += 8


@pytest.mark.parametrize(
    "split, edit, error, message",
    [
        ("train", _strip_segmentations, ValueError, "3 of .* annotations have no 'segmentation'"),
        ("val", _rename_category, ValueError, "categories differ between train .* and val"),
        ("val", _shift_category_ids, ValueError, "categories differ between train .* and val"),
        ("val", _empty, ValueError, "val split is empty"),
        ("val", "missing_image", FileNotFoundError, "1 of 12 listed images are not on disk"),
        ("train", "corrupt_image", ValueError, r"1 of 48 images: 000003.png cannot be read as an image"),
        ("train", _wrong_size, ValueError, r"1 of 48 images: 000001.png is 128x128 but the json says 136x128"),
    ],
)
def test_bad_input_fails_before_training(shapes_root, tmp_path, split, edit, error, message):
    root = _copy_dataset(shapes_root, tmp_path)
    if edit == "missing_image":
        next((root / "images" / split).iterdir()).unlink()
    elif edit == "corrupt_image":
        (root / "images" / split / "000003.png").write_bytes(b"\x89PNG truncated")
    else:
        _edit_json(root / "annotations" / f"instances_{split}.json", edit)
    output = tmp_path / "compare"
    with pytest.raises(error, match=message):
        run_compare(output, *compare_splits(root), budget=CompareBudget(imgsz=TEST_IMAGE_SIZE))
    assert not (output / "models").exists()  # nothing started training


def test_cli_wants_all_split_paths_or_none(shapes_root):
    from yolo_mask_plugin.apps.cli import _compare

    args = build_parser().parse_args(["compare", "--train-json", str(shapes_root / "annotations/instances_train.json")])
    with pytest.raises(InvalidInputError, match="give all of --train-json"):
        _compare(args)


def test_missing_weights_path_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="--mask-rcnn-weights"):
        run_compare(tmp_path / "c", mask_rcnn_weights=str(tmp_path / "nope.pkl"))


# --- a whole run on a tiny budget (conftest.py: `tiny_run`) ---------------------------------------------------


def test_tiny_run_takes_users_data_as_annotated(tiny_run):
    output, results = tiny_run
    assert results["dataset"]["mask_format"] == "bitmask" and results["dataset"]["num_crowd"] > 0
    assert results["dataset"]["classes"] == ["ring", "blob", "bar"]
    for name in ("mask_rcnn", "yolo_mask_two_branch"):  # Detectron2 trained on the RLE masks as bitmasks
        config = (output / "models" / name / "config.yaml").read_text()
        assert "MASK_FORMAT: bitmask" in config, name


def test_tiny_run_writes_every_report_file(tiny_run):
    output, results = tiny_run
    assert json.loads((output / "results.json").read_text()) == json.loads(json.dumps(results))
    report = (output / "report.md").read_text()
    for label in MODEL_LABELS.values():
        assert f"| {label} |" in report
    for section in ("## Accuracy against training compute", "## Boundary quality", "## Evaluator cross-check",
                    "## How it was run", "## Fairness rules", "## Machine and versions"):
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
    for png, min_width in (("speed_accuracy.png", 400), ("image_grid.png", 5 * 200),
                           ("accuracy_vs_minutes.png", 800), ("worst_boundaries.png", 200)):
        with Image.open(output / png) as image:
            assert image.width >= min_width


def test_tiny_run_curves_boundary_ap_and_equal_minutes(tiny_run):
    """Every trained model scored at >= 2 snapshots in training order, the last one its final scores; Boundary AP per
    class and size for every model; the AP of each at the minutes all reached."""
    _, results = tiny_run
    for name, model in results["models"].items():
        points = model["curve"]
        assert len(points) >= 2, name
        assert [p["wall_min"] for p in points] == sorted(p["wall_min"] for p in points)
        assert points[-1]["segm_AP"] == model["accuracy"]["segm"]["AP"]
        assert points[-1]["wall_min"] == pytest.approx(model["train"]["wall_s"] / 60, abs=0.01)
        boundary = model["accuracy"]["boundary"]
        assert set(METRICS_AND_CLASSES) <= set(boundary) | set(boundary["per_class"])
        assert boundary["AP"] <= model["accuracy"]["segm"]["AP"] + 1e-6  # min(mask IoU, Boundary IoU) <= mask IoU
        assert all("boundary_iou" in w for w in model["worst_boundaries"])
    for axis in ("wall_min", "cpu_min"):
        equal = results["equal_minutes"][axis]
        assert equal["minutes"] == min(m["curve"][-1][axis] for m in results["models"].values())
        assert set(equal["segm_AP"]) == set(results["models"])


METRICS_AND_CLASSES = (*evaluate.METRICS, "ring", "blob", "bar")


def test_tiny_run_passes_options_through_to_both_frameworks(tiny_run):
    """`--d2-opts` and `--yolo-args` reach every model of their framework unchanged, and the report's recipes."""
    output, results = tiny_run
    for name in ("mask_rcnn", "yolo_mask_two_branch", "yolo_mask_d2"):
        assert f"BATCH_SIZE_PER_IMAGE: {TINY_PASS_THROUGH['d2']}" in (output / "models" / name / "config.yaml").read_text()
        assert f"MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE {TINY_PASS_THROUGH['d2']}" in results["models"][name]["recipe"]
    for name in ("yolo_mask", "yolo_seg"):
        assert f"box: {TINY_PASS_THROUGH['box']}" in (output / "models" / name / "args.yaml").read_text()
        assert f"'box': {TINY_PASS_THROUGH['box']}" in results["models"][name]["recipe"]


def test_a_subset_scored_from_given_weights_trains_nothing(tiny_run, user_coco, tmp_path):
    """`--models yolo_mask,mask_rcnn --weights ...`: only those two, scored from the tiny run's weights as they
    are: the same AP as in the tiny run, no training, no curve."""
    output, results = tiny_run
    given = {name: results["models"][name]["train"]["weights"] for name in ("yolo_mask", "mask_rcnn")}
    subset = run_compare(
        tmp_path / "subset", *user_compare_splits(user_coco), budget=TINY, models=["yolo_mask", "mask_rcnn"],
        weights=given, score_threshold=TINY_SCORE_THRESHOLD, speed_images=2, warmup_images=1, grid_images=1,
    )
    assert list(subset["models"]) == ["yolo_mask", "mask_rcnn"]
    assert not (tmp_path / "subset" / "models" / "yolo_mask").exists()  # nothing trained
    for name in given:
        assert subset["models"][name]["curve"] == [] and subset["models"][name]["train"]["budget"].startswith("given")
        for iou_type in evaluate.IOU_TYPES:
            assert subset["models"][name]["accuracy"][iou_type] == results["models"][name]["accuracy"][iou_type]


def test_given_resnet_weights_pick_their_norm_layers(mask_rcnn_checkpoint, tmp_path):
    """Finished Mask R-CNN weights are scored with the norm layers they hold: FrozenBN statistics (a pretrained
    start) or GN (the scratch recipe), whatever --mask-rcnn-weights says for training."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from yolo_mask_plugin.apps.compare.models import MASK_RCNN_CONFIG, SCRATCH_OPTS, _has_frozen_bn

    assert _has_frozen_bn(str(mask_rcnn_checkpoint))
    scratch = build_model(build_cfg(MASK_RCNN_CONFIG, [*SCRATCH_OPTS, "MODEL.DEVICE", "cpu"]))
    DetectionCheckpointer(scratch, save_dir=str(tmp_path)).save("gn")
    assert not _has_frozen_bn(str(tmp_path / "gn.pth"))


@pytest.mark.parametrize("models, weights, message", [
    (["mask_rcnn", "faster_rcnn"], {}, "--models mask_rcnn,faster_rcnn: choose among"),
    (["yolo_seg"], {"mask_rcnn": __file__}, "--weights names models that are not compared"),
    (["yolo_seg"], {"yolo_seg": "/nope.pt"}, "--weights yolo_seg= '/nope.pt' does not exist"),
])
def test_bad_model_choices_fail_before_training(models, weights, message, tmp_path):
    with pytest.raises(InvalidInputError if "exist" not in message else FileNotFoundError, match=message):
        run_compare(tmp_path / "c", models=models, weights=weights)
    assert not (tmp_path / "c" / "models").exists()


def test_unknown_pass_through_options_fail_before_training(shapes_root, tmp_path):
    with pytest.raises(InvalidInputError, match="--yolo-args.*not_a_key"):
        run_compare(tmp_path / "a", *compare_splits(shapes_root), yolo_args={"not_a_key": 1})
    with pytest.raises(KeyError, match="MODEL.NOT_A_KEY"):  # before the Ultralytics models train
        run_compare(tmp_path / "b", *compare_splits(shapes_root), budget=CompareBudget(imgsz=TEST_IMAGE_SIZE),
                    d2_opts=["MODEL.NOT_A_KEY", "1"])
    assert not (tmp_path / "a" / "models").exists() and not any((tmp_path / "b" / "models").glob("*/finished.json"))


def test_tiny_run_cross_check_agrees(tiny_run):
    """Detectron2's COCOEvaluator scores what the one evaluator scores, to float rounding, on every metric both
    define (it reports NaN for a model without a single prediction: then ours must say 0); Ultralytics' own
    validator (its own letterboxed predictions) stays within 10 AP points of ours."""
    _, results = tiny_run
    per_model = results["evaluator_cross_check"]["per_model"]
    assert any(check["predictions"] for check in per_model.values())
    for name, check in per_model.items():
        agreement = check["detectron2_agreement"]
        if check["predictions"]:
            assert agreement["metrics_compared"] >= 8 and agreement["max_abs_diff"] <= 1e-9, (name, agreement)
        else:
            assert agreement["metrics_compared"] == 0 and results["models"][name]["accuracy"]["segm"]["AP"] == 0.0
    validator = results["evaluator_cross_check"]["ultralytics_validator"]
    assert set(validator) == {"yolo_mask", "yolo_seg"}
    for name, theirs in validator.items():
        ours = results["models"][name]["accuracy"]
        assert abs(theirs["segm_mAP50_95"] - ours["segm"]["AP"]) <= 10.0, (name, theirs, ours["segm"])
        assert abs(theirs["bbox_mAP50_95"] - ours["bbox"]["AP"]) <= 10.0, (name, theirs, ours["bbox"])


def test_tiny_run_used_the_given_weights(tiny_run, mask_rcnn_checkpoint, yolo_checkpoint):
    """FREEZE_AT 2 (Detectron2's default with pretrained weights) keeps the stem as loaded: after training,
    both ResNets' stems still equal the checkpoint passed as --mask-rcnn-weights."""
    _, results = tiny_run
    given = torch.load(mask_rcnn_checkpoint, map_location="cpu", weights_only=False)["model"]
    key = "backbone.bottom_up.stem.conv1.weight"
    for name in ("mask_rcnn", "yolo_mask_two_branch"):
        trained = torch.load(results["models"][name]["train"]["weights"], map_location="cpu", weights_only=False)
        assert torch.equal(trained["model"][key], given[key]), name
    # the YOLO models train every layer, so their weights moved, but from the given ones: much closer to them
    # than to a YOLO built afresh from the yaml
    given = load_yolo(str(yolo_checkpoint)).state_dict()
    fresh = load_yolo("yolo11n.yaml", 3).state_dict()
    for name in ("yolo_mask", "yolo_seg"):
        trained = load_checkpoint(results["models"][name]["train"]["weights"])[0].float().state_dict()
        for key in ("model.0.conv.weight", "model.4.m.0.cv1.conv.weight", "model.10.m.0.attn.qkv.conv.weight"):
            to_given, to_fresh = (trained[key] - given[key]).norm(), (trained[key] - fresh[key]).norm()
            assert to_given < 0.2 * to_fresh, (name, key, to_given, to_fresh)


def test_rerun_reuses_finished_models(tiny_run, user_coco, yolo_checkpoint, mask_rcnn_checkpoint):
    """What an interrupted compare does on its next start: finished runs are reused, not retrained."""
    output, results = tiny_run
    dataset = prepare_dataset(*user_compare_splits(user_coco), output / "data")
    weights = {n: Path(m["train"]["weights"]) for n, m in results["models"].items()}
    stamps = {n: p.stat().st_mtime_ns for n, p in weights.items()}
    choice = ModelChoice(yolo_weights=str(yolo_checkpoint), mask_rcnn_weights=str(mask_rcnn_checkpoint),
                         d2_opts=["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", str(TINY_PASS_THROUGH["d2"])],
                         yolo_args={"box": TINY_PASS_THROUGH["box"]})
    again = train_models(dataset, TINY, output / "models", choice)
    assert {n: Path(m["record"]["weights"]) for n, m in again.items()} == weights
    assert {n: p.stat().st_mtime_ns for n, p in weights.items()} == stamps


def test_unfinished_run_resumes_only_with_the_same_settings(tmp_path):
    """An interrupted Detectron2 run resumes from its checkpoint; one left by another budget is cleared."""
    from yolo_mask_plugin.apps.run_record import start_run as _start

    run = tmp_path / "run"
    _start(run, {"opts": ["SOLVER.MAX_ITER", "40"]})
    (run / "last_checkpoint").write_text("model_0000019.pth")
    _start(run, {"opts": ["SOLVER.MAX_ITER", "40"]})
    assert (run / "last_checkpoint").is_file()
    _start(run, {"opts": ["SOLVER.MAX_ITER", "80"]})
    assert not (run / "last_checkpoint").exists()


@pytest.mark.parametrize("framework", ["detectron2", "ultralytics"])
def test_a_minutes_budget_stops_training_in_time(framework, small_shapes_root, tmp_path):
    """`--minutes`: Ultralytics' own `time=` (it fits its epochs to the time) and a batch-end stop, a hook stopping
    Detectron2's DefaultTrainer; both end within 10% of the budget (their clocks start once the trainer is set up
    and end with the last training step), with the final weights as the last snapshot."""
    from yolo_mask_plugin.apps.compare.training import train_detectron2, train_ultralytics_model

    minutes = 0.4
    train, _ = compare_splits(small_shapes_root)
    if framework == "ultralytics":
        data_yaml = small_shapes_root / "shapes-seg.yaml"
        args = {"epochs": 1000, "imgsz": TEST_IMAGE_SIZE, "batch": 8, "workers": 0, "device": "cpu", "val": False}
        record = train_ultralytics_model(tmp_path / "yolo", "yolo_mask", "yolo11n.yaml", None, data_yaml, args, minutes)
    else:
        from yolo_mask_plugin.d2.datasets import register_coco_dataset

        register_coco_dataset("minutes_train", train.json_file, train.image_dir)
        opts = ["DATASETS.TRAIN", "('minutes_train',)", "DATASETS.TEST", "()", "MODEL.ROI_HEADS.NUM_CLASSES", "4",
                "MODEL.DEVICE", "cpu", "MODEL.YOLO.WEIGHTS", "yolo11n.yaml", "MODEL.YOLO.FREEZE", "False",
                "SOLVER.MAX_ITER", "100000", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.CHECKPOINT_PERIOD", "10",
                "INPUT.MIN_SIZE_TRAIN", f"({TEST_IMAGE_SIZE},)", "INPUT.MAX_SIZE_TRAIN", str(TEST_IMAGE_SIZE),
                "DATALOADER.NUM_WORKERS", "0", "TEST.EVAL_PERIOD", "0"]
        record = train_detectron2(tmp_path / "d2", "yolo_mask_ultralytics.yaml", opts, minutes)
    spent = record["cost"]["wall_s"] / 60
    assert abs(spent - minutes) <= 0.1 * minutes, spent
    assert len(record["snapshots"]) >= 2 and record["snapshots"][-1]["weights"] == record["weights"]


def test_worst_boundary_crops_draw_on_read_only_images(tmp_path):
    """Images come back from the loader read-only; the crop grid draws outlines on its own copies."""
    from yolo_mask_plugin.apps.compare.report import write_worst_boundaries

    rgb = np.full((64, 64, 3), 90, np.uint8)
    rgb.flags.writeable = False
    image = rgb[:, :, ::-1]  # BGR as `load_image_bgr` returns it: a view of the read-only RGB array PIL gave
    predicted = torch.zeros(1, 64, 64, dtype=torch.bool)
    predicted[0, 12:40, 10:44] = True
    instances = Instances((64, 64), pred_masks=predicted)
    pair = {"image_index": 0, "prediction": 0, "boundary_iou": 0.5, "mask_iou": 0.8,
            "annotation": {"segmentation": [[10, 10, 40, 10, 40, 40, 10, 40]], "bbox": [10, 10, 30, 30]}}
    path = write_worst_boundaries({"yolo_mask": [pair]}, [image], {"yolo_mask": [instances]}, MODEL_LABELS,
                                  tmp_path / "worst.png")
    assert Path(path).stat().st_size > 0 and (image == 90).all()
