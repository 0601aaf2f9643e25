"""Inference latency on the CPU, ONNX Runtime and eager PyTorch: YOLO-mask vs YOLO-seg vs the detector alone.

Issue #12 (4). Three untrained models built from yaml (latency needs no weights): YOLO-mask (yolo11n.yaml with the
mask head), YOLO-seg (yolo11n-seg.yaml) and the same detector alone (yolo11n.yaml, detect). One 640x640 image
(Ultralytics' bus.jpg, letterboxed), batch 1. The detection count is fixed, so every model does the same work:
each is exported with NMS in the graph (Ultralytics' `nms=True` for detect and segment, our end-to-end export for
YOLO-mask) at conf=0 and max_det=K, for K = 1, 10, 30, 100, and every run is checked to return exactly K.

What is timed is what a user needs to get masks at the input resolution:
  * detect: the graph (boxes only);
  * YOLO-seg: the graph + Ultralytics' own mask assembly (`ops.process_mask(..., upsample=True)`, as its predictor);
  * YOLO-mask: the graph + pasting the K 28x28 probability masks into 640x640 (`core.paste.paste_masks`).
Backends: `onnxruntime` on the exported file, and eager PyTorch on the very modules the exporter traced (captured
from the exporter: fused, heads in export mode): Ultralytics' `NMSModel` around detect / segment, and
`YOLOMaskEndToEnd` (which holds the same `NMSModel`) for YOLO-mask. That is closer like for like than Ultralytics'
predictor path, whose NMS differs from the exported one. Mask assembly runs in torch after either backend. ORT runs
with intra-op threads = torch threads (ORT's other session defaults kept); the models of one backend are interleaved
(`apps.latency.interleaved_latency`), one K at a time.

Goals (ONNX Runtime, 10 detections): YOLO-mask <= 1.15x detect alone and <= 1.0x YOLO-seg. When one is missed (or
with --profile), the YOLO-mask ORT graph is profiled (ORT's profiler, kernel time per part: detector, mask laterals,
NMS, RoIAlign + FCN head, glue) and the paste timed alone, to say where the time goes.

    python benchmarks/inference_latency.py          # -> benchmarks/results/inference_latency.json
    python benchmarks/inference_latency.py --quick  # 320x320, 3 runs: checks the script, result not kept

(--quick is not smaller than 320: at 160x160 the untrained detector keeps fewer than K boxes, which the run refuses.)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import torch
from ultralytics import YOLO
from ultralytics.data.augment import LetterBox
from ultralytics.engine.exporter import NMSModel
from ultralytics.utils import ASSETS, ops

from yolo_mask_plugin.adapters import YOLOMask
from yolo_mask_plugin.apps.latency import interleaved_latency
from yolo_mask_plugin.apps.benchmark import benchmark_parser, new_result, write_result
from yolo_mask_plugin.core.paste import paste_masks
from yolo_mask_plugin.core.threads import kept_torch_threads

DETECTIONS = (1, 10, 30, 100)
GOAL_DETECTIONS = 10
GOALS = {"yolo_mask_over_detect": 1.15, "yolo_mask_over_yolo_seg": 1.0}  # ORT, at GOAL_DETECTIONS
MODELS = {
    "detect": (YOLO, "yolo11n.yaml"), "yolo_seg": (YOLO, "yolo11n-seg.yaml"), "yolo_mask": (YOLOMask, "yolo11n.yaml"),
}
# Node-name prefixes of the YOLO-mask ONNX graph (module paths of YOLOMaskEndToEnd) -> part; the rest is "glue".
GRAPH_PARTS = {"/nms/model/": "detector", "/mask_head/laterals": "mask_laterals", "/nms/": "nms",
               "/mask_head/": "roi_align_and_head"}


def benchmark_image(imgsz: int) -> torch.Tensor:
    """bus.jpg (shipped with Ultralytics) letterboxed to imgsz x imgsz.

    Args:
        imgsz (int): the side of the square input.

    Returns:
        (torch.Tensor): (1, 3, imgsz, imgsz) float batch in [0, 1], RGB.
    """
    image = LetterBox((imgsz, imgsz), auto=False)(image=cv2.imread(str(ASSETS / "bus.jpg")))
    return torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))).float()[None] / 255


def export(name: str, k: int, imgsz: int, folder: Path) -> tuple[str, torch.nn.Module]:
    """The ONNX file of `name` with NMS in the graph (conf=0, max_det=k), and the eager module it was traced from.

    Args:
        name (str): a key of `MODELS`.
        k (int): max_det, the fixed detection count.
        imgsz (int): input size.
        folder (Path): a new folder for the export.

    Returns:
        (tuple[str, torch.nn.Module]): the .onnx path and the traced module in eval mode.
    """
    factory, yaml = MODELS[name]
    model, traced = factory(yaml), {}
    model.add_callback("on_export_end", lambda exporter: traced.update(model=exporter.model, args=exporter.args))
    folder.mkdir(parents=True)
    with kept_torch_threads(), contextlib.chdir(folder):  # Ultralytics writes next to the cwd and resets threads
        path = model.export(format="onnx", imgsz=imgsz, conf=0.0, max_det=k, nms=True, verbose=False)
    module = traced["model"] if name == "yolo_mask" else NMSModel(traced["model"], traced["args"])
    return str(Path(folder, path)), module.eval()  # the exporter leaves its model in training mode


def session(path: str, threads: int, profile: bool = False) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with `threads` intra-op threads (ORT's other defaults).

    Args:
        path (str): the .onnx file.
        threads (int): intra-op threads.
        profile (bool): enable ORT's profiler (the profile goes next to the model).

    Returns:
        (ort.InferenceSession): the session.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = profile
    options.profile_file_prefix = str(Path(path).with_suffix(""))
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def kept(detections: torch.Tensor) -> torch.Tensor:
    """The rows NMS kept of one image's padded (max_det, C) output (padding rows score 0; conf=0 keeps score > 0)."""
    return detections[detections[:, 4] > 0]


