"""`yolo-mask compare`: train or load instance segmenters on one dataset, score them with one evaluator along their
training and at its end, time them side by side, and write the report. The models: `models.py`."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from detectron2.data import DatasetCatalog
from tqdm import tqdm

from yolo_mask_plugin.apps.compare import curves, evaluate, profile, report
from yolo_mask_plugin.apps.compare.dataset import COMPARE_VAL, CocoSplit, prepare_dataset
from yolo_mask_plugin.apps.compare.models import (
    MODEL_LABELS,
    ULTRALYTICS_MODELS,
    CompareBudget,
    ModelChoice,
    predict_spec,
    train_models,
)
from yolo_mask_plugin.apps.compare.predictors import MAX_DETECTIONS, SCORE_THRESHOLD, build_predictor
from yolo_mask_plugin.apps.latency import interleaved_latency
from yolo_mask_plugin.apps.predict import coco_results, load_image_bgr
from yolo_mask_plugin.apps.machine import machine
from yolo_mask_plugin.apps.provenance import provenance
from yolo_mask_plugin.apps.steps import Steps
from yolo_mask_plugin.core.errors import InvalidInputError
from yolo_mask_plugin.data import default_shapes_root, generate_shapes_dataset

WORST_BOUNDARIES = 4  # crops per model in worst_boundaries.png


def default_dataset() -> tuple[CocoSplit, CocoSplit]:
    """The embedded shapes dataset (generated on first use), as COCO train/val splits.

    Returns:
        (tuple[CocoSplit, CocoSplit]): the train and the val split.
    """
    root = generate_shapes_dataset(Path(default_shapes_root()).absolute())
    return tuple(CocoSplit(root / "annotations" / f"instances_{s}.json", root / "images" / s) for s in ("train", "val"))


def predict_all(predictors: dict, images: list) -> dict[str, list]:
    """Every model's `Instances` for every image, in inference mode.

    Args:
        predictors (dict): model name -> predictor (`predictors.build_predictor`).
        images (list): BGR images at their original size.

    Returns:
        (dict[str, list]): model name -> one `Instances` per image.
    """
    with torch.inference_mode():
        return {name: predict(p, images, name) for name, p in predictors.items()}


def predict(predictor, images: list, name: str) -> list:
    """One model's `Instances` for every image, with a progress bar named `name`.

    Args:
        predictor: a predictor of `predictors.build_predictor` (BGR image -> `Instances` on the CPU).
        images (list): BGR images at their original size.
        name (str): the model's name, shown on the progress bar.

    Returns:
        (list): one `Instances` per image.
    """
    return [predictor(image) for image in tqdm(images, desc=f"[compare] predict {name}", unit="img")]


def ultralytics_validator(predictor, data_yaml: Path, output_dir: Path, name: str) -> dict[str, float]:
    """Ultralytics' validator on an Ultralytics model's own predictions (`evaluate.ultralytics_val_metrics`:
    native-resolution masks) at the comparison's score threshold and detection cap.

    Args:
        predictor (UltralyticsPredictor): the model, its input size, score threshold and device.
        data_yaml (Path): the YOLO-seg dataset yaml of the comparison.
        output_dir (Path): Ultralytics' `project` folder for the validation run.
        name (str): the validation run's folder name.

    Returns:
        (dict[str, float]): segm_mAP50_95, segm_mAP50, bbox_mAP50_95, bbox_mAP50 in percent.
    """
    metrics = evaluate.ultralytics_val_metrics(
        predictor.yolo, data_yaml, predictor.imgsz, output_dir, name, conf=predictor.score_threshold,
        max_det=MAX_DETECTIONS, device=predictor.device,
    )
    return {key: 100 * value for key, value in metrics.items()}


def val_coco_results(predictor, dataset, name: str) -> list[dict]:
    """One model's COCO results on every val image of the registered comparison split, at its original size.

    Args:
        predictor: a predictor of `predictors.build_predictor`.
        dataset (CompareDataset): the prepared dataset (`prepare_dataset`), whose category ids the results use.
        name (str): the model's name, for the progress bar.

    Returns:
        (list[dict]): COCO results (XYWH boxes, RLE masks, scores) for pycocotools' `loadRes`.

    Examples:
        >>> results = val_coco_results(build_predictor(spec), dataset, "yolo_mask")
        >>> evaluate.coco_metrics(evaluate.load_ground_truth(str(dataset.val.json_file)), results)
    """
    records = DatasetCatalog.get(COMPARE_VAL)
    images = [load_image_bgr(Path(r["file_name"])) for r in records]
    with torch.inference_mode():
        return _coco_results(dataset, [r["image_id"] for r in records], predict(predictor, images, name))


def _coco_results(dataset, image_ids: list[int], predictions: list) -> list[dict]:
    return [r for image_id, p in zip(image_ids, predictions) for r in coco_results(p, image_id, dataset.category_ids)]


def score_predictions(dataset, image_ids: list[int], predictions: dict[str, list]) -> tuple[dict, dict]:
    """Score every model's predictions with the one evaluator and hold them against the two cross-checks.

    Args:
        dataset (CompareDataset): the prepared dataset.
        image_ids (list[int]): the val image ids, in the order of each model's predictions.
        predictions (dict[str, list]): model name -> one `Instances` per image.

    Returns:
        (tuple[dict, dict]): per model, COCOeval bbox + segm and Boundary AP ("boundary"); and per model the
            cross-check: prediction count, Detectron2's COCOEvaluator and its agreement with ours, Ultralytics' AP.
    """
    gt = evaluate.load_ground_truth(str(dataset.val.json_file))
    accuracy, cross = {}, {}
    for name, preds in predictions.items():
        results = _coco_results(dataset, image_ids, preds)
        accuracy[name] = {**evaluate.coco_metrics(gt, results),
                          "boundary": evaluate.boundary_metrics(str(dataset.val.json_file), results)}
        d2 = evaluate.detectron2_coco_evaluator(COMPARE_VAL, image_ids, preds)
        cross[name] = {
            "predictions": sum(len(p) for p in preds),
            "detectron2_coco_evaluator": d2, "detectron2_agreement": _agreement(accuracy[name], d2),
            "ultralytics_ap": evaluate.ultralytics_ap(gt, image_ids, preds, dataset.category_ids),
        }
    return accuracy, cross


def _agreement(ours: dict, theirs: dict) -> dict:
    """Largest absolute difference over the metrics both report (Detectron2 reports NaN, not 0, for a model
    without any prediction, and both leave out area ranges without ground truth)."""
    pairs = [(ours[t][m], theirs.get(t, {}).get(m)) for t in evaluate.IOU_TYPES for m in evaluate.METRICS]
    both = [(a, b) for a, b in pairs if a is not None and b is not None]
    return {"max_abs_diff": max((abs(a - b) for a, b in both), default=None), "metrics_compared": len(both)}


def score_curves(dataset, entries: dict, accuracy: dict, images: list, image_ids: list[int],
                 score_threshold: float) -> dict[str, list[dict]]:
    """Per trained model, segm and bbox AP at its snapshots against training minutes (`curves.py`).

    Args:
        dataset (CompareDataset): the prepared dataset.
        entries (dict): `models.train_models`' entries (their run records hold the snapshots).
        accuracy (dict): model name -> final COCOeval scores (the last point of each curve).
        images (list): the val images (BGR), in `image_ids` order.
        image_ids (list[int]): their ids.
        score_threshold (float): the predictors' score threshold.

    Returns:
        (dict[str, list[dict]]): model name -> curve points (`curves.curve`); models without snapshots get none.
    """
    gt = evaluate.load_ground_truth(str(dataset.val.json_file))
    key = f"{dataset.val.json_file}|score>={score_threshold}"

    def score(name: str):
        def of(weights: str) -> dict:
            with torch.inference_mode():
                predictions = predict(build_predictor(predict_spec(entries[name], weights, score_threshold)), images,
                                      f"{name} @ {Path(weights).name}")
            metrics = evaluate.coco_metrics(gt, _coco_results(dataset, image_ids, predictions))
            return {t: metrics[t]["AP"] for t in evaluate.IOU_TYPES}
        return of

    return {
        name: curves.curve(Path(entry["record"]["weights"]).parent, entry["record"]["snapshots"],
                           {t: accuracy[name][t]["AP"] for t in evaluate.IOU_TYPES}, score(name), key)
        for name, entry in entries.items() if entry["record"]["snapshots"]
    }


CROSS_CHECK_EXPLANATION = [
    "Why they agree or differ: Detectron2's COCOEvaluator converts the same `Instances` with the same "
    "`instances_to_coco_json` and runs the same pycocotools COCOeval (its C++ fast path is not built here), "
    "so any difference beyond float rounding would be a bug in the harness. Ultralytics' AP math differs by "
    "design: it integrates its own precision envelope over 101 recall points (`compute_ap`; the envelope ends "
    "at recall 1 with precision 0, so a perfect model scores 99.5, not 100), matches "
    "predictions to ground truth by IoU alone per threshold (COCOeval matches in score order and ignores "
    "crowd regions), has no 100-detection cap per image, and averages only over classes present in the "
    "ground truth. Ultralytics' own validator adds its own predictions: letterboxed input, masks compared at "
    "the network input size instead of the original image, polygons rasterised by Ultralytics.",
]


def run_compare(
    output_dir: str | Path = "output/compare",
    train: CocoSplit | None = None,
    val: CocoSplit | None = None,
    budget: CompareBudget = CompareBudget(),
    yolo: str = "yolo11n",
    yolo_weights: str | None = None,
    mask_rcnn_weights: str | None = None,
    models: tuple[str, ...] | list[str] = tuple(MODEL_LABELS),
    weights: dict[str, str] | None = None,
    d2_opts: tuple[str, ...] | list[str] = (),
    yolo_args: dict | None = None,
    score_threshold: float = SCORE_THRESHOLD,
    speed_images: int = 20,
    warmup_images: int = 3,
    grid_images: int = 4,
) -> dict:
    """Run the whole comparison and write its report; bad input fails before any training.

    Args:
        output_dir (str | Path): where the data, the models and the report go.
        train (CocoSplit | None): the training split; None with `val` None: the embedded shapes dataset.
        val (CocoSplit | None): the validation split.
        budget (CompareBudget): what every model may spend, its seed and workers.
        yolo (str): the YOLO size of the Ultralytics models ("yolo11n": yolo11n.yaml, yolo11n-seg.yaml).
        yolo_weights (str | None): what the YOLOs start from (None: from scratch).
        mask_rcnn_weights (str | None): what the ResNets start from (None: from scratch).
        models (tuple[str, ...]): a subset of `MODEL_LABELS`.
        weights (dict | None): finished weights per model, scored without training.
        d2_opts (list[str]): KEY VALUE ... passed to every Detectron2 model after the comparison's own settings.
        yolo_args (dict | None): {key: value} passed to every Ultralytics model after the comparison's own settings.
        score_threshold (float): the predictors' score threshold.
        speed_images (int): val images timed per model.
        warmup_images (int): images each model runs before timing.
        grid_images (int): val images in image_grid.png.

    Returns:
        (dict): what results.json holds.

    Examples:
        >>> from yolo_mask_plugin.apps.compare import CompareBudget, run_compare
        >>> results = run_compare("output/compare", budget=CompareBudget(yolo_epochs=5, d2_iters=100))
    """
    output_dir = Path(output_dir).absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    choice = ModelChoice(models=tuple(models), yolo=yolo, yolo_weights=yolo_weights, mask_rcnn_weights=mask_rcnn_weights,
                         weights=dict(weights or {}), d2_opts=tuple(d2_opts), yolo_args=dict(yolo_args or {}))
    choice.check()
    if speed_images < 1:
        raise InvalidInputError(f"speed_images must be at least 1, got {speed_images}")
    if len(d2_opts) % 2:
        raise InvalidInputError(f"--d2-opts needs KEY VALUE pairs, got an odd number of items: {list(d2_opts)}")
    steps = Steps("compare", total=7)

    steps.begin("data", "check the dataset, register it in Detectron2, convert it to YOLO-seg")
    if (train is None) != (val is None):
        raise InvalidInputError("give both the train and the val split (COCO json + image folder), or neither")
    if train is None:
        train, val = default_dataset()
    dataset = prepare_dataset(train, val, output_dir / "data")
    records = DatasetCatalog.get(COMPARE_VAL)

    steps.begin("train", "train or reuse each model (finished runs are reused)")
    entries = train_models(dataset, budget, output_dir / "models", choice)
    specs = {name: predict_spec(e, e["record"]["weights"], score_threshold) for name, e in entries.items()}
    predictors = {name: build_predictor(spec) for name, spec in specs.items()}
    params = {name: profile.count_parameters(p.model) for name, p in predictors.items()}  # before any fusing

    steps.begin("evaluate", f"predict the {len(records)} val images with every model; COCOeval, Boundary AP, "
                            "cross-checks")
    images = [load_image_bgr(Path(r["file_name"])) for r in records]
    image_ids = [r["image_id"] for r in records]
    predictions = predict_all(predictors, images)
    accuracy, cross = score_predictions(dataset, image_ids, predictions)
    validator = {
        name: ultralytics_validator(predictors[name], dataset.yolo_data_yaml, output_dir / "ultralytics_val", name)
        for name in entries if name in ULTRALYTICS_MODELS
    }

    steps.begin("curves", "score each model at snapshots of its training (accuracy against training minutes)")
    model_curves = score_curves(dataset, entries, accuracy, images, image_ids, score_threshold)

    steps.begin("speed", f"latency on {speed_images} val images, models interleaved, {torch.get_num_threads()} threads")
    speed_set = [images[i % len(images)] for i in range(speed_images)]
    speed = interleaved_latency(predictors, speed_set, warmup=warmup_images)
    reference = "mask_rcnn" if "mask_rcnn" in speed else next(iter(speed))
    for name in speed:
        speed[name]["ratio_to_reference"] = speed[name]["median_ms"] / speed[reference]["median_ms"]

    steps.begin("size", "FLOPs (fvcore), peak memory (each model in a fresh process)")
    flops = {name: p.count_flops(images[0]) for name, p in tqdm(predictors.items(), desc="[compare] FLOPs")}
    memory = profile.peak_memories(specs, Path(records[0]["file_name"]), torch.get_num_threads())

    steps.begin("report", "report.md, results.json, charts, image grids")
    models_out = {
        name: {
            "label": MODEL_LABELS[name], "recipe": e["recipe"], "spec": specs[name],
            "train": {"budget": e["budget"], **(e["record"]["cost"] or {}), "weights": e["record"]["weights"]},
            "curve": model_curves.get(name, []), "accuracy": accuracy[name], "speed": speed[name],
            "params": params[name], "flops": flops[name], "memory": memory[name],
        }
        for name, e in entries.items()
    }
    results = {
        "dataset": dataset.describe(), "budget": asdict(budget), "models": models_out, "speed_reference": reference,
        "score_threshold": score_threshold,
        "equal_minutes": {axis: curves.equal_minutes(model_curves, axis) for axis in ("wall_min", "cpu_min")},
        "evaluator_cross_check": {"per_model": cross, "ultralytics_validator": validator,
                                  "explanation": CROSS_CHECK_EXPLANATION},
        "machine": {**machine(), "torch_threads": torch.get_num_threads()},
        "provenance": provenance([budget.seed]),
        "memory_method": profile.MEMORY_METHOD,
        "how_run": _how_run(budget, choice, score_threshold, speed_images, warmup_images),
        "fairness_rules": _fairness_rules(budget),
    }
    report.write_results(results, output_dir)  # the numbers first: a failing figure must not lose them
    grid_records = records[:grid_images]
    grid = report.write_image_grid(
        grid_records, [images[i][:, :, ::-1] for i in range(len(grid_records))],
        {n: p[: len(grid_records)] for n, p in predictions.items()}, MODEL_LABELS, COMPARE_VAL,
        output_dir / "image_grid.png",
    )
    gt = evaluate.load_ground_truth(str(dataset.val.json_file))
    worst = {name: evaluate.worst_boundaries(gt, image_ids, p, dataset.category_ids, WORST_BOUNDARIES)
             for name, p in predictions.items()}
    for name, pairs in worst.items():
        models_out[name]["worst_boundaries"] = [
            {"image_id": image_ids[p["image_index"]], "annotation_id": p["annotation"]["id"],
             "boundary_iou": p["boundary_iou"], "mask_iou": p["mask_iou"]} for p in pairs
        ]
    crops = report.write_worst_boundaries(worst, images, predictions, MODEL_LABELS, output_dir / "worst_boundaries.png")
    results["wall_time_s"] = steps.done()
    charts = [report.write_scatter(results, output_dir / "speed_accuracy.png"),
              report.write_curves(results, output_dir / "accuracy_vs_minutes.png")]
    paths = report.write_report(results, output_dir)
    print(f"\n[compare] done in {results['wall_time_s']['total'] / 60:.1f} min: {paths['report']}, {paths['results']}, "
          f"{', '.join(str(c) for c in charts)}, {grid}, {crops}")
    print(report.render_markdown(results).split("## Evaluator cross-check")[0])
    return results


def _how_run(budget: CompareBudget, choice: ModelChoice, score_threshold: float, speed_images: int,
             warmup_images: int) -> list[str]:
    minutes = f"; at most {budget.minutes:g} min of training each" if budget.minutes is not None else ""
    return [
        f"Models: {', '.join(choice.selected())}" + (f"; given finished weights: {choice.weights}" if choice.weights
                                                     else "") + ".",
        f"Training budget: Ultralytics models {budget.yolo_epochs} epochs at batch {budget.yolo_batch}; Detectron2 "
        f"models {budget.d2_iters} iterations at batch {budget.d2_batch}{minutes}; the minutes each took are in the "
        "table (wall clock, and CPU time of the process and its data-loader workers).",
        f"Seeds: {budget.seed} everywhere (Ultralytics `seed`, Detectron2 `SEED`); data-loader workers {budget.workers}.",
        f"YOLO size {choice.yolo}; YOLO weights: {choice.yolo_weights or 'none, built from the yaml'}; ResNet weights: "
        f"{choice.mask_rcnn_weights or 'none (from scratch)'}; passed through: Detectron2 opts "
        f"{list(choice.d2_opts) or 'none'}, Ultralytics args {choice.yolo_args or 'none'}.",
        f"Accuracy: every val image at its original size through each model's own predictor (score >= "
        f"{score_threshold}, at most {MAX_DETECTIONS} detections), masks pasted at the original size, one "
        f"pycocotools COCOeval for all; Boundary AP by faster-coco-eval (dilation ratio "
        f"{evaluate.BOUNDARY_DILATION_RATIO}); curves: the same at up to {curves.CURVE_POINTS} snapshots of each run.",
        f"Speed: {speed_images} val images, {warmup_images} warm-up images per model first, models interleaved "
        "image by image in one process, end-to-end predictor call (resize, network, NMS, mask paste).",
        "Command: `yolo-mask compare` (see README); everything is reproducible from results.json's recipes.",
    ]


def _fairness_rules(budget) -> list[str]:
    return [
        "Same training images and masks for all: Ultralytics reads the YOLO-seg conversion of the same COCO json, "
        "holes and separate parts kept (YOLO-mask rasterises them back exactly; stock YOLO-seg's rasteriser draws "
        "1-px bridges between the parts of split instances); crowd regions train no model and COCOeval ignores "
        "detections on them.",
        "Same augmentation family: resize to the input size + horizontal flip (Detectron2's default); "
        "Ultralytics' colour, translate, scale and mosaic augmentation is switched off.",
        f"Same input size: {budget.imgsz} px long side (Detectron2: MIN/MAX_SIZE_TEST; Ultralytics: imgsz).",
        "Same evaluation: one evaluator, same images at original resolution, same score threshold and "
        "detection cap; each model keeps its framework's own NMS IoU.",
        "Nothing is tuned or selected on the val split: Ultralytics' last.pt (not best.pt), Detectron2's "
        "model_final.pth. The YOLO optimiser settings (AdamW, lr0 0.005, 1 warm-up epoch) are the demo's, "
        "picked earlier in this project while looking at this dataset's val AP - a caveat in YOLO's favour; "
        "Detectron2 uses its config's BASE_LR scaled linearly to the batch size, warm-up 10% of the budget.",
        "The single-pass YOLO-mask is trained twice, the same model by two trainers: Ultralytics' trainer and YOLO "
        "recipe (yolo_mask), and Detectron2's DefaultTrainer with Mask R-CNN's loader, augmentation and schedule "
        "(yolo_mask_d2: YOLO learns on its own detection losses, returned by the proposal generator as RPN's are).",
        "Models without pretrained weights start from scratch: no weights can be downloaded here.",
        "Speed: same process, same thread count, same images, interleaved; absolute ms hold for this machine only.",
    ]
