"""The machine a run is on: what a result file says about it, and the device runs use on it."""
from __future__ import annotations

import os
import platform

import torch


def default_device() -> str:
    """The device the demo, the comparison and the benchmarks train and predict on: "cuda" when torch sees a GPU,
    else "cpu".

    Returns:
        (str): "cuda" or "cpu", as Detectron2's MODEL.DEVICE and Ultralytics' `device=` take it.
    """
    return "cuda" if torch.cuda.is_available() else "cpu"


def machine() -> dict:
    """The processor (or GPU), its cores and the platform.

    Returns:
        (dict): description (one line for tables), cpu (its model name from /proc/cpuinfo where there is one),
            cpu_cores, gpu (None without one), device (`default_device()`), platform and python version.
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "description": f"{gpu or cpu}, {os.cpu_count()} CPU cores", "cpu": cpu, "cpu_cores": os.cpu_count(), "gpu": gpu,
        "device": default_device(), "platform": platform.platform(), "python": platform.python_version(),
    }
