"""`yolo-mask compare`: train or load five instance segmenters on one dataset, score them with one evaluator,
time them side by side, and write the report.

Models (names used in results.json):
  mask_rcnn             Detectron2's Mask R-CNN R50-FPN, its own config;
  yolo_mask_two_branch  YOLO boxes + a ResNet-50-FPN + the FCN mask head (the seed's design, Detectron2);
  yolo_mask             the shared single-pass YOLO-mask trained by Ultralytics' trainer (YOLOMaskTrainer);
  yolo_mask_d2          the same single-pass model trained whole by Detectron2's DefaultTrainer, with Mask R-CNN's
                        loader, augmentation and schedule (YOLO learns on its detection losses, as RPN does);
  yolo_seg              stock Ultralytics YOLO-seg of the same YOLO size.
The two-branch model uses the single-pass model's YOLO as its box source (frozen), so it needs no detector
of its own and the two differ only in what the mask head pools.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import detectron2
import fvcore
import torch
import ultralytics
from detectron2.data import DatasetCatalog
from tqdm import tqdm

from yolo_mask_plugin.apps.compare import evaluate, profile, report
from yolo_mask_plugin.apps.compare.dataset import COMPARE_TRAIN, COMPARE_VAL, CocoSplit, prepare_dataset
from yolo_mask_plugin.apps.compare.predictors import MAX_DETECTIONS, SCORE_THRESHOLD, build_predictor
from yolo_mask_plugin.apps.compare.training import train_detectron2, train_ultralytics_model
from yolo_mask_plugin.apps.demo import YOLO_TRAIN_ARGS
from yolo_mask_plugin.apps.latency import interleaved_latency
from yolo_mask_plugin.apps.predict import load_image_bgr
from yolo_mask_plugin.apps.steps import Steps
from yolo_mask_plugin.core.errors import InputNotFoundError, InvalidInputError
from yolo_mask_plugin.core.threads import kept_torch_threads
from yolo_mask_plugin.d2.checkpoint import convert_ultralytics_checkpoint
from yolo_mask_plugin.data import default_shapes_root, generate_shapes_dataset

MODEL_LABELS = {
    "mask_rcnn": "Mask R-CNN R50-FPN (Detectron2)",
    "yolo_mask_two_branch": "YOLO-mask two-branch, YOLO + R50-FPN (Detectron2)",
    "yolo_mask": "YOLO-mask single-pass (Ultralytics)",
    "yolo_mask_d2": "YOLO-mask single-pass (Detectron2)",
    "yolo_seg": "YOLO-seg (Ultralytics)",
}
MASK_RCNN_CONFIG = "detectron2/mask_rcnn_R_50_FPN_3x.yaml"  # Detectron2's file, as in its model zoo
TWO_BRANCH_CONFIG = "yolo_mask_two_branch_R_50_FPN.yaml"
SINGLE_PASS_CONFIG = "yolo_mask_ultralytics.yaml"  # yolo_mask's model (64-wide mask head on P3-P5) in Detectron2
# No ImageNet weights can be downloaded here: without --mask-rcnn-weights both ResNets start from scratch with
# Detectron2's own scratch recipe (configs/Misc/scratch_mask_rcnn_R_50_FPN_3x_gn.yaml: GN, nothing frozen).
SCRATCH_OPTS = [
    "MODEL.WEIGHTS", "", "MODEL.BACKBONE.FREEZE_AT", "0", "MODEL.RESNETS.NORM", "GN",
    "MODEL.RESNETS.STRIDE_IN_1X1", "False", "MODEL.FPN.NORM", "GN",
]
D2_REFERENCE_BATCH = 16  # Detectron2's configs give BASE_LR for 16 images per batch; scaled linearly
# The demo's YOLO optimiser settings, with Detectron2's default augmentation family (resize + horizontal flip)
# instead of Ultralytics' colour / translate / scale jitter, so every model sees the same kind of images.
YOLO_RECIPE = {
    **{k: YOLO_TRAIN_ARGS[k] for k in ("optimizer", "lr0", "warmup_epochs", "mosaic", "val")},
    "hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0, "translate": 0.0, "scale": 0.0, "fliplr": 0.5,
}


@dataclass(frozen=True)
class CompareBudget:
    """What every model may spend. The default fits the embedded dataset in 30 minutes on 2 CPU cores."""

    imgsz: int = 192
    yolo_epochs: int = 8
    yolo_batch: int = 8
    d2_iters: int = 40
    d2_batch: int = 4
    seed: int = 0
    workers: int = 2


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "description": f"{gpu or cpu}, {os.cpu_count()} CPU cores", "cpu": cpu, "cpu_cores": os.cpu_count(),
        "gpu": gpu, "torch_threads": torch.get_num_threads(), "device": _device(), "platform": platform.platform(),
    }


def _d2_opts(budget: CompareBudget, num_classes: int, mask_format: str, base_lr: float) -> list[str]:
    iters = budget.d2_iters
    steps = sorted({s for s in (iters * 2 // 3, iters * 8 // 9) if 0 < s < iters})  # 3x's (2/3, 8/9) decays
    return [
        "DATASETS.TRAIN", f"('{COMPARE_TRAIN}',)", "DATASETS.TEST", "()",
        "MODEL.ROI_HEADS.NUM_CLASSES", str(num_classes), "MODEL.DEVICE", _device(), "INPUT.MASK_FORMAT", mask_format,
        "INPUT.MIN_SIZE_TRAIN", f"({budget.imgsz},)", "INPUT.MAX_SIZE_TRAIN", str(budget.imgsz),
        "INPUT.MIN_SIZE_TEST", str(budget.imgsz), "INPUT.MAX_SIZE_TEST", str(budget.imgsz),
        "SOLVER.MAX_ITER", str(iters), "SOLVER.IMS_PER_BATCH", str(budget.d2_batch),
        "SOLVER.BASE_LR", f"{base_lr * budget.d2_batch / D2_REFERENCE_BATCH:g}",
        "SOLVER.STEPS", str(tuple(steps)), "SOLVER.WARMUP_ITERS", str(max(iters // 10, 1)),
        "SOLVER.CHECKPOINT_PERIOD", str(max(iters // 4, 1)), "SEED", str(budget.seed),
        "DATALOADER.NUM_WORKERS", str(budget.workers), "TEST.DETECTIONS_PER_IMAGE", str(MAX_DETECTIONS),
        "TEST.EVAL_PERIOD", "0",
    ]


def _predict_opts(train_opts: list[str], weights: str) -> list[str]:
    return [*train_opts, "MODEL.WEIGHTS", weights, "DATASETS.TEST", f"('{COMPARE_VAL}',)"]


def default_dataset() -> tuple[CocoSplit, CocoSplit]:
    """The embedded shapes dataset (generated on first use), as COCO train/val splits."""
    root = generate_shapes_dataset(Path(default_shapes_root()).absolute())
    return tuple(CocoSplit(root / "annotations" / f"instances_{s}.json", root / "images" / s) for s in ("train", "val"))


def _ultralytics_entry(models_dir: Path, family: str, model_file: str, init: str | None, data_yaml: Path,
                       args: dict, budget_text: str, recipe: str) -> dict:
    print(f"[compare] training {MODEL_LABELS[family]} ({budget_text})", flush=True)
    record = train_ultralytics_model(models_dir / family, family, model_file, init, data_yaml, args)
    spec = {"framework": "ultralytics", "weights": record["weights"], "family": family, "imgsz": args["imgsz"],
            "device": args["device"]}
    return {"record": record, "budget": budget_text, "spec": spec, "recipe": recipe}


def _detectron2_entry(models_dir: Path, name: str, config_file: str, opts: list[str], budget_text: str,
                      recipe: str) -> dict:
    print(f"[compare] training {MODEL_LABELS[name]} ({budget_text})", flush=True)
    record = train_detectron2(models_dir / name, config_file, opts)
    spec = {"framework": "detectron2", "config_file": config_file, "opts": _predict_opts(opts, record["weights"])}
    return {"record": record, "budget": budget_text, "spec": spec, "recipe": f"{recipe}; opts {' '.join(opts)}"}


def train_models(
    dataset, budget: CompareBudget, models_dir: Path, yolo: str, yolo_weights: str | None,
    mask_rcnn_weights: str | None,
) -> dict[str, dict]:
    """Train (or reuse) every model; per model its predictor spec, recipe text and training record."""
    yolo_args = {
        **YOLO_RECIPE, "epochs": budget.yolo_epochs, "imgsz": budget.imgsz, "batch": budget.yolo_batch,
        "workers": budget.workers, "seed": budget.seed, "device": _device(),
    }
    yolo_init = str(Path(yolo_weights).absolute()) if yolo_weights else None
    yolo_text = f"initialised from {yolo_init}" if yolo_init else "from scratch"
    epochs_text = f"{budget.yolo_epochs} epochs x {dataset.num_train_images} images, batch {budget.yolo_batch}"
    out = {
        "yolo_mask": _ultralytics_entry(
            models_dir, "yolo_mask", f"{yolo}.yaml", yolo_init, dataset.yolo_data_yaml, yolo_args, epochs_text,
            f"{yolo}.yaml + RoIAlign FCN mask head (64-wide, P3-P5), YOLOMaskTrainer, {yolo_text}; "
            f"Ultralytics args {yolo_args}",
        ),
        "yolo_seg": _ultralytics_entry(
            models_dir, "yolo_seg", f"{yolo}-seg.yaml", yolo_init, dataset.yolo_data_yaml, yolo_args, epochs_text,
            f"{yolo}-seg.yaml, Ultralytics' SegmentationTrainer, {yolo_text}; same Ultralytics args",
        ),
    }
    init_opts = ["MODEL.WEIGHTS", str(Path(mask_rcnn_weights).absolute())] if mask_rcnn_weights else SCRATCH_OPTS
    init_text = f"initialised from {mask_rcnn_weights}" if mask_rcnn_weights else "ResNet from scratch (GN recipe)"
    iters_text = f"{budget.d2_iters} iterations x {budget.d2_batch} images"
    mask_rcnn_lr = 0.02  # mask_rcnn_R_50_FPN_3x's BASE_LR (Base-RCNN-FPN.yaml), for 16 images per batch
    schedule_opts = _d2_opts(budget, len(dataset.classes), dataset.mask_format, mask_rcnn_lr)
    d2_opts = [*init_opts, *schedule_opts]
    out["mask_rcnn"] = _detectron2_entry(
        models_dir, "mask_rcnn", MASK_RCNN_CONFIG, d2_opts, iters_text,
        f"configs/{MASK_RCNN_CONFIG} (Detectron2's file), {init_text}",
    )
    yolo_opts = [
        "MODEL.YOLO.WEIGHTS", out["yolo_mask"]["record"]["weights"], "MODEL.YOLO.IMAGE_SIZE", str(budget.imgsz),
        "MODEL.YOLO.CONF_THRESH_TEST", str(SCORE_THRESHOLD),
    ]
    out["yolo_mask_two_branch"] = _detectron2_entry(
        models_dir, "yolo_mask_two_branch", TWO_BRANCH_CONFIG, [*d2_opts, *yolo_opts],
        f"{iters_text} (+ the yolo_mask YOLO)",
        f"configs/{TWO_BRANCH_CONFIG}, {init_text}, YOLO boxes from yolo_mask's checkpoint (frozen)",
    )
    # YOLO built from its yaml for the dataset's classes; given weights load as Detectron2 loads a checkpoint with
    # another head (every tensor of the same name and shape), converted from Ultralytics' names first
    yolo_init_opts = ["MODEL.WEIGHTS", ""]
    if yolo_init:
        yolo_init_opts[1] = str(convert_ultralytics_checkpoint(yolo_init, models_dir / "yolo_weights_d2.pth"))
    out["yolo_mask_d2"] = _detectron2_entry(
        models_dir, "yolo_mask_d2", SINGLE_PASS_CONFIG,
        [*yolo_init_opts, *schedule_opts, "MODEL.YOLO.WEIGHTS", f"{yolo}.yaml", "MODEL.YOLO.FREEZE", "False",
         "MODEL.YOLO.CONF_THRESH_TEST", str(SCORE_THRESHOLD)],
        iters_text,
        f"configs/{SINGLE_PASS_CONFIG}: yolo_mask's model ({yolo}.yaml + the 64-wide P3-P5 mask head), trained whole "
        f"by Detectron2 with Mask R-CNN's schedule, YOLO on its detection losses (MODEL.YOLO.FREEZE False), "
        f"{yolo_text}",
    )
    return {name: out[name] for name in MODEL_LABELS}


def predict_all(predictors: dict, images: list) -> dict[str, list]:
    """Every model's `Instances` for every image."""
    with torch.inference_mode():
        return {
            name: [p(image) for image in tqdm(images, desc=f"[compare] predict {name}", unit="img")]
            for name, p in predictors.items()
        }


