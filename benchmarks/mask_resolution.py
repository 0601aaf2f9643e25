"""What the mask branch's resolution buys on boundaries: 28 vs 56 px mask logits, pooling YOLO's stride-4 map (P2)
or only the detect head's P3-P5, scored by mask AP and Boundary AP on the embedded shapes dataset.

The detector is held fixed so that only the mask branch differs: per seed one YOLO trained by Ultralytics with the
demo's recipe (apps/demo.py YOLO_TRAIN_ARGS, that seed; or given with `--detectors`), frozen, and on it each
variant's mask branch trained by Detectron2's DefaultTrainer with the demo's config
(`configs/shapes/yolo_mask_single_pass.yaml`, its solver scaled to `--iters`) and the same seed. Every variant of a
seed therefore sees the same boxes (its bbox AP is identical: checked), and a difference in mask or Boundary AP is
the branch's. Each model runs on every val image at its original size (DefaultPredictor, score >= 0.05, <= 100
detections) into one pycocotools COCOeval (bbox, segm) and faster-coco-eval's Boundary AP (dilation 2% of the
diagonal), the comparison's evaluator (`apps/compare/evaluate.py`). Per variant: mean and sample std over seeds,
and the difference to the reference variant paired by seed (called only where every seed's difference has the same
sign and |mean| > 2 std). Training wall and CPU minutes of each run are recorded. The result file is rewritten after
every run; finished runs are reused through their run records (settings + code fingerprint).

    python benchmarks/mask_resolution.py --seeds 0 1 2
    python benchmarks/mask_resolution.py --seeds 0 1 2 --detectors s0/best.pt s1/best.pt s2/best.pt
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from yolo_mask_plugin.apps.compare import evaluate
from yolo_mask_plugin.apps.compare.dataset import COMPARE_TRAIN, prepare_dataset
from yolo_mask_plugin.apps.compare.models import predict_spec
from yolo_mask_plugin.apps.compare.predictors import SCORE_THRESHOLD, build_predictor
from yolo_mask_plugin.apps.compare.run import default_dataset, val_coco_results
from yolo_mask_plugin.apps.compare.training import train_detectron2
from yolo_mask_plugin.apps.demo import DEMO_CONFIG, YOLO_TRAIN_ARGS, train_demo_yolo
from yolo_mask_plugin.apps.benchmark import benchmark_parser, new_result, write_result
from yolo_mask_plugin.apps.seed_stats import difference_cell, paired_difference, seed_spread, spread_cell
from yolo_mask_plugin.d2.config import build_cfg

# name -> Detectron2 opts on top of the demo's config (whose mask branch is "p2-p5, 28")
VARIANTS = {
    "p3-p5, 28": ["MODEL.ROI_HEADS.IN_FEATURES", "['p3', 'p4', 'p5']", "MODEL.YOLO.MASK_HEAD.OUTPUT_RESOLUTION", "28"],
    "p2-p5, 28": ["MODEL.ROI_HEADS.IN_FEATURES", "['p2', 'p3', 'p4', 'p5']", "MODEL.YOLO.MASK_HEAD.OUTPUT_RESOLUTION",
                  "28"],
    "p3-p5, 56": ["MODEL.ROI_HEADS.IN_FEATURES", "['p3', 'p4', 'p5']", "MODEL.YOLO.MASK_HEAD.OUTPUT_RESOLUTION", "56"],
    "p2-p5, 56": ["MODEL.ROI_HEADS.IN_FEATURES", "['p2', 'p3', 'p4', 'p5']", "MODEL.YOLO.MASK_HEAD.OUTPUT_RESOLUTION",
                  "56"],
}
REFERENCE = "p2-p5, 28"
SCORES = ("segm_AP", "segm_AP75", "boundary_AP", "boundary_AP75", "bbox_AP")


def schedule_opts(iters: int) -> list[str]:
    """The demo config's solver (its iterations, LR decay steps and warm-up) scaled to `iters`.

    Args:
        iters (int): the iterations to train.

    Returns:
        (list[str]): Detectron2 opts (KEY VALUE ...).
    """
    cfg = build_cfg(DEMO_CONFIG)
    scale = iters / cfg.SOLVER.MAX_ITER
    scaled = {round(step * scale) for step in cfg.SOLVER.STEPS}
    steps = tuple(sorted(s for s in scaled if 0 < s < iters))  # Detectron2 refuses a decay at or past the end
    return ["SOLVER.MAX_ITER", str(iters), "SOLVER.STEPS", str(steps),
            "SOLVER.WARMUP_ITERS", str(max(round(cfg.SOLVER.WARMUP_ITERS * scale), 1)),
            "SOLVER.CHECKPOINT_PERIOD", str(iters)]


def scores(config_opts: list[str], weights: Path, dataset) -> dict:
    """COCOeval bbox + segm and Boundary AP of a trained variant on every val image at its original size.

    Args:
        config_opts (list[str]): the variant's Detectron2 opts on the demo config.
        weights (Path): its trained weights.
        dataset (CompareDataset): the prepared dataset (its val split is scored).

    Returns:
        (dict): segm_AP, segm_AP75, boundary_AP, boundary_AP75, bbox_AP, and the full segm and boundary metrics.
    """
    spec = predict_spec({"framework": "detectron2", "config_file": DEMO_CONFIG, "opts": config_opts}, str(weights),
                        SCORE_THRESHOLD)
    results = val_coco_results(build_predictor(spec), dataset, Path(weights).parent.name)
    coco = evaluate.coco_metrics(evaluate.load_ground_truth(str(dataset.val.json_file)), results)
    boundary = evaluate.boundary_metrics(str(dataset.val.json_file), results)
    return {"segm_AP": coco["segm"]["AP"], "segm_AP75": coco["segm"]["AP75"], "boundary_AP": boundary["AP"],
            "boundary_AP75": boundary["AP75"], "bbox_AP": coco["bbox"]["AP"], "segm": coco["segm"],
            "boundary": boundary}


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Per variant: spread over seeds of each score and the training minutes; difference to REFERENCE by seed.

    Args:
        runs (dict[str, list[dict]]): variant -> one entry per seed.

    Returns:
        (dict): variant -> {score: `seed_spread`, "train_wall_min": `seed_spread`, "minus_reference": {"segm_AP",
            "boundary_AP": `paired_difference`} where 2 or more seeds pair with the reference}.
    """
    summary = {}
    reference = {r["seed"]: r for r in runs.get(REFERENCE, [])}
    for name, entries in runs.items():
        s = {key: seed_spread([e[key] for e in entries]) for key in SCORES}
        s["train_wall_min"] = seed_spread([e["train_wall_min"] for e in entries])
        paired = [e for e in entries if e["seed"] in reference]
        if name != REFERENCE and len(paired) >= 2:
            s["minus_reference"] = {}
            for key in ("segm_AP", "boundary_AP"):
                diffs = [e[key] - reference[e["seed"]][key] for e in paired]
                s["minus_reference"][key] = paired_difference(diffs)
        summary[name] = s
    return summary


