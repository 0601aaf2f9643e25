"""Training cost of YOLO-mask vs YOLO-seg: step time and peak memory per batch, same recipe, crowded images.

Both train through Ultralytics' trainer (YOLO-mask: `YOLOMaskTrainer`; YOLO-seg: its stock trainer with all
threads, `AllThreadsSegmentationTrainer`) on the same generated COCO-like scenes at 640 px, batch 16: instance
counts with COCO's long tail (one image holds 120 instances), sizes from 8 to 200 px, occlusion. Each model runs
in a fresh process, so its peak resident memory over the training steps (VmHWM at the last step, minus the process before
training) is its own (Ultralytics' final validation, which it runs even with `val=False`, is reported apart); step time
is forward + loss + backward + optimizer step (Ultralytics' `on_train_batch_start` to `on_train_batch_end`),
data time is what the loader took in between (mask rasterisation counts there), median over the steps after the
first. Goals (issue #12): YOLO-mask step <= 1.3x YOLO-seg's, peak memory <= YOLO-seg's.

    python benchmarks/training_cost.py                     # -> benchmarks/results/training_cost.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from yolo_mask_plugin.apps.benchmark import add_code_files, benchmark_parser, new_result, write_result
from yolo_mask_plugin.apps.cost import memory_mb, reset_peak_memory
from yolo_mask_plugin.apps.provenance import code_files

IMAGE_SIZE = 640
# instances per image: COCO's long tail (mean ~7, most images few, some crowded), and one crowd of 120
COUNTS = (120, 40, 25, 15, 12, 10, 8, 7, 6, 5, 4, 3, 3, 2, 2, 1)
CLASSES = ("blob", "box", "tri")


def crowded_coco(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """COCO json + PNGs of `len(COUNTS)` crowded 640 px scenes; visible (occluded) masks as RLE.

    Args:
        root (Path): where instances.json and images/ go.
        seed (int): the scenes' random seed.

    Returns:
        (tuple[Path, Path]): the json and the image folder.
    """
    rng = np.random.default_rng(seed)
    image_dir = root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index, count in enumerate(COUNTS):
        pixels = rng.integers(0, 90, (IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.uint8)
        owner = np.full((IMAGE_SIZE, IMAGE_SIZE), -1, np.int32)  # which instance is on top at each pixel
        classes = []
        for k in range(count):
            size = float(np.exp(rng.uniform(np.log(8), np.log(200))))
            centre = rng.uniform(size / 2, IMAGE_SIZE - size / 2, 2)
            shape = np.zeros_like(owner, np.uint8)
            cls = int(rng.integers(len(CLASSES)))
            if cls == 0:
                cv2.ellipse(shape, tuple(int(c) for c in centre), (int(size / 2), int(size / 3)),
                            float(rng.uniform(0, 180)), 0, 360, 1, -1)
            else:
                corners = 4 if cls == 1 else 3
                angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(corners) / corners
                points = centre + size / 2 * np.stack([np.cos(angles), np.sin(angles)], 1)
                cv2.fillPoly(shape, [np.round(points).astype(np.int32)], 1)
            owner[shape > 0] = k
            pixels[shape > 0] = rng.integers(100, 256, 3)
            classes.append(cls)
        name = f"{index:03d}.png"
        cv2.imwrite(str(image_dir / name), pixels)
        images.append({"id": index + 1, "file_name": name, "height": IMAGE_SIZE, "width": IMAGE_SIZE})
        for k, cls in enumerate(classes):
            visible = np.asfortranarray((owner == k).astype(np.uint8))
            if visible.sum() < 10:
                continue
            rle = mask_utils.encode(visible)
            annotations.append({
                "id": len(annotations) + 1, "image_id": index + 1, "category_id": cls + 1, "iscrowd": 0,
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                "area": float(mask_utils.area(rle)), "bbox": mask_utils.toBbox(rle).tolist(),
            })
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    json_file = root / "instances.json"
    json_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return json_file, image_dir


def measure(family: str, data_yaml: str, batch: int, epochs: int, output: str) -> dict:
    """Child process: train `family` for `epochs` and report per-step times and peak memory.

    Args:
        family (str): "yolo_mask" or "yolo_seg".
        data_yaml (str): the YOLO-seg dataset yaml.
        batch (int): images per step.
        epochs (int): epochs to train.
        output (str): Ultralytics' `project` folder.

    Returns:
        (dict): steps, step_s (each step), median_step_s (after the first), median_data_s, peak_rss_mb (training
            steps only), peak_rss_mb_with_final_validation, code_files (what this process used).
    """
    from yolo_mask_plugin.adapters import YOLOMask
    from yolo_mask_plugin.adapters.train import AllThreadsSegmentationTrainer
    from yolo_mask_plugin.apps.demo import YOLO_TRAIN_ARGS
    from ultralytics import YOLO

    reset_peak_memory()
    baseline = memory_mb("VmRSS")
    model = YOLOMask("yolo11n.yaml") if family == "yolo_mask" else YOLO("yolo11n-seg.yaml")
    marks: dict[str, list[float]] = {"start": [], "end": [], "peak_mb": []}

    def batch_end(trainer) -> None:
        marks["end"].append(time.perf_counter())
        marks["peak_mb"].append(memory_mb("VmHWM"))

    model.add_callback("on_train_batch_start", lambda trainer: marks["start"].append(time.perf_counter()))
    model.add_callback("on_train_batch_end", batch_end)
    recipe = {k: YOLO_TRAIN_ARGS[k] for k in ("optimizer", "lr0", "warmup_epochs", "mosaic", "seed")}
    trainer = {} if family == "yolo_mask" else {"trainer": AllThreadsSegmentationTrainer}
    model.train(data=data_yaml, imgsz=IMAGE_SIZE, batch=batch, epochs=epochs, workers=0, device="cpu", val=False,
                plots=False, project=output, name=family, exist_ok=True, verbose=False, **recipe, **trainer)
    steps = [e - s for s, e in zip(marks["start"], marks["end"])]
    data = [s - e for e, s in zip(marks["end"], marks["start"][1:])]
    return {
        "steps": len(steps), "step_s": steps, "median_step_s": float(np.median(steps[1:])),
        "median_data_s": float(np.median(data)) if data else None,
        "peak_rss_mb": round(marks["peak_mb"][-1] - baseline, 1),  # training steps only
        "peak_rss_mb_with_final_validation": round(memory_mb("VmHWM") - baseline, 1),
        "code_files": code_files(),
    }


def readme_table(result: dict) -> str:
    """The README's table of this result (tests/test_readme_numbers.py checks the README holds it verbatim).

    Args:
        result (dict): the result JSON, as written by `main`.

    Returns:
        (str): the markdown table.
    """
    rows = ["| model | median step (s) | median data (s) | peak RSS over training (MB) |", "|---|---|---|---|"]
    for name, label in (("yolo_mask", "YOLO-mask"), ("yolo_seg", "YOLO-seg")):
        r = result[name]
        rows.append(f"| {label} | {r['median_step_s']:.2f} | {r['median_data_s']:.2f} | {r['peak_rss_mb']:.0f} |")
    ratios, goals = result["ratios"], result["goals"]
    step, memory = ratios["step_yolo_mask_over_yolo_seg"], ratios["peak_memory_yolo_mask_over_yolo_seg"]
    rows.append(f"| YOLO-mask / YOLO-seg | {step:.2f}x (goal <= {goals['step_ratio_at_most']}x: "
                f"{'met' if step <= goals['step_ratio_at_most'] else 'missed'}) | | {memory:.2f}x (goal <= "
                f"{goals['memory_ratio_at_most']}x: {'met' if memory <= goals['memory_ratio_at_most'] else 'missed'}) |")
    return "\n".join(rows)


def main() -> None:
    """Generate the scenes, train each model in its own process, write the result after each."""
    parser = benchmark_parser(__doc__, result="benchmarks/results/training_cost.json",
                              output_dir="output/bench_training_cost")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3, help="each epoch is len(COUNTS) / batch steps")
    parser.add_argument("--child", nargs=2, metavar=("FAMILY", "DATA_YAML"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args.batch, args.epochs, args.output_dir)))
        return

    from yolo_mask_plugin.data import coco_to_yolo_seg, write_yolo_data_yaml

    output = Path(args.output_dir).absolute()
    json_file, image_dir = crowded_coco(output / "coco")
    for split in ("train", "val"):
        info = coco_to_yolo_seg(json_file, image_dir, output / "yolo", split)
    data_yaml = write_yolo_data_yaml(output / "yolo", info["names"])
    result = new_result([0], images=len(COUNTS), instances=info["num_instances"], instances_per_image=list(COUNTS),
                        imgsz=IMAGE_SIZE, batch=args.batch, epochs=args.epochs)
    for family in ("yolo_mask", "yolo_seg"):
        command = [sys.executable, __file__, "--child", family, str(data_yaml), "--batch", str(args.batch),
                   "--epochs", str(args.epochs), "--output-dir", str(output)]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "YOLO_OFFLINE": "1"})
        if done.returncode:
            raise RuntimeError(f"{family} failed:\n{done.stderr[-4000:]}")
        result[family] = json.loads(done.stdout.strip().splitlines()[-1])
        add_code_files(result, result[family].pop("code_files"))
        write_result(args.result, result)  # a finished model is never lost
        print(family, {k: v for k, v in result[family].items() if k != "step_s"}, flush=True)
    mask, seg = result["yolo_mask"], result["yolo_seg"]
    result["ratios"] = {
        "step_yolo_mask_over_yolo_seg": mask["median_step_s"] / seg["median_step_s"],
        "peak_memory_yolo_mask_over_yolo_seg": mask["peak_rss_mb"] / seg["peak_rss_mb"],
    }
    result["goals"] = {"step_ratio_at_most": 1.3, "memory_ratio_at_most": 1.0}
    write_result(args.result, result)
    print(json.dumps(result["ratios"], indent=2))
    print(readme_table(result))


if __name__ == "__main__":
    main()
