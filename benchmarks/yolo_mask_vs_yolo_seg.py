"""YOLO-mask (RoIAlign FCN mask head) vs stock Ultralytics YOLO-seg on the embedded shapes dataset, over seeds.

Both are trained here by Ultralytics' trainer, once per seed, with the same YOLO size, image size, epochs, recipe
and thread count (YOLO-mask: `YOLOMaskTrainer`; YOLO-seg: its stock `SegmentationTrainer` keeping every torch
thread, `AllThreadsSegmentationTrainer`), then each is scored by its own Ultralytics validator with
`save_txt=True`, which switches Ultralytics to its native-resolution path: predicted and ground-truth masks are
compared at the input resolution (a plain `.val()` compares them at 1/4 of it). Box and Mask mAP50-95 / mAP50 per
seed, their mean and sample standard deviation, and the paired YOLO-mask - YOLO-seg difference; a difference is
called only where it exceeds the spread (every seed's difference on the same side of 0 and |mean| > 2 std).
Training wall and CPU seconds of every run are recorded. Latency is measured in `benchmarks/inference_latency.py`.

A finished run is reused only when its settings and the code fingerprint (`apps/run_record.code_version`) match,
so changed code retrains. The result file is rewritten after every seed. Mask head variants
(`--mask-head pool_p2=true output_resolution=56`) train as their own runs, `yolo_mask_<changes>`.

    python benchmarks/yolo_mask_vs_yolo_seg.py --seeds 0 1 2 --epochs 40 --imgsz 192
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from ultralytics import YOLO
from ultralytics.nn.tasks import load_checkpoint, yaml_model_load

from yolo_mask_plugin.adapters import YOLOMask
from yolo_mask_plugin.adapters.train import AllThreadsSegmentationTrainer
from yolo_mask_plugin.adapters.training import train_ultralytics
from yolo_mask_plugin.apps.demo import YOLO_TRAIN_ARGS
from yolo_mask_plugin.apps.benchmark import benchmark_parser, new_result, write_result
from yolo_mask_plugin.apps.compare.evaluate import ultralytics_val_metrics
from yolo_mask_plugin.apps.cost import measured_cost
from yolo_mask_plugin.apps.run_record import code_version, finish_run, finished_run, start_run
from yolo_mask_plugin.apps.seed_stats import exceeds_spread, seed_spread
from yolo_mask_plugin.core.mask_branch import MASK_HEAD_DEFAULTS
from yolo_mask_plugin.data import default_shapes_root, generate_shapes_dataset

# this result's key -> `ultralytics_val_metrics`' key (fractions, as Ultralytics reports them)
METRICS = {"mask_mAP50_95": "segm_mAP50_95", "mask_mAP50": "segm_mAP50", "box_mAP50_95": "bbox_mAP50_95",
           "box_mAP50": "bbox_mAP50"}


def train_once(name: str, model_factory, model_file: str, data_yaml: Path, output_dir: Path, args: dict) -> dict:
    """The run record (`apps/run_record.py`) of `name`, trained unless a finished run with these settings and code
    exists. Both models train with every thread torch has (`AllThreadsSegmentationTrainer` for YOLO-seg).

    Args:
        name (str): the run's name (its folder under `output_dir`).
        model_factory (type): `YOLOMask` or Ultralytics' `YOLO`.
        model_file (str): the model yaml.
        data_yaml (Path): the YOLO-seg dataset yaml.
        output_dir (Path): where the runs are kept.
        args (dict): Ultralytics train arguments.

    Returns:
        (dict): the run record (settings, weights, cost).
    """
    run_dir = output_dir / name
    settings = {"model": model_file, **args, "code": code_version()}
    record = finished_run(run_dir, settings)
    if record is not None:
        print(f"reusing the finished run {record['weights']}")
        return record
    start_run(run_dir, settings)
    trainer = {} if model_factory is YOLOMask else {"trainer": AllThreadsSegmentationTrainer}
    with measured_cost() as cost:
        best = train_ultralytics(model_factory(model_file), data_yaml, output_dir, name, **args, **trainer)
    return finish_run(run_dir, settings, best, cost)


def mask_model_yaml(yolo: str, changes: list[str], output_dir: Path) -> tuple[str, str]:
    """The YOLO-mask model file and run name: `<yolo>.yaml`, or a copy with a `mask_head:` of `changes`.

    Args:
        yolo (str): the YOLO size, e.g. "yolo11n".
        changes (list[str]): KEY=VALUE mask head settings (keys of `MASK_HEAD_DEFAULTS`).
        output_dir (Path): where the copy is written.

    Returns:
        (tuple[str, str]): the model yaml and the run name ("yolo_mask" or "yolo_mask_<changes>").
    """
    if not changes:
        return f"{yolo}.yaml", "yolo_mask"
    mask_head = dict(_key_value(c) for c in changes)
    unknown = sorted(set(mask_head) - set(MASK_HEAD_DEFAULTS))
    if unknown:
        raise SystemExit(f"--mask-head: unknown keys {unknown}; known: {sorted(MASK_HEAD_DEFAULTS)}")
    name = "yolo_mask_" + "_".join(f"{k}{v}" for k, v in mask_head.items())
    path = output_dir / f"{yolo}-{name}.yaml"  # keeps "<yolo>" first: Ultralytics reads the scale from the name
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump({**yaml_model_load(f"{yolo}.yaml"), "mask_head": mask_head}, f, sort_keys=False)
    return str(path), name


def _key_value(text: str) -> tuple[str, object]:
    """`key=value` -> (key, the value read as YAML)."""
    key, _, value = text.partition("=")
    return key, yaml.safe_load(value)


def accuracy(model, data_yaml: Path, imgsz: int, output_dir: Path, name: str) -> dict:
    """Ultralytics' own validator at native mask resolution (`ultralytics_val_metrics`), on the CPU.

    Returns:
        (dict): this result's `METRICS`, fractions.
    """
    metrics = ultralytics_val_metrics(model, data_yaml, imgsz, output_dir, f"{name}_val", device="cpu")
    return {ours: metrics[theirs] for ours, theirs in METRICS.items()}


def spread(values: list[float]) -> dict:
    """`seed_spread`, with a standard deviation of 0.0 for one seed (this benchmark's tables print one)."""
    result = seed_spread(values)
    return {**result, "std": 0.0 if result["std"] is None else result["std"]}


def summarize(per_seed: dict[int, dict]) -> dict:
    """Per model and metric the spread over seeds; per metric the paired difference YOLO-mask - YOLO-seg and
    whether it exceeds the spread (same sign at every seed and |mean| > 2 std of the differences).

    Args:
        per_seed (dict[int, dict]): seed -> {"accuracy", "train_cost", ...} of both models.

    Returns:
        (dict): "accuracy" (model -> metric -> `spread`), "train_wall_s" (model -> `spread`), "difference" (metric ->
            `spread` and "exceeds_spread").
    """
    seeds = sorted(per_seed)
    models = list(per_seed[seeds[0]]["accuracy"])
    summary = {
        "accuracy": {m: {k: spread([per_seed[s]["accuracy"][m][k] for s in seeds]) for k in METRICS} for m in models},
        "train_wall_s": {m: spread([per_seed[s]["train_cost"][m]["wall_s"] for s in seeds]) for m in models},
        "difference": {},
    }
    for key in METRICS:
        diffs = [per_seed[s]["accuracy"]["yolo_mask"][key] - per_seed[s]["accuracy"]["yolo_seg"][key] for s in seeds]
        summary["difference"][key] = {**spread(diffs), "exceeds_spread": exceeds_spread(diffs)}
    return summary


def readme_table(result: dict) -> str:
    """The README's table of this result (tests/test_readme_numbers.py checks the README holds it verbatim).

    Args:
        result (dict): the result JSON, as written by `main`.

    Returns:
        (str): the markdown table.
    """
    acc, n = result["summary"]["accuracy"], len(result["provenance"]["seeds"])
    rows = ["| model | mask mAP50-95 | mask mAP50 | box mAP50-95 | box mAP50 | train min (wall) |",
            "|---|---|---|---|---|---|"]
    labels = {"yolo_mask": "YOLO-mask (yolo11n + RoIAlign FCN head)", "yolo_seg": "YOLO-seg (yolo11n-seg)"}
    for name, label in labels.items():
        cells = [f"{100 * acc[name][k]['mean']:.1f} ± {100 * acc[name][k]['std']:.1f}" for k in METRICS]
        wall = result["summary"]["train_wall_s"][name]
        rows.append(f"| {label}, {n} seeds | {' | '.join(cells)} | {wall['mean'] / 60:.1f} ± {wall['std'] / 60:.1f} |")
    diff = result["summary"]["difference"]
    cells = [f"{100 * diff[k]['mean']:+.1f} ± {100 * diff[k]['std']:.1f}{'' if diff[k]['exceeds_spread'] else ' (within spread)'}"
             for k in METRICS]
    rows.append(f"| difference, paired by seed | {' | '.join(cells)} | |")
    return "\n".join(rows)


def main() -> None:
    """Train and score both models at every seed; the result file is rewritten after each seed."""
    parser = benchmark_parser(__doc__, result="benchmarks/results/yolo_mask_vs_yolo_seg.json", seeds=[0, 1, 2],
                              output_dir="output/bench_yolo_mask_vs_yolo_seg")
    parser.add_argument("--data-root", default=None, help="shapes dataset folder (generated if missing)")
    parser.add_argument("--yolo", default="yolo11n", help="YOLO size: <name>.yaml and <name>-seg.yaml")
    parser.add_argument("--epochs", type=int, default=YOLO_TRAIN_ARGS["epochs"])
    parser.add_argument("--imgsz", type=int, default=YOLO_TRAIN_ARGS["imgsz"])
    parser.add_argument("--mask-head", nargs="*", default=[], metavar="KEY=VALUE",
                        help="mask_head settings of the YOLO-mask model (see MASK_HEAD_DEFAULTS)")
    args = parser.parse_args()

    output_dir = Path(args.output_dir).absolute()
    data_root = generate_shapes_dataset(Path(args.data_root or default_shapes_root()).absolute())
    data_yaml = data_root / "shapes-seg.yaml"
    mask_model_file, mask_run = mask_model_yaml(args.yolo, args.mask_head, output_dir)
    result = new_result(args.seeds, dataset=str(data_root), yolo=args.yolo, per_seed={})
    for seed in args.seeds:
        train_args = {**{k: v for k, v in YOLO_TRAIN_ARGS.items() if k != "model"}, "epochs": args.epochs,
                      "imgsz": args.imgsz, "seed": seed}
        records = {
            "yolo_mask": train_once(f"{mask_run}_seed{seed}", YOLOMask, mask_model_file, data_yaml, output_dir,
                                    train_args),
            "yolo_seg": train_once(f"yolo_seg_seed{seed}", YOLO, f"{args.yolo}-seg.yaml", data_yaml, output_dir,
                                   train_args),
        }
        weights = {name: Path(r["weights"]) for name, r in records.items()}
        result["train_args"] = {k: v for k, v in train_args.items() if k != "seed"}
        result["mask_head"] = dict(load_checkpoint(weights["yolo_mask"])[0].mask_head.spec)
        result["per_seed"][seed] = {
            "train_cost": {name: r["cost"] for name, r in records.items()},
            "weights": {name: str(w) for name, w in weights.items()},
            "accuracy": {
                "yolo_mask": accuracy(YOLOMask(weights["yolo_mask"]), data_yaml, args.imgsz, output_dir,
                                      f"{mask_run}_seed{seed}"),
                "yolo_seg": accuracy(YOLO(weights["yolo_seg"]), data_yaml, args.imgsz, output_dir,
                                     f"yolo_seg_seed{seed}"),
            },
        }
        write_result(args.result, result)  # a seed finished is never lost
    result["summary"] = summarize(result["per_seed"])
    write_result(args.result, result)
    print(json.dumps(result["summary"], indent=2))
    print(readme_table(result))


if __name__ == "__main__":
    main()
