"""The single-pass YOLO-mask trained end to end by Detectron2 vs the same model trained by Ultralytics.

  * Detectron2: `configs/shapes/yolo_mask_single_pass_end2end.yaml` through DefaultTrainer (`yolo-mask train`'s
    Trainer): YOLO built from yolo11n.yaml learns on its own detection losses, which the proposal generator returns
    as RPN returns its losses, together with the mask branch. Solver: AdamW, the demo's lr, 64 images per
    iteration (Ultralytics' images per optimizer step), warm-up of one epoch, cosine decay.
  * Ultralytics: `YOLOMask("yolo11n.yaml").train(...)` with the demo's recipe (apps/demo.py YOLO_TRAIN_ARGS), and
    variants of it (`--variants`) with one piece of Ultralytics' recipe switched to what Detectron2's loop does,
    to measure what each piece is worth.
Same dataset (the embedded shapes, through `yolo-mask compare`'s preparation: Detectron2 reads the COCO json,
Ultralytics its YOLO-seg conversion), same input size, same images seen (Ultralytics epochs x train images =
Detectron2 iterations x images per iteration), same seeds. Ultralytics' minutes include the validation its
trainer runs after the last epoch even with val=False. Both are scored by the same predictor and evaluator:
the Detectron2 model is exported to an Ultralytics .pt (`export_ultralytics_checkpoint`, tested to give the
detections and masks DefaultPredictor gives), then every .pt runs through Ultralytics' predictor on every val image
at its original size into one pycocotools COCOeval (bbox + segm; `apps/compare/evaluate.py`). Training cost: wall
and CPU minutes of each run (`apps/cost.py::measured_cost`). Finished runs are reused only through their run
records (`apps/run_record.py`: settings + code fingerprint), so changed code or settings train again. The result
file is rewritten after every trained model.

Ultralytics variants (each one change to the recipe):
  recipe          the demo's recipe as it is
  no_ema          no EMA of the weights (decay 0: the saved model is the last step's); Detectron2 has no EMA hook
  no_warmup_bias  biases warm up from 0 like every other parameter (Ultralytics: their LR falls from
                  warmup_bias_lr 0.1 to lr0); Detectron2 warms every parameter up alike
  d2_augment      Detectron2's augmentation only (resize + flip): no HSV, translate or scale jitter
  cos_lr          cosine LR decay, Detectron2's WarmupCosineLR, instead of Ultralytics' linear decay
  mosaic          mosaic on (Ultralytics' default 1.0, off for the last 10 epochs); the demo's recipe has it off,
                  as Detectron2's loader has no mosaic

    python benchmarks/d2_vs_ultralytics_yolo_mask.py --seeds 0 1 2                         # the full benchmark
    python benchmarks/d2_vs_ultralytics_yolo_mask.py --epochs 1 --seeds 0 --variants recipe \\
        --output-dir output/bench_d2_tiny --result output/bench_d2_tiny/result.json       # does it run
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from yolo_mask_plugin.adapters import YOLOMask
from yolo_mask_plugin.adapters.training import train_ultralytics
from yolo_mask_plugin.apps.compare import evaluate
from yolo_mask_plugin.apps.compare.dataset import COMPARE_TRAIN, CompareDataset, prepare_dataset
from yolo_mask_plugin.apps.compare.predictors import UltralyticsPredictor
from yolo_mask_plugin.apps.compare.run import default_dataset, val_coco_results
from yolo_mask_plugin.apps.compare.training import train_detectron2
from yolo_mask_plugin.apps.demo import YOLO_TRAIN_ARGS
from yolo_mask_plugin.apps.benchmark import benchmark_parser, new_result, write_result
from yolo_mask_plugin.apps.cost import measured_cost
from yolo_mask_plugin.apps.run_record import code_version, finish_run, finished_run, start_run
from yolo_mask_plugin.apps.seed_stats import difference_cell, paired_difference, seed_spread, spread_cell
from yolo_mask_plugin.interop.checkpoint import export_ultralytics_checkpoint
from yolo_mask_plugin.d2.config import build_cfg

D2_CONFIG = "shapes/yolo_mask_single_pass_end2end.yaml"
YOLO_MODEL = "yolo11n.yaml"


def _no_ema(trainer) -> None:
    """Ultralytics callback: switch the weights' EMA off."""
    trainer.ema.decay = lambda updates: 0.0  # ModelEMA then copies the model at every optimizer step