def with_masks(name: str, outputs: list[torch.Tensor], hw: tuple[int, int]) -> torch.Tensor:
    """A user's masks at the input resolution from a graph's batch-1 outputs (boxes alone for detect).

    Args:
        name (str): a key of `MODELS`.
        outputs (list[torch.Tensor]): the graph's outputs.
        hw (tuple[int, int]): the input's height and width.

    Returns:
        (torch.Tensor): (K, H, W) masks, or (K, C) detections for detect.
    """
    det = kept(outputs[0][0])
    if name == "yolo_seg":
        return ops.process_mask(outputs[1][0], det[:, 6:], det[:, :4], hw, upsample=True)
    if name == "yolo_mask":
        return paste_masks(outputs[1][0][: len(det)], det[:, :4], hw)
    return det


def runners(name: str, path: str, module: torch.nn.Module, threads: int) -> dict[str, Callable]:
    """One run per backend: image batch -> masks (or boxes) at the input resolution.

    Args:
        name (str): a key of `MODELS`.
        path (str): its .onnx file.
        module (torch.nn.Module): the eager module the exporter traced.
        threads (int): ORT intra-op threads.

    Returns:
        (dict[str, Callable]): "onnxruntime" and "eager" -> run.
    """
    sess = session(path, threads)
    input_name = sess.get_inputs()[0].name

    def onnxruntime(x: torch.Tensor) -> torch.Tensor:
        outputs = sess.run(None, {input_name: x.numpy()})
        return with_masks(name, [torch.from_numpy(o) for o in outputs], x.shape[2:])

    def eager(x: torch.Tensor) -> torch.Tensor:
        outputs = module(x)
        return with_masks(name, [outputs] if isinstance(outputs, torch.Tensor) else list(outputs), x.shape[2:])

    return {"onnxruntime": onnxruntime, "eager": eager}


