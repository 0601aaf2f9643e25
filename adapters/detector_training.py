"""Train the YOLO detector that feeds Detectron2, with Ultralytics' own trainer, offline.

Nothing is re-implemented: `YOLO(model).train(...)` runs Ultralytics' DetectionTrainer, data pipeline and
validator; this only pins the settings an offline, headless run needs and returns the checkpoint path.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from ultralytics import YOLO


def train_yolo_detector(
    data_yaml: str | os.PathLike,
    project: str | os.PathLike,
    name: str = "yolo",
    model: str = "yolo11n.yaml",
    **train_args,
) -> Path:
    """Train `model` (a `.yaml` from scratch, or a `.pt` to fine-tune) on `data_yaml`; return `best.pt`.

    `train_args` go to Ultralytics' trainer unchanged (epochs, imgsz, batch, workers, seed, ...). Plots are
    off unless asked for (they download a font); a `.yaml` model starts untrained, so nothing is fetched.
    """
    data_yaml = Path(data_yaml)
    if not data_yaml.is_file():
        raise FileNotFoundError(f"Ultralytics dataset yaml {str(data_yaml)!r} does not exist")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    args = {"plots": False, "exist_ok": True, "verbose": False, **train_args}
    yolo = YOLO(model, task="detect")
    threads = torch.get_num_threads()
    try:
        yolo.train(data=str(data_yaml), project=str(Path(project).absolute()), name=name, **args)
    finally:  # Ultralytics' CPU training sets torch to cpu_count - 1 threads for good; what runs next needs them all
        torch.set_num_threads(threads)
    best = Path(yolo.trainer.best)
    if not best.is_file():  # Ultralytics saves best.pt after the first epoch; no file means training broke off
        raise RuntimeError(f"Ultralytics training of {model!r} finished without writing {best}")
    return best
