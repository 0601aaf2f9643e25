"""Train, or reuse, each compared model with its framework's own trainer.

Detectron2 models train with DefaultTrainer (the plugin's `engine.Trainer`), Ultralytics models with their
trainer; both write into `<run_dir>`. A finished run leaves `finished.json` (its settings, weights and
training cost), and a rerun with the same settings reuses it, so an interrupted compare never retrains a
finished model; an unfinished Detectron2 run with the same settings resumes from its last checkpoint, and
a run folder left by other settings is cleared first.
"""
from __future__ import annotations

import json
import resource
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

from yolo_mask_plugin import engine
from yolo_mask_plugin.adapters.detector_training import train_ultralytics
from yolo_mask_plugin.adapters.train import AllThreadsSegmentationTrainer
from yolo_mask_plugin.compare.predictors import load_ultralytics

FINISHED = "finished.json"
STARTED = "started.json"


@contextmanager
def measured_cost() -> Iterator[dict]:
    """Wall and CPU seconds of the block; CPU includes finished child processes (data-loader workers)."""
    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    cost: dict = {}
    wall0, cpu0 = time.perf_counter(), cpu()
    yield cost
    cost.update(wall_s=round(time.perf_counter() - wall0, 1), cpu_s=round(cpu() - cpu0, 1))


def finished_run(run_dir: Path, settings: dict) -> dict | None:
    """The record of a finished run in `run_dir` trained with exactly `settings`, if there is one."""
    marker = run_dir / FINISHED
    if not marker.is_file():
        return None
    record = json.loads(marker.read_text())
    if record.get("settings") != settings or not Path(record.get("weights", "")).is_file():
        return None
    return record


def _start(run_dir: Path, settings: dict) -> None:
    """Note the settings of the run about to train; a run left by other settings is removed first, so a
    checkpoint of another budget is never resumed as if it were this one."""
    started = run_dir / STARTED
    if run_dir.is_dir() and (not started.is_file() or json.loads(started.read_text()) != settings):
        print(f"[compare] {run_dir} holds a run with other settings: starting it afresh", flush=True)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started.write_text(json.dumps(settings, indent=2))


def _finish(run_dir: Path, settings: dict, weights: Path, cost: dict) -> dict:
    record = {"settings": settings, "weights": str(weights), "cost": cost}
    (run_dir / FINISHED).write_text(json.dumps(record, indent=2))
    return record


def train_detectron2(run_dir: Path, config_file: str, opts: list[str]) -> dict:
    """DefaultTrainer on `config_file` + `opts` into `run_dir`; the record of the finished run."""
    settings = {"config_file": config_file, "opts": list(opts)}
    record = finished_run(run_dir, settings)
    if record is not None:
        print(f"[compare] reusing the finished Detectron2 run in {run_dir}", flush=True)
        return record
    cfg = engine.build_cfg(config_file, [*opts, "OUTPUT_DIR", str(run_dir)])
    cfg.freeze()
    _start(run_dir, settings)
    (run_dir / "config.yaml").write_text(cfg.dump())
    setup_logger(name="detectron2")  # DefaultTrainer's progress lines (ETA, losses) every 20 iterations
    seed_all_rng(cfg.SEED)
    with measured_cost() as cost:
        trainer = engine.Trainer(cfg)
        trainer.resume_or_load(resume=True)  # an interrupted run continues from its last checkpoint
        trainer.train()
    weights = run_dir / "model_final.pth"
    if not weights.is_file():
        raise RuntimeError(f"Detectron2 training in {run_dir} ended without writing {weights}")
    return _finish(run_dir, settings, weights, cost)


def train_ultralytics_model(
    run_dir: Path, family: str, model_file: str, init_weights: str | None, data_yaml: Path, train_args: dict
) -> dict:
    """Ultralytics' trainer on `data_yaml`; the record holds `last.pt`, the weights after the last epoch
    (Ultralytics' `best.pt` is picked on the val split, which the comparison must not do)."""
    settings = {"family": family, "model": model_file, "init_weights": init_weights, **train_args}
    record = finished_run(run_dir, settings)
    if record is not None:
        print(f"[compare] reusing the finished Ultralytics run in {run_dir}", flush=True)
        return record
    _start(run_dir, settings)
    yolo = load_ultralytics(model_file, family)
    if init_weights:
        yolo.load(init_weights)  # Ultralytics' transfer: every tensor whose name and shape match
    trainer = {"trainer": AllThreadsSegmentationTrainer} if family == "yolo_seg" else {}  # YOLOMask routes its own
    with measured_cost() as cost:
        best = train_ultralytics(yolo, data_yaml, run_dir.parent, run_dir.name, **train_args, **trainer)
    return _finish(run_dir, settings, best.parent / "last.pt", cost)