# name -> (Ultralytics train-argument overrides, callbacks {event: function})
VARIANTS = {
    "recipe": ({}, {}),
    "no_ema": ({}, {"on_pretrain_routine_end": _no_ema}),
    "no_warmup_bias": ({"warmup_bias_lr": 0.0}, {}),
    "d2_augment": ({"hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0, "translate": 0.0, "scale": 0.0}, {}),
    "cos_lr": ({"cos_lr": True}, {}),
    "mosaic": ({"mosaic": 1.0}, {}),
}
METRICS = ("AP", "AP50", "AP75")


def train_ultralytics_run(run_dir: Path, data_yaml: Path, train_args: dict, variant: str) -> dict:
    """`YOLOMask(yolo11n.yaml).train` with one recipe variant, reused when finished with these settings and code.

    Args:
        run_dir (Path): the run's folder.
        data_yaml (Path): the YOLO-seg dataset yaml.
        train_args (dict): Ultralytics train arguments (the recipe, this seed, the device).
        variant (str): a key of `VARIANTS`.

    Returns:
        (dict): the run record (`apps.run_record`); its weights are `last.pt` (nothing is selected on the val split).
    """
    overrides, callbacks = VARIANTS[variant]
    args = {**train_args, **overrides}
    settings = {"model": YOLO_MODEL, "variant": variant, **args, "code": code_version()}
    record = finished_run(run_dir, settings)
    if record is not None:
        print(f"[bench] reusing the finished Ultralytics run {run_dir}", flush=True)
        return record
    start_run(run_dir, settings)
    model = YOLOMask(YOLO_MODEL)
    for event, callback in callbacks.items():
        model.add_callback(event, callback)
    with measured_cost() as cost:
        best = train_ultralytics(model, data_yaml, run_dir.parent, run_dir.name, **args)
    return finish_run(run_dir, settings, best.parent / "last.pt", cost)


def d2_opts(dataset: CompareDataset, imgsz: int, iterations: int, warmup: int, seed: int, workers: int,
            device: str) -> list[str]:
    """The end-to-end config on the benchmark's data, size, budget, seed and device; everything else is the config's.

    On the CPU images load in the training process, as Ultralytics' trainer loads them there (it sets workers=0),
    so both measured CPU times hold all the work (a live loader worker's time is not counted).

    Returns:
        (list[str]): Detectron2 opts (KEY VALUE ...).
    """
    workers = workers if device == "cuda" else 0
    return [
        "DATASETS.TRAIN", f"('{COMPARE_TRAIN}',)", "DATASETS.TEST", "()",
        "MODEL.ROI_HEADS.NUM_CLASSES", str(len(dataset.classes)), "INPUT.MASK_FORMAT", dataset.mask_format,
        "INPUT.MIN_SIZE_TRAIN", f"({imgsz},)", "INPUT.MAX_SIZE_TRAIN", str(imgsz),
        "INPUT.MIN_SIZE_TEST", str(imgsz), "INPUT.MAX_SIZE_TEST", str(imgsz),
        "SOLVER.MAX_ITER", str(iterations), "SOLVER.WARMUP_ITERS", str(warmup),
        "SOLVER.CHECKPOINT_PERIOD", str(max(iterations // 3, 1)), "SEED", str(seed),
        "DATALOADER.NUM_WORKERS", str(workers), "MODEL.DEVICE", device,
    ]


def exported_checkpoint(record: dict, opts: list[str], imgsz: int) -> Path:
    """The Detectron2 run's model_final.pth as an Ultralytics .pt next to it.

    Args:
        record (dict): the Detectron2 run record.
        opts (list[str]): the opts it trained with.
        imgsz (int): input size written into the .pt.

    Returns:
        (Path): the .pt.
    """
    cfg = build_cfg(D2_CONFIG, [*opts, "MODEL.WEIGHTS", record["weights"], "MODEL.DEVICE", "cpu"])
    model = build_model(cfg)
    DetectionCheckpointer(model).load(record["weights"])
    return export_ultralytics_checkpoint(model.eval(), Path(record["weights"]).with_suffix(".pt"), imgsz=imgsz)


def coco_scores(weights: Path, dataset: CompareDataset, imgsz: int, device: str) -> dict:
    """COCOeval bbox + segm of an Ultralytics YOLO-mask .pt on every val image at its original size.

    Args:
        weights (Path): the .pt.
        dataset (CompareDataset): the prepared dataset.
        imgsz (int): input size.
        device (str): "cpu" or "cuda".

    Returns:
        (dict): `evaluate.coco_metrics`: "bbox" and "segm" -> AP, AP50, ... in percent.
    """
    predictor = UltralyticsPredictor(str(weights), "yolo_mask", imgsz, device)
    results = val_coco_results(predictor, dataset, weights.name)
    return evaluate.coco_metrics(evaluate.load_ground_truth(str(dataset.val.json_file)), results)


def _entry(seed: int, record: dict, accuracy: dict, scored: Path) -> dict:
    """One seed's row of a model: its AP, training minutes and the weights scored."""
    return {
        "seed": seed, **{task: {m: accuracy[task][m] for m in METRICS} for task in ("bbox", "segm")},
        "train_wall_min": record["cost"]["wall_s"] / 60, "train_cpu_min": record["cost"]["cpu_s"] / 60,
        "weights": str(scored),
    }


def _summary(runs: list[dict]) -> dict:
    """Mean and spread (sample standard deviation, None for one seed) over seeds."""
    columns = {
        "bbox_AP": [r["bbox"]["AP"] for r in runs], "segm_AP": [r["segm"]["AP"] for r in runs],
        "train_wall_min": [r["train_wall_min"] for r in runs], "train_cpu_min": [r["train_cpu_min"] for r in runs],
    }
    return {name: seed_spread(values) for name, values in columns.items()}


REFERENCE = "ultralytics_recipe"


def minus_reference(result: dict, name: str) -> dict | None:
    """Model `name`'s AP minus the Ultralytics recipe's, seed by seed (the two trained with the same seed).

    Args:
        result (dict): the result JSON.
        name (str): a key of its "models".

    Returns:
        (dict | None): "bbox_AP" and "segm_AP" -> `apps.seed_stats.paired_difference`; None for the reference itself
            or without it.
    """
    if name == REFERENCE or REFERENCE not in result["models"]:
        return None
    reference = {run["seed"]: run for run in result["models"][REFERENCE]["runs"]}
    paired = [run for run in result["models"][name]["runs"] if run["seed"] in reference]
    out = {}
    for task in ("bbox", "segm"):
        out[f"{task}_AP"] = paired_difference([run[task]["AP"] - reference[run["seed"]][task]["AP"] for run in paired])
    return out


def _fmt_difference(difference: dict | None, key: str) -> str:
    """The cell of a difference to the reference ("(reference)" for the reference itself)."""
    return "(reference)" if difference is None else difference_cell(difference[key])


def readme_table(result: dict) -> str:
    """The README table: one row per trained model, mean ± standard deviation over the seeds, and its AP minus the
    Ultralytics recipe's paired by seed ("within spread" unless every seed's difference has the same sign and |mean|
    > 2 std). tests/test_readme_numbers.py checks the README holds it verbatim.

    Args:
        result (dict): the result JSON, as written by `main`.

    Returns:
        (str): the markdown table.
    """
    lines = ["| model, trainer | seeds | bbox AP | segm AP | bbox AP - recipe | segm AP - recipe | train min (wall) | "
             "train min (CPU) |", "|---" * 8 + "|"]
    for name, model in result["models"].items():
        s, difference = model["summary"], minus_reference(result, name)
        cells = [spread_cell(s["bbox_AP"]), spread_cell(s["segm_AP"]), _fmt_difference(difference, "bbox_AP"),
                 _fmt_difference(difference, "segm_AP"), spread_cell(s["train_wall_min"]),
                 spread_cell(s["train_cpu_min"])]
        lines.append(f"| {model['label']} | {len(model['runs'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Train and score every model at every seed; the result file is rewritten after each model."""
    parser = benchmark_parser(__doc__, result="benchmarks/results/d2_vs_ultralytics_yolo_mask.json", seeds=[0, 1, 2],
                              output_dir="output/bench_d2_vs_ultralytics", device=True)
    parser.add_argument("--epochs", type=int, default=YOLO_TRAIN_ARGS["epochs"], help="Ultralytics epochs; "
                        "Detectron2 trains on as many images")
    parser.add_argument("--imgsz", type=int, default=YOLO_TRAIN_ARGS["imgsz"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        help="Ultralytics recipe variants to train (recipe: the demo's)")
    parser.add_argument("--no-detectron2", action="store_true", help="train only the Ultralytics variants")
    parser.add_argument("--workers", type=int, default=YOLO_TRAIN_ARGS["workers"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    result = new_result(args.seeds, code_version=code_version())  # the code as it was when training started
    output_dir = Path(args.output_dir).absolute()
    dataset = prepare_dataset(*default_dataset(), output_dir / "data")
    ultralytics_args = {
        **{k: v for k, v in YOLO_TRAIN_ARGS.items() if k != "model"}, "epochs": args.epochs, "imgsz": args.imgsz,
        "workers": args.workers, "device": args.device,
    }
    images_seen = args.epochs * dataset.num_train_images
    d2_batch = build_cfg(D2_CONFIG).SOLVER.IMS_PER_BATCH
    iterations = max(round(images_seen / d2_batch), 1)
    warmup = max(round(ultralytics_args["warmup_epochs"] * dataset.num_train_images / d2_batch), 1)
    result.update({
        "dataset": dataset.describe(), "imgsz": args.imgsz, "epochs": args.epochs, "evaluation": (
            "every val image at its original size through Ultralytics' predictor (Detectron2's model exported to a "
            "YOLO-mask .pt), score >= 0.05, <= 100 detections, one pycocotools COCOeval, AP in percent"),
        "models": {},
    })
    models = result["models"]

    if not args.no_detectron2:
        runs, opts_by_seed = [], {}
        models["detectron2"] = {
            "label": "single-pass YOLO-mask, Detectron2 DefaultTrainer end to end", "config": D2_CONFIG,
            "opts_by_seed": opts_by_seed, "images_seen": iterations * d2_batch, "runs": runs,
        }
        for seed in args.seeds:
            opts = d2_opts(dataset, args.imgsz, iterations, warmup, seed, args.workers, args.device)
            print(f"[bench] Detectron2, seed {seed}: {iterations} iterations x {d2_batch} images", flush=True)
            record = train_detectron2(output_dir / "detectron2" / f"seed{seed}", D2_CONFIG, opts)
            exported = exported_checkpoint(record, opts, args.imgsz)
            runs.append(_entry(seed, record, coco_scores(exported, dataset, args.imgsz, args.device), exported))
            opts_by_seed[seed] = opts
            models["detectron2"]["summary"] = _summary(runs)
            write_result(args.result, result)  # a trained model is never lost
    for variant in args.variants:
        runs = []
        models[f"ultralytics_{variant}"] = {
            "label": f"single-pass YOLO-mask, Ultralytics YOLOMask.train ({variant})",
            "train_args": {**ultralytics_args, **VARIANTS[variant][0]}, "callbacks": sorted(VARIANTS[variant][1]),
            "images_seen": images_seen, "runs": runs,
        }
        for seed in args.seeds:
            print(f"[bench] Ultralytics {variant}, seed {seed}: {args.epochs} epochs", flush=True)
            record = train_ultralytics_run(output_dir / f"ultralytics_{variant}" / f"seed{seed}",
                                           dataset.yolo_data_yaml, {**ultralytics_args, "seed": seed}, variant)
            weights = Path(record["weights"])
            runs.append(_entry(seed, record, coco_scores(weights, dataset, args.imgsz, args.device), weights))
            models[f"ultralytics_{variant}"]["summary"] = _summary(runs)
            write_result(args.result, result)  # a trained model is never lost

    write_result(args.result, result)
    print(json.dumps({k: v for k, v in result.items() if k != "models"}, indent=2))
    print(readme_table(result))
    print(f"[bench] results: {args.result}")


if __name__ == "__main__":
    main()
