"""Size and memory of the compared models, each measured the same way for all (speed: `apps/latency.py`).

Peak memory: each model in a fresh process (this module run as a script), so one model's allocations cannot hide
another's; the processes run side by side (a process's peak is its own), one per CPU core at most.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from yolo_mask_plugin.apps.cost import memory_mb, reset_peak_memory
from yolo_mask_plugin.apps.predict import load_image_bgr

MEMORY_METHOD = (
    "each model alone in a fresh process: the kernel's peak resident memory (VmHWM, reset first) while loading "
    "it and predicting one val image 3 times, minus the memory of that process before the model (Python, torch, "
    "Detectron2, Ultralytics imported); on a GPU, torch.cuda.max_memory_allocated instead"
)


def count_parameters(model: torch.nn.Module) -> int:
    """Parameters of the model, trainable or not."""
    return sum(p.numel() for p in model.parameters())


def peak_memory(spec: dict, image_path: Path, threads: int) -> dict:
    """Peak memory of loading `spec`'s model and predicting one image, measured in a fresh process.

    Args:
        spec (dict): the predictor spec (`predictors.build_predictor`).
        image_path (Path): the image predicted.
        threads (int): torch threads of the probe.

    Returns:
        (dict): peak_rss_mb and model_loaded_rss_mb over the process before the model (and peak_cuda_mb on a GPU).

    Raises:
        RuntimeError: the probe failed (its stderr's tail in the message).
    """
    command = [sys.executable, "-m", "yolo_mask_plugin.apps.compare.profile", json.dumps(spec), str(image_path), str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"peak-memory probe of {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_memories(specs: dict[str, dict], image_path: Path, threads: int) -> dict[str, dict]:
    """`peak_memory` of every model, each in its own fresh process, up to one process per CPU core at a time
    (most of a probe is importing the frameworks; the peaks do not depend on what runs beside them).

    Args:
        specs (dict[str, dict]): model name -> predictor spec.
        image_path (Path): the image predicted.
        threads (int): torch threads of each probe.

    Returns:
        (dict[str, dict]): model name -> `peak_memory`.
    """
    with ThreadPoolExecutor(max_workers=max(min(len(specs), os.cpu_count() or 1), 1)) as pool:
        futures = {name: pool.submit(peak_memory, spec, image_path, threads) for name, spec in specs.items()}
        return {name: future.result() for name, future in futures.items()}


def _probe(spec: dict, image_path: str, threads: int) -> dict:
    """Child side: the kernel's peak RSS (VmHWM, reset first) over loading the model and predicting 3 times,
    minus the RSS before (interpreter, torch, Detectron2, Ultralytics imported: the same for every model)."""
    from yolo_mask_plugin.apps.compare.predictors import build_predictor

    torch.set_num_threads(threads)
    image = load_image_bgr(Path(image_path))
    reset_peak_memory()
    baseline = memory_mb("VmRSS")
    predictor = build_predictor(spec)
    loaded = memory_mb("VmRSS")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        for _ in range(3):
            predictor(image)
    result = {
        "peak_rss_mb": round(memory_mb("VmHWM") - baseline, 1), "model_loaded_rss_mb": round(loaded - baseline, 1),
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
