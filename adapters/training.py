"""Train with Ultralytics' own trainer, offline, from a script: YOLO detectors, YOLO-seg, YOLO-mask."""
from __future__ import annotations

import os
from pathlib import Path

from ultralytics import YOLO
from ultralytics.engine.model import Model

from yolo_mask_plugin.adapters.train import AllThreadsDetectionTrainer
from yolo_mask_plugin.core.threads import kept_torch_threads


def train_ultralytics(model: Model, data_yaml: str | os.PathLike, project: str | os.PathLike, name: str, **train_args):
    """Train an Ultralytics model offline, keeping torch's thread count.

    Plots are off unless asked for (they download a font).

    Args:
        model: an Ultralytics `Model` (YOLO, YOLOMask).
        data_yaml: the Ultralytics dataset yaml.
        project: the runs folder.
        name: the run's name, its folder under `project`.
        **train_args: given to Ultralytics' trainer unchanged (epochs, imgsz, batch, workers, seed, ...).

    Returns:
        The path of `best.pt`.

    Raises:
        FileNotFoundError: `data_yaml` does not exist.
        RuntimeError: training finished without writing `best.pt`.
    """
    data_yaml = Path(data_yaml)
    if not data_yaml.is_file():
        raise FileNotFoundError(f"Ultralytics dataset yaml {str(data_yaml)!r} does not exist")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    args = {"plots": False, "exist_ok": True, "verbose": False, **train_args}
    with kept_torch_threads():  # Ultralytics' CPU training leaves cpu_count - 1 threads; what runs next needs them all
        model.train(data=str(data_yaml), project=str(Path(project).absolute()), name=name, **args)
    best = Path(model.trainer.best)
    if not best.is_file():  # Ultralytics saves best.pt after the first epoch; no file means training broke off
        raise RuntimeError(f"Ultralytics training into {best.parent.parent} finished without writing {best}")
    return best


def train_yolo_detector(
    data_yaml: str | os.PathLike,
    project: str | os.PathLike,
    name: str = "yolo",
    model: str = "yolo11n.yaml",
    **train_args,
) -> Path:
    """Train a YOLO detector with Ultralytics' DetectionTrainer on every torch thread.

    Args:
        data_yaml: the Ultralytics dataset yaml.
        project: the runs folder.
        name: the run's name.
        model: a `.yaml` to train from scratch, or a `.pt` to fine-tune.
        **train_args: given to Ultralytics' trainer unchanged.

    Returns:
        The path of `best.pt`.
    """
    return train_ultralytics(YOLO(model, task="detect"), data_yaml, project, name,
                             **{"trainer": AllThreadsDetectionTrainer, **train_args})