def _diff(name: str, summary: dict, key: str) -> str:
    """The cell of `name`'s difference to the reference in `key`."""
    if name == REFERENCE:
        return "reference"
    d = summary.get("minus_reference", {}).get(key)
    if d is None:
        return "n/a (< 2 seeds paired)"
    return difference_cell(d)


def readme_table(result: dict) -> str:
    """The README table: mean ± std over seeds per variant and the paired difference to the reference
    (tests/test_readme_numbers.py checks the README holds it verbatim).

    Args:
        result (dict): the result JSON, as written by `main`.

    Returns:
        (str): the markdown table.
    """
    n = len(result["provenance"]["seeds"])
    lines = [f"| mask branch ({n} seeds, same detector per seed) | segm AP | Boundary AP | Boundary AP75 | "
             f"segm AP - {REFERENCE} | Boundary AP - {REFERENCE} | bbox AP | train min (wall) |",
             "|---" * 8 + "|"]
    for name, s in result["summary"].items():
        cells = [spread_cell(s["segm_AP"]), spread_cell(s["boundary_AP"]), spread_cell(s["boundary_AP75"]),
                 _diff(name, s, "segm_AP"), _diff(name, s, "boundary_AP"), spread_cell(s["bbox_AP"]),
                 spread_cell(s["train_wall_min"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Train and score every variant at every seed; the result file is rewritten after each run."""
    parser = benchmark_parser(__doc__, result="benchmarks/results/mask_resolution.json", seeds=[0, 1, 2],
                              output_dir="output/bench_mask_resolution", device=True)
    parser.add_argument("--detectors", nargs="+", default=None,
                        help="one YOLO .pt per seed (default: train each with the demo's recipe and seed)")
    parser.add_argument("--iters", type=int, default=build_cfg(DEMO_CONFIG).SOLVER.MAX_ITER,
                        help="Detectron2 iterations of each mask branch (the demo config's solver, scaled)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    if args.detectors and len(args.detectors) != len(args.seeds):
        parser.error(f"--detectors: {len(args.detectors)} files for {len(args.seeds)} seeds")

    result = new_result(args.seeds, config=DEMO_CONFIG, iters=args.iters, reference=REFERENCE,
                        variants={v: VARIANTS[v] for v in args.variants}, runs={})
    output_dir = Path(args.output_dir).absolute()
    dataset = prepare_dataset(*default_dataset(), output_dir / "data")
    for i, seed in enumerate(args.seeds):
        if args.detectors:
            detector = Path(args.detectors[i]).absolute()
        else:
            detector = Path(train_demo_yolo(dataset.yolo_data_yaml, output_dir / f"detector_seed{seed}",
                                            {**YOLO_TRAIN_ARGS, "seed": seed})["weights"])
        base = [
            "DATASETS.TRAIN", f"('{COMPARE_TRAIN}',)", "DATASETS.TEST", "()", "INPUT.MASK_FORMAT", dataset.mask_format,
            "MODEL.ROI_HEADS.NUM_CLASSES", str(len(dataset.classes)), "MODEL.YOLO.WEIGHTS", str(detector),
            "MODEL.YOLO.FREEZE", "True", "MODEL.DEVICE", args.device, "SEED", str(seed), *schedule_opts(args.iters),
        ]
        for name in args.variants:
            opts = [*base, *VARIANTS[name]]
            run_dir = output_dir / f"seed{seed}" / name.replace(", ", "_")
            print(f"[bench] seed {seed}, mask branch {name}: {args.iters} iterations", flush=True)
            record = train_detectron2(run_dir, DEMO_CONFIG, opts)
            entry = {"seed": seed, "detector": str(detector), **scores(opts, Path(record["weights"]), dataset),
                     "train_wall_min": record["cost"]["wall_s"] / 60, "train_cpu_min": record["cost"]["cpu_s"] / 60}
            result["runs"].setdefault(name, []).append(entry)
            result["summary"] = summarize(result["runs"])
            write_result(args.result, result)  # a finished run is never lost
        boxes = {result["runs"][v][-1]["bbox_AP"] for v in args.variants}
        if max(boxes) - min(boxes) > 1e-6 or any(math.isnan(b) for b in boxes):
            raise RuntimeError(f"seed {seed}: the variants' bbox AP differ ({boxes}): the detector did not stay fixed")
    print(json.dumps(result["summary"], indent=2))
    print(readme_table(result))
    print(f"[bench] results: {args.result}")


if __name__ == "__main__":
    main()
