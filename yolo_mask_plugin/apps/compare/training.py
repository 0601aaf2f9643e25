"""Train, or reuse, each compared model with its framework's own trainer.

Detectron2 models train with DefaultTrainer (the plugin's `train_net.Trainer`), Ultralytics models with their
trainer; both write into `<run_dir>`. A finished run leaves a run record (`apps/runs.py`: its settings, weights
and training cost), and a rerun with the same settings and code reuses it, so an interrupted compare never retrains a
finished model; an unfinished Detectron2 run with the same settings resumes from its last checkpoint, and
a run folder left by other settings is cleared first.
"""
from __future__ import annotations

from pathlib import Path

from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

from yolo_mask_plugin.adapters.train import AllThreadsSegmentationTrainer
from yolo_mask_plugin.adapters.training import train_ultralytics
from yolo_mask_plugin.apps.compare.predictors import load_ultralytics
from yolo_mask_plugin.apps.runs import code_version, finish_run, finished_run, measured_cost, start_run
from yolo_mask_plugin.apps.train_net import Trainer
from yolo_mask_plugin.d2.config import build_cfg


def train_detectron2(run_dir: Path, config_file: str, opts: list[str]) -> dict:
    """DefaultTrainer on `config_file` + `opts` into `run_dir`; the record of the finished run."""
    settings = {"config_file": config_file, "opts": list(opts), "code": code_version()}
    record = finished_run(run_dir, settings)
    if record is not None:
        print(f"[compare] reusing the finished Detectron2 run in {run_dir}", flush=True)
        return record
    cfg = build_cfg(config_file, [*opts, "OUTPUT_DIR", str(run_dir)])
    cfg.freeze()
    start_run(run_dir, settings)
    (run_dir / "config.yaml").write_text(cfg.dump())
    setup_logger(name="detectron2")  # DefaultTrainer's progress lines (ETA, losses) every 20 iterations
    seed_all_rng(cfg.SEED)
    with measured_cost() as cost:
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=True)  # an interrupted run continues from its last checkpoint
        trainer.train()
    weights = run_dir / "model_final.pth"
    if not weights.is_file():
        raise RuntimeError(f"Detectron2 training in {run_dir} ended without writing {weights}")
    return finish_run(run_dir, settings, weights, cost)


def train_ultralytics_model(
    run_dir: Path, family: str, model_file: str, init_weights: str | None, data_yaml: Path, train_args: dict
) -> dict:
    """Ultralytics' trainer on `data_yaml`; the record holds `last.pt`, the weights after the last epoch
    (Ultralytics' `best.pt` is picked on the val split, which the comparison must not do)."""
    settings = {"family": family, "model": model_file, "init_weights": init_weights, **train_args, "code": code_version()}
    record = finished_run(run_dir, settings)
    if record is not None:
        print(f"[compare] reusing the finished Ultralytics run in {run_dir}", flush=True)
        return record
    start_run(run_dir, settings)
    yolo = load_ultralytics(model_file, family)
    if init_weights:
        yolo.load(init_weights)  # Ultralytics' transfer: every tensor whose name and shape match
    trainer = {"trainer": AllThreadsSegmentationTrainer} if family == "yolo_seg" else {}  # YOLOMask routes its own
    with measured_cost() as cost:
        best = train_ultralytics(yolo, data_yaml, run_dir.parent, run_dir.name, **train_args, **trainer)
    return finish_run(run_dir, settings, best.parent / "last.pt", cost)
