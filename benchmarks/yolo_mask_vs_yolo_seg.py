"""YOLO-mask (RoIAlign FCN mask head) vs stock Ultralytics YOLO-seg, on the embedded shapes dataset.

Both are trained here by Ultralytics' trainer with the same YOLO size, image size, epochs and recipe, then:
  * accuracy: each model's own Ultralytics validator on the val split with `save_txt=True`, which switches
    Ultralytics to its native-resolution mask path: predicted and ground-truth masks are compared at the full
    input resolution (imgsz), not at the 1/4-resolution default; Box and Mask mAP50-95 / mAP50;
  * latency (CPU, one process, same thread count): a 640x640 validation image, model forward + NMS (top 10
    detections) + masks at 640x640, models interleaved, median and p90 of `--runs` after `--warmup` runs each:
    YOLO detect alone (the same detector, no mask branch), YOLO-mask, YOLO-seg. Models are fused (Conv+BN) as
    Ultralytics fuses them for inference.
Finished training runs are reused (`<output>/<name>/finished.json`), so a rerun only measures. Mask head
variants (`--mask-head pool_p2=true output_resolution=56`) train as their own run, `yolo_mask_<changes>`.

    python benchmarks/yolo_mask_vs_yolo_seg.py --output-dir output/bench_seg
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import cv2
import numpy as np
import torch
import ultralytics
import yaml
from ultralytics import YOLO
from ultralytics.data.augment import LetterBox
from ultralytics.nn.tasks import load_checkpoint, yaml_model_load
from ultralytics.utils import nms, ops

from yolo_mask_plugin.adapters import YOLOMask
from yolo_mask_plugin.adapters.train import AllThreadsSegmentationTrainer
from yolo_mask_plugin.adapters.training import train_ultralytics
from yolo_mask_plugin.apps.demo import YOLO_TRAIN_ARGS
from yolo_mask_plugin.apps.latency import interleaved_latency
from yolo_mask_plugin.apps.runs import code_version, finish_run, finished_run, measured_cost, start_run
from yolo_mask_plugin.core.mask_branch import MASK_HEAD_DEFAULTS
from yolo_mask_plugin.core.paste import paste_masks
from yolo_mask_plugin.core.threads import kept_torch_threads
from yolo_mask_plugin.data import default_shapes_root, generate_shapes_dataset

LATENCY_SIZE = 640
LATENCY_DETECTIONS = 10


def train_once(name: str, model_factory, model_file: str, data_yaml: Path, output_dir: Path, args: dict) -> dict:
    """The run record (apps/runs.py) of `name`, trained unless a finished run with these settings and code exists.
    Both models train with every thread torch has (`AllThreadsSegmentationTrainer` for YOLO-seg)."""
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
    """The YOLO-mask model file and run name: `<yolo>.yaml`, or a copy with a `mask_head:` of `changes`."""
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
    key, _, value = text.partition("=")
    return key, yaml.safe_load(value)


def accuracy(model, data_yaml: Path, imgsz: int, output_dir: Path, name: str) -> dict:
    metrics = model.val(
        data=str(data_yaml), imgsz=imgsz, batch=8, device="cpu", plots=False, save_txt=True,
        project=str(output_dir), name=f"{name}_val", exist_ok=True, verbose=False,
    )
    r = metrics.results_dict
    return {
        "mask_mAP50_95": r["metrics/mAP50-95(M)"], "mask_mAP50": r["metrics/mAP50(M)"],
        "box_mAP50_95": r["metrics/mAP50-95(B)"], "box_mAP50": r["metrics/mAP50(B)"],
    }


def latency_input(image_path: Path) -> torch.Tensor:
    image = LetterBox((LATENCY_SIZE, LATENCY_SIZE), auto=False)(image=cv2.imread(str(image_path)))
    return torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))).float()[None] / 255


def top_detections(outputs: torch.Tensor, nc: int) -> torch.Tensor:
    return nms.non_max_suppression(outputs, 0.0, 0.7, nc=nc, max_det=LATENCY_DETECTIONS)[0]


def run_detect(model, x):
    outputs, _ = model(x)
    return top_detections(outputs, 0)


def run_yolo_mask(model, x):
    outputs, raw = model(x)
    det = top_detections(outputs, 0)
    probs = model.detection_mask_probs(raw, [det[:, :4]], [det[:, 5]], tuple(x.shape[2:]))[0]
    return paste_masks(probs, det[:, :4], tuple(x.shape[2:]))


def run_yolo_seg(model, x):
    outputs, raw = model(x)
    proto = raw["proto"] if isinstance(raw, dict) else raw[1]
    det = top_detections(outputs, len(model.names))
    return ops.process_mask(proto[0], det[:, 6:], det[:, :4], x.shape[2:], upsample=True)


def latency(runs: dict, x: torch.Tensor, warmup: int, repeats: int) -> dict:
    """Every run on the same input, interleaved (apps/latency.py), after checking each keeps the fixed count."""
    with torch.inference_mode():
        for name, run in runs.items():
            count = len(run(x))
            if count != LATENCY_DETECTIONS:
                raise RuntimeError(f"{name} gave {count} detections, the benchmark needs {LATENCY_DETECTIONS}")
    return interleaved_latency(runs, [x] * (warmup + repeats), warmup)


def fused(best: Path):
    model, _ = load_checkpoint(best)
    return model.float().fuse().eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="output/bench_yolo_mask_vs_yolo_seg")
    parser.add_argument("--data-root", default=None, help="shapes dataset folder (generated if missing)")
    parser.add_argument("--yolo", default="yolo11n", help="YOLO size: <name>.yaml and <name>-seg.yaml")
    parser.add_argument("--epochs", type=int, default=YOLO_TRAIN_ARGS["epochs"])
    parser.add_argument("--imgsz", type=int, default=YOLO_TRAIN_ARGS["imgsz"])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--mask-head", nargs="*", default=[], metavar="KEY=VALUE",
                        help="mask_head settings of the YOLO-mask model (see MASK_HEAD_DEFAULTS)")
    parser.add_argument("--result", default="benchmarks/results/yolo_mask_vs_yolo_seg.json")
    args = parser.parse_args()

    output_dir = Path(args.output_dir).absolute()
    data_root = generate_shapes_dataset(Path(args.data_root or default_shapes_root()).absolute())
    data_yaml = data_root / "shapes-seg.yaml"
    train_args = {
        **{k: v for k, v in YOLO_TRAIN_ARGS.items() if k != "model"}, "epochs": args.epochs, "imgsz": args.imgsz,
    }
    mask_model_file, mask_run = mask_model_yaml(args.yolo, args.mask_head, output_dir)
    records = {
        "yolo_mask": train_once(mask_run, YOLOMask, mask_model_file, data_yaml, output_dir, train_args),
        "yolo_seg": train_once("yolo_seg", YOLO, f"{args.yolo}-seg.yaml", data_yaml, output_dir, train_args),
    }
    runs = {name: Path(r["weights"]) for name, r in records.items()}
    with kept_torch_threads():  # Ultralytics' CPU validation would leave cpu_count - 1 threads
        accuracies = {
            "yolo_mask": accuracy(YOLOMask(runs["yolo_mask"]), data_yaml, args.imgsz, output_dir, mask_run),
            "yolo_seg": accuracy(YOLO(runs["yolo_seg"]), data_yaml, args.imgsz, output_dir, "yolo_seg"),
        }
    result = {
        "dataset": str(data_root), "train_args": train_args, "yolo": args.yolo,
        "mask_head": dict(load_checkpoint(runs["yolo_mask"])[0].mask_head.spec),
        "train_cost": {n: r["cost"] for n, r in records.items()},
        "accuracy": accuracies,
    }
    image = sorted((data_root / "images" / "val").iterdir())[0]
    mask_model, seg_model = fused(runs["yolo_mask"]), fused(runs["yolo_seg"])
    timings = latency(
        {
            "yolo_detect": lambda x: run_detect(mask_model, x),  # the same detector, its mask branch never runs
            "yolo_mask": lambda x: run_yolo_mask(mask_model, x),
            "yolo_seg": lambda x: run_yolo_seg(seg_model, x),
        },
        latency_input(image), args.warmup, args.runs,
    )
    result["latency"] = {
        "input": f"{LATENCY_SIZE}x{LATENCY_SIZE}, {LATENCY_DETECTIONS} detections, masks at input resolution",
        "threads": torch.get_num_threads(), "runs": args.runs, "warmup": args.warmup, "ms": timings,
        "yolo_mask_over_detect": timings["yolo_mask"]["median_ms"] / timings["yolo_detect"]["median_ms"],
        "yolo_mask_over_yolo_seg": timings["yolo_mask"]["median_ms"] / timings["yolo_seg"]["median_ms"],
    }
    result["machine"] = {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                         "ultralytics": ultralytics.__version__}
    acc = result["accuracy"]
    result["mask_mAP50_95_gain_points"] = 100 * (acc["yolo_mask"]["mask_mAP50_95"] - acc["yolo_seg"]["mask_mAP50_95"])
    out = Path(args.result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
