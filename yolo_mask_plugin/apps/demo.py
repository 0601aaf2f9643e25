"""The main job (`yolo-mask demo`, `make demo`): the whole pipeline on the embedded shapes dataset.

1. generate the dataset (COCO json + Ultralytics YOLO-seg, same images);
2. train YOLO on it with Ultralytics' own trainer;
3. train the mask branch with Detectron2's DefaultTrainer (single-pass config, YOLO frozen), and evaluate
   with COCOEvaluator (bbox + segm AP, DefaultTrainer's EvalHook), write `metrics.json`;
4. draw overlays of validation images with Detectron2's Visualizer.
Finished steps are reused when the demo runs again into the same folder (a finished YOLO run, the
Detectron2 checkpoints via `resume`), so an interrupted demo never loses a finished checkpoint.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from yolo_mask_plugin.adapters.training import train_yolo_detector
from yolo_mask_plugin.apps import train_net
from yolo_mask_plugin.apps.cost import measured_cost
from yolo_mask_plugin.apps.machine import default_device
from yolo_mask_plugin.apps.predict import predict_images
from yolo_mask_plugin.apps.run_record import code_version, finish_run, finished_run, start_run
from yolo_mask_plugin.apps.steps import Steps
from yolo_mask_plugin.d2 import SHAPES_VAL, build_cfg, get_config_file, register_shapes_dataset
from yolo_mask_plugin.data import default_shapes_root, generate_shapes_dataset

DEMO_CONFIG = "shapes/yolo_mask_single_pass.yaml"
# Ultralytics settings for YOLO11n from scratch on 240 images, sized for 2 CPU cores: a higher AdamW rate than
# Ultralytics' auto-optimizer, no mosaic and 1 warm-up epoch, at 192 px, because a 50-epoch budget from scratch
# learns little with the defaults (an early probe, not kept as a benchmark). 50 epochs on both CPU threads fit
# the demo's 15 minutes with the mask stage; what they reach over seeds: benchmarks/results/demo_seeds.json.
# Validation runs once, after the last epoch.
YOLO_TRAIN_ARGS = {
    "model": "yolo11n.yaml", "epochs": 50, "imgsz": 192, "batch": 8, "workers": 2, "seed": 0,
    "optimizer": "AdamW", "lr0": 0.005, "warmup_epochs": 1, "mosaic": 0.0, "val": False,
}
NUM_OVERLAYS = 8
# The paper draws at 0.6; the demo's CPU-budget YOLO is rarely that sure, so overlays use Ultralytics' 0.25.
OVERLAY_CONFIDENCE = 0.25


def train_demo_yolo(data_yaml: Path, output_dir: Path, train_args: dict) -> dict:
    """The demo's YOLO stage: Ultralytics training into `output_dir/yolo`, skipped when that holds a finished run
    with the same settings and code.

    Args:
        data_yaml (Path): the YOLO-seg dataset yaml.
        output_dir (Path): the demo's folder.
        train_args (dict): Ultralytics train arguments (`YOLO_TRAIN_ARGS` and the seed).

    Returns:
        (dict): the run record (`apps.run_record`): settings, weights (best.pt), cost.
    """
    run_dir = output_dir / "yolo"
    settings = {**train_args, "data": str(data_yaml), "code": code_version()}
    record = finished_run(run_dir, settings)
    if record is not None:
        print(f"reusing the finished YOLO run {record['weights']}")
        return record
    start_run(run_dir, settings)
    with measured_cost() as cost:
        best = train_yolo_detector(data_yaml, project=output_dir, name="yolo", **train_args)
    return finish_run(run_dir, settings, best, cost)


def run_demo(
    output_dir: str, data_root: str | None = None, yolo_epochs: int | None = None, opts: list[str] | None = None,
    seed: int = 0,
) -> dict:
    """Run the demo's four steps (data, YOLO, mask branch + evaluation, overlays).

    Args:
        output_dir (str): where the runs, metrics.json and the overlays go.
        data_root (str | None): the shapes dataset folder (None: the default one; generated if missing).
        yolo_epochs (int | None): YOLO epochs instead of `YOLO_TRAIN_ARGS`' (None: those).
        opts (list[str] | None): Detectron2 opts on top of the demo config.
        seed (int): seeds both trainers (Ultralytics' `seed`, Detectron2's `SEED`).

    Returns:
        (dict): what metrics.json holds: bbox and segm AP, the YOLO checkpoint and arguments, the Detectron2 config
            and opts, wall seconds per step.

    Examples:
        >>> from yolo_mask_plugin.apps.demo import run_demo
        >>> run_demo("output/demo")["segm"]["AP"]
    """
    opts = ["SEED", str(seed), *(opts or [])]
    build_cfg(DEMO_CONFIG, opts)  # bad config opts fail now, not after YOLO has trained
    output_dir = Path(output_dir).absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    data_root = Path(data_root or default_shapes_root()).absolute()
    steps = Steps("demo", total=4)

    steps.begin("data", f"shapes dataset -> {data_root}")
    generate_shapes_dataset(data_root)
    register_shapes_dataset(data_root)

    steps.begin("yolo_train", "train YOLO with Ultralytics' trainer")
    yolo_train_args = {**YOLO_TRAIN_ARGS, "seed": seed, **({"epochs": yolo_epochs} if yolo_epochs else {})}
    yolo_run = train_demo_yolo(data_root / "shapes-seg.yaml", output_dir, yolo_train_args)
    best_pt = Path(yolo_run["weights"])

    steps.begin(
        "mask_train_and_eval",
        f"train the mask branch with Detectron2's DefaultTrainer ({DEMO_CONFIG}); its EvalHook then runs "
        f"COCOEvaluator (bbox + segm) on {SHAPES_VAL}",
    )
    d2_dir = output_dir / "detectron2"
    d2_opts = ["MODEL.YOLO.WEIGHTS", str(best_pt), "MODEL.DEVICE", default_device(), "OUTPUT_DIR", str(d2_dir), *opts]
    # Detectron2 resumes its own checkpoints, unless they were trained on another YOLO or with other settings
    start_run(d2_dir, {"yolo": yolo_run["settings"], "config": DEMO_CONFIG, "opts": d2_opts})
    args = argparse.Namespace(
        config_file=get_config_file(DEMO_CONFIG), opts=d2_opts, eval_only=False, resume=True,
        num_gpus=1, num_machines=1, machine_rank=0, dist_url="auto",
    )
    results = train_net.main(args)
    if not results:  # nothing evaluated (e.g. a finished run resumed past its last iteration): evaluate it
        results = train_net.main(argparse.Namespace(**{**vars(args), "eval_only": True}))

    steps.begin("overlays", f"overlays of {NUM_OVERLAYS} validation images (confidence {OVERLAY_CONFIDENCE})")
    predict_cfg = build_cfg(DEMO_CONFIG, [
        *d2_opts, "MODEL.WEIGHTS", str(d2_dir / "model_final.pth"),
        "MODEL.YOLO.CONF_THRESH_TEST", str(OVERLAY_CONFIDENCE),
    ])
    predict_cfg.freeze()
    val_images = sorted((data_root / "images" / "val").iterdir())[:NUM_OVERLAYS]
    predict_images(predict_cfg, [str(p) for p in val_images], output_dir / "overlays")

    metrics = {
        "dataset": SHAPES_VAL,
        # empty when YOLO found nothing above MODEL.YOLO.CONF_THRESH_TEST (COCOEvaluator then reports nothing)
        "bbox": dict(results.get("bbox", {})),
        "segm": dict(results.get("segm", {})),
        "yolo_checkpoint": str(best_pt),
        "yolo_train_args": yolo_train_args,
        "detectron2_config": DEMO_CONFIG,
        "detectron2_opts": d2_opts,
        "wall_time_s": steps.done(),
    }
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    ap = {t: f"{metrics[t]['AP']:.1f}" if "AP" in metrics[t] else "n/a (no detections)" for t in ("segm", "bbox")}
    print(
        f"\n[demo] segm AP {ap['segm']}, bbox AP {ap['bbox']} on {SHAPES_VAL}; "
        f"{metrics['wall_time_s']['total']:.0f} s in all. Metrics: {output_dir / 'metrics.json'}, "
        f"overlays: {output_dir / 'overlays'}"
    )
    return metrics