def ultralytics_validator(predictor, data_yaml: Path, output_dir: Path, name: str) -> dict:
    """Ultralytics' validator on its own predictions: native-resolution masks (save_txt), our threshold."""
    with kept_torch_threads():  # Ultralytics' CPU validation would leave cpu_count - 1 threads
        metrics = predictor.yolo.val(
            data=str(data_yaml), imgsz=predictor.imgsz, batch=8, conf=SCORE_THRESHOLD, max_det=MAX_DETECTIONS,
            device=predictor.device, plots=False, save_txt=True, project=str(output_dir), name=name, exist_ok=True,
            verbose=False,
        )
    r = metrics.results_dict
    return {
        "segm_mAP50_95": 100 * r["metrics/mAP50-95(M)"], "segm_mAP50": 100 * r["metrics/mAP50(M)"],
        "bbox_mAP50_95": 100 * r["metrics/mAP50-95(B)"], "bbox_mAP50": 100 * r["metrics/mAP50(B)"],
    }


def score_predictions(dataset, image_ids: list[int], predictions: dict[str, list]) -> tuple[dict, dict]:
    """Per model: COCOeval bbox + segm (the one evaluator), and the same predictions through Detectron2's
    COCOEvaluator and Ultralytics' AP math."""
    gt = evaluate.load_ground_truth(str(dataset.val.json_file))
    accuracy, cross = {}, {}
    for name, preds in predictions.items():
        results = [
            r for image_id, p in zip(image_ids, preds)
            for r in evaluate.to_coco_results(p, image_id, dataset.category_ids)
        ]
        accuracy[name] = evaluate.coco_metrics(gt, results)
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
    speed_images: int = 20,
    warmup_images: int = 3,
    grid_images: int = 4,
) -> dict:
    """The whole comparison; returns what `results.json` holds. Bad input fails before any training."""
    output_dir = Path(output_dir).absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    for path, flag in ((yolo_weights, "--yolo-weights"), (mask_rcnn_weights, "--mask-rcnn-weights")):
        if path and not Path(path).is_file():
            raise InputNotFoundError(f"{flag} {path!r} does not exist")
    if speed_images < 1:
        raise InvalidInputError(f"speed_images must be at least 1, got {speed_images}")
    steps = Steps("compare", total=6)

    steps.begin("data", "check the dataset, register it in Detectron2, convert it to YOLO-seg")
    if (train is None) != (val is None):
        raise InvalidInputError("give both the train and the val split (COCO json + image folder), or neither")
    if train is None:
        train, val = default_dataset()
    dataset = prepare_dataset(train, val, output_dir / "data")
    records = DatasetCatalog.get(COMPARE_VAL)

    steps.begin("train", "train or reuse each model (finished runs are reused)")
    trained = train_models(dataset, budget, output_dir / "models", yolo, yolo_weights, mask_rcnn_weights)
    predictors = {name: build_predictor(m["spec"]) for name, m in trained.items()}
    params = {name: profile.count_parameters(p.model) for name, p in predictors.items()}  # before any fusing

    steps.begin("evaluate", f"predict the {len(records)} val images with every model; COCOeval + cross-checks")
    images = [load_image_bgr(Path(r["file_name"])) for r in records]
    image_ids = [r["image_id"] for r in records]
    predictions = predict_all(predictors, images)
    accuracy, cross = score_predictions(dataset, image_ids, predictions)
    validator = {
        name: ultralytics_validator(predictors[name], dataset.yolo_data_yaml, output_dir / "ultralytics_val", name)
        for name in ("yolo_mask", "yolo_seg")
    }

    steps.begin("speed", f"latency on {speed_images} val images, models interleaved, {torch.get_num_threads()} threads")
    speed_set = [images[i % len(images)] for i in range(speed_images)]
    speed = interleaved_latency(predictors, speed_set, warmup=warmup_images)
    reference = "mask_rcnn"
    for name in speed:
        speed[name]["ratio_to_reference"] = speed[name]["median_ms"] / speed[reference]["median_ms"]

    steps.begin("size", "FLOPs (fvcore), peak memory (each model in a fresh process)")
    flops = {name: p.count_flops(images[0]) for name, p in tqdm(predictors.items(), desc="[compare] FLOPs")}
    memory = {
        name: profile.peak_memory(trained[name]["spec"], Path(records[0]["file_name"]), torch.get_num_threads())
        for name in tqdm(trained, desc="[compare] peak memory")
    }

    steps.begin("report", "report.md, results.json, speed/accuracy scatter, image grid")
    models = {
        name: {
            "label": MODEL_LABELS[name], "recipe": m["recipe"], "spec": m["spec"],
            "train": {"budget": m["budget"], **m["record"]["cost"], "weights": m["record"]["weights"]},
            "accuracy": accuracy[name], "speed": speed[name], "params": params[name], "flops": flops[name],
            "memory": memory[name],
        }
        for name, m in trained.items()
    }
    versions = {"torch": torch.__version__, "detectron2": detectron2.__version__, "ultralytics": ultralytics.__version__,
                "fvcore": getattr(fvcore, "__version__", "?"), "pycocotools": _distribution_version("pycocotools"),
                "python": platform.python_version()}
    results = {
        "dataset": dataset.describe(), "budget": asdict(budget), "models": models, "speed_reference": reference,
        "evaluator_cross_check": {"per_model": cross, "ultralytics_validator": validator,
                                  "explanation": CROSS_CHECK_EXPLANATION},
        "machine": _machine(), "versions": versions,
        "memory_method": profile.MEMORY_METHOD,
        "how_run": _how_run(budget, speed_images, warmup_images, yolo, yolo_weights, mask_rcnn_weights),
        "fairness_rules": _fairness_rules(budget),
    }
    grid_records = records[:grid_images]
    grid = report.write_image_grid(
        grid_records, [images[i][:, :, ::-1] for i in range(len(grid_records))],
        {n: p[: len(grid_records)] for n, p in predictions.items()}, MODEL_LABELS, COMPARE_VAL,
        output_dir / "image_grid.png",
    )
    results["wall_time_s"] = steps.done()
    scatter = report.write_scatter(results, output_dir / "speed_accuracy.png")
    paths = report.write_report(results, output_dir)
    print(f"\n[compare] done in {results['wall_time_s']['total'] / 60:.1f} min: {paths['report']}, {paths['results']}, "
          f"{scatter}, {grid}")
    print(report.render_markdown(results).split("## Evaluator cross-check")[0])
    return results


def _how_run(budget, speed_images, warmup_images, yolo, yolo_weights, mask_rcnn_weights) -> list[str]:
    return [
        f"Training budget: Ultralytics models {budget.yolo_epochs} epochs at batch {budget.yolo_batch}; Detectron2 "
        f"models {budget.d2_iters} iterations at batch {budget.d2_batch}; the minutes each took are in the table "
        "(wall clock, and CPU time of the process and its data-loader workers).",
        f"Seeds: {budget.seed} everywhere (Ultralytics `seed`, Detectron2 `SEED`); data-loader workers {budget.workers}.",
        f"YOLO size {yolo}; YOLO weights: {yolo_weights or 'none, built from the yaml'}; ResNet weights: "
        f"{mask_rcnn_weights or 'none (from scratch)'}.",
        f"Accuracy: every val image at its original size through each model's own predictor (score >= "
        f"{SCORE_THRESHOLD}, at most {MAX_DETECTIONS} detections), masks pasted at the original size, one "
        "pycocotools COCOeval for all.",
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