def graph_profile(path: str, x: torch.Tensor, threads: int, warmup: int, runs: int) -> dict[str, float]:
    """Mean ms per run of each part of the YOLO-mask graph, from ORT's profiler.

    Args:
        path (str): the YOLO-mask .onnx file.
        x (torch.Tensor): the input batch.
        threads (int): intra-op threads.
        warmup (int): runs before the profiled ones.
        runs (int): profiled runs.

    Returns:
        (dict[str, float]): part (`GRAPH_PARTS`, "glue") -> kernel ms per run, "session_run" and "overhead" (the rest
            of the session's run time).
    """
    sess = session(path, threads, profile=True)
    feed = {sess.get_inputs()[0].name: x.numpy()}
    for _ in range(warmup + runs):
        sess.run(None, feed)
    events = json.loads(Path(sess.end_profiling()).read_text())
    start = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")[warmup]
    parts: dict[str, float] = defaultdict(float)
    for e in (e for e in events if e["ts"] >= start):
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            parts[next((p for prefix, p in GRAPH_PARTS.items() if e["name"].startswith(prefix)), "glue")] += e["dur"]
        elif e.get("cat") == "Session" and e["name"] == "model_run":
            parts["session_run"] += e["dur"]
    ms = {part: us / 1000 / runs for part, us in parts.items()}
    ms["overhead"] = ms["session_run"] - sum(v for p, v in ms.items() if p != "session_run")
    return ms


def crossings(ratios: dict[int, float]) -> list[dict]:
    """Every pair of neighbouring counts between which the YOLO-mask / YOLO-seg ratio passes 1.0.

    Args:
        ratios (dict[int, float]): detection count -> ratio.

    Returns:
        (list[dict]): {"between_detections": [lo, hi], "ratio": [at lo, at hi]}; [] when it never crosses.
    """
    ks = sorted(ratios)
    return [
        {"between_detections": [lo, hi], "ratio": [ratios[lo], ratios[hi]]}
        for lo, hi in zip(ks, ks[1:])
        if (ratios[lo] - 1) * (ratios[hi] - 1) < 0
    ]


def _paste_ms(path: str, x: torch.Tensor, args: argparse.Namespace) -> float:
    """Median ms of pasting the graph's masks alone (what YOLO-mask adds after the ORT graph)."""
    sess = session(path, args.threads)
    outputs = [torch.from_numpy(o) for o in sess.run(None, {sess.get_inputs()[0].name: x.numpy()})]
    paste = {"paste": lambda _: with_masks("yolo_mask", outputs, x.shape[2:])}
    return interleaved_latency(paste, [x] * (args.warmup + args.runs), args.warmup)["paste"]["median_ms"]


def readme_table(result: dict) -> str:
    """The README's table of this result (tests/test_readme_numbers.py checks the README holds it verbatim).

    Args:
        result (dict): the result JSON, as written by `main`.

    Returns:
        (str): the markdown table.
    """
    rows = ["| backend | detections | detect ms | YOLO-seg ms | YOLO-mask ms | YOLO-mask / detect | YOLO-mask / YOLO-seg |",
            "|---|---|---|---|---|---|---|"]
    for backend, by_k in result["latency_ms"].items():
        for k, ms in by_k.items():
            ratios = result["ratios"][backend]
            rows.append(
                f"| {backend} | {k} | " + " | ".join(f"{ms[n]['median_ms']:.1f}" for n in ("detect", "yolo_seg", "yolo_mask"))
                + f" | {ratios['yolo_mask_over_detect'][k]:.2f}x | {ratios['yolo_mask_over_yolo_seg'][k]:.2f}x |"
            )
    return "\n".join(rows)


