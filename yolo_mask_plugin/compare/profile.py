"""Speed, size and memory of the compared models, each measured the same way for all.

Speed: end-to-end `predictor(image)` (resize, network, NMS, masks pasted at the original size) on the same
val images, after warm-up, in one process with one thread count, models interleaved image by image so
drifts in machine load hit every model alike. Peak memory: each model in a fresh process (this module run
as a script), so one model's allocations cannot hide another's.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from yolo_mask_plugin.predict import load_image_bgr

MEMORY_METHOD = (
    "each model alone in a fresh process: the kernel's peak resident memory (VmHWM, reset first) while loading "
    "it and predicting one val image 3 times, minus the memory of that process before the model (Python, torch, "
    "Detectron2, Ultralytics imported); on a GPU, torch.cuda.max_memory_allocated instead"
)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def interleaved_latency(predictors: dict, images: list[np.ndarray], warmup: int) -> dict[str, dict]:
    """Median and p90 ms per image for every predictor; each image runs through all of them in turn."""
    threads = torch.get_num_threads()
    with torch.inference_mode():
        for name, predictor in predictors.items():
            for image in images[:warmup]:
                predictor(image)
        times = {name: [] for name in predictors}
        for image in tqdm(images, desc="[compare] latency (interleaved)", unit="img"):
            for name, predictor in predictors.items():
                start = time.perf_counter()
                predictor(image)
                times[name].append((time.perf_counter() - start) * 1000)
    if torch.get_num_threads() != threads:
        raise RuntimeError(f"a predictor changed torch's thread count ({threads} -> {torch.get_num_threads()})")
    return {
        name: {"median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)), "images": len(t)}
        for name, t in times.items()
    }


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
    return kb / 1024


def peak_memory(spec: dict, image_path: Path, threads: int) -> dict:
    """Peak memory of loading `spec`'s model and predicting one image, measured in a fresh process."""
    command = [sys.executable, "-m", "yolo_mask_plugin.compare.profile", json.dumps(spec), str(image_path), str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"peak-memory probe of {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _probe(spec: dict, image_path: str, threads: int) -> dict:
    """Child side: the kernel's peak RSS (VmHWM, reset first) over loading the model and predicting 3 times,
    minus the RSS before (interpreter, torch, Detectron2, Ultralytics imported: the same for every model)."""
    from yolo_mask_plugin.compare.predictors import build_predictor

    torch.set_num_threads(threads)
    image = load_image_bgr(Path(image_path))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Linux >= 4.0: reset VmHWM to the current RSS
    baseline = _status_mb("VmRSS")
    predictor = build_predictor(spec)
    loaded = _status_mb("VmRSS")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        for _ in range(3):
            predictor(image)
    result = {
        "peak_rss_mb": round(_status_mb("VmHWM") - baseline, 1), "model_loaded_rss_mb": round(loaded - baseline, 1),
    }
    if cuda:
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="peak-memory probe of one compared model (internal)")
    parser.add_argument("spec")
    parser.add_argument("image")
    parser.add_argument("threads", type=int)
    args = parser.parse_args()
    print(json.dumps(_probe(json.loads(args.spec), args.image, args.threads)))