def main() -> None:
    """Export and time every model at every detection count; profile YOLO-mask when a goal is missed."""
    parser = benchmark_parser(__doc__, result="benchmarks/results/inference_latency.json")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2, help="torch threads and ORT intra-op threads")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--profile-runs", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="profile YOLO-mask even if the goals are met")
    parser.add_argument("--quick", action="store_true", help="check the script: 320x320, 3 runs, no result file")
    args = parser.parse_args()
    if args.quick:
        args.imgsz, args.warmup, args.runs, args.profile_runs = 320, 1, 3, 2
    torch.set_num_threads(args.threads)
    result_path = Path(args.result).absolute()
    result = new_result()
    x = benchmark_image(args.imgsz)

    latency: dict = {"onnxruntime": {}, "eager": {}}
    mask_graphs: dict[int, str] = {}  # K -> the YOLO-mask ONNX file, for the profile
    with tempfile.TemporaryDirectory(prefix="inference_latency_") as tmp:
        for k in DETECTIONS:
            runs = {}
            for name in MODELS:
                path, module = export(name, k, args.imgsz, Path(tmp, f"{name}_{k}"))
                for backend, run in runners(name, path, module, args.threads).items():
                    runs[backend, name] = run
                if name == "yolo_mask":
                    mask_graphs[k] = path
            with torch.inference_mode():
                counts = {key: len(run(x)) for key, run in runs.items()}
            assert all(c == k for c in counts.values()), f"not {k} detections on the benchmark image: {counts}"
            for backend in latency:
                timed = interleaved_latency({n: r for (b, n), r in runs.items() if b == backend},
                                            [x] * (args.warmup + args.runs), args.warmup)
                latency[backend][str(k)] = timed
                print(k, backend, {n: round(t["median_ms"], 1) for n, t in timed.items()}, flush=True)

        ratios = {  # backend -> yolo_mask_over_<other> -> K -> ratio of medians
            backend: {
                f"yolo_mask_over_{other}": {
                    k: ms["yolo_mask"]["median_ms"] / ms[other]["median_ms"] for k, ms in by_k.items()
                }
                for other in ("detect", "yolo_seg")
            }
            for backend, by_k in latency.items()
        }
        at_goal = {name: ratios["onnxruntime"][name][str(GOAL_DETECTIONS)] for name in GOALS}
        goals = {
            name: {"ratio": at_goal[name], "at_most": limit, "met": at_goal[name] <= limit}
            for name, limit in GOALS.items()
        }
        result.update({
            "setup": {"input": f"{args.imgsz}x{args.imgsz}", "batch": 1, "image": "ultralytics/assets/bus.jpg",
                      "weights": "untrained (built from yaml)", "export": "onnx, NMS in the graph, conf=0, max_det=K",
                      "detections": list(DETECTIONS), "checked": "every run returned exactly K detections",
                      "torch_threads": torch.get_num_threads(), "ort_intra_op_threads": args.threads,
                      "onnxruntime": ort.__version__, "warmup": args.warmup, "quick": args.quick},
            "latency_ms": latency,
            "ratios": ratios,
            "yolo_mask_vs_yolo_seg_crossing": {
                backend: crossings({int(k): ratio for k, ratio in r["yolo_mask_over_yolo_seg"].items()})
                for backend, r in ratios.items()
            },
            "goals_onnxruntime_at_10_detections": goals,
        })
        if args.profile or not all(g["met"] for g in goals.values()):
            result["yolo_mask_profile_ms"] = {
                str(k): {
                    **graph_profile(mask_graphs[k], x, args.threads, args.warmup, args.profile_runs),
                    "paste": _paste_ms(mask_graphs[k], x, args),
                }
                for k in DETECTIONS
            }
    print(json.dumps({n: result[n] for n in ("ratios", "yolo_mask_vs_yolo_seg_crossing",
                                             "goals_onnxruntime_at_10_detections")}, indent=2))
    if "yolo_mask_profile_ms" in result:
        print(json.dumps(result["yolo_mask_profile_ms"], indent=2))
    print(readme_table(result))
    if not args.quick:  # --quick checks the script; its numbers are not a result
        write_result(result_path, result)


if __name__ == "__main__":
    main()
