"""Train, or reuse, each compared model with its framework's own trainer, keeping snapshots along the way.

Detectron2 models train with DefaultTrainer (the plugin's `train_net.Trainer`), Ultralytics models with their
trainer; both write into `<run_dir>`. Along the way each keeps weights snapshots (Detectron2's periodic
checkpoints, Ultralytics' per-epoch `save_period` files) and `snapshots.json`: the training minutes (wall and CPU,
counted from the run's start to the end of the snapshot's last training step, so Ultralytics' validation of its
final epoch is not training time) at which each was written, for the accuracy-against-compute curves. A budget in
minutes stops a run when its time is up: Ultralytics' own `time=` argument (it fits its epochs and schedule to
the time), and for Detectron2 a hook that stops DefaultTrainer at the same wall time (its schedule stays the one
of its iterations). A finished run leaves a run record (`apps/run_record.py`: settings, weights, cost); a rerun
with the same settings and code reuses it, an unfinished Detectron2 run with the same settings resumes from its last
checkpoint (its clock goes on from the last snapshot), and a run folder left by other settings is cleared first.
"""
from __future__ import annotations

import json
from pathlib import Path

from detectron2.engine import HookBase, hooks
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

from yolo_mask_plugin.adapters.train import AllThreadsSegmentationTrainer
from yolo_mask_plugin.adapters.training import train_ultralytics
from yolo_mask_plugin.apps.compare.predictors import load_ultralytics
from yolo_mask_plugin.apps.cost import CostClock
from yolo_mask_plugin.apps.run_record import code_version, finish_run, finished_run, start_run
from yolo_mask_plugin.apps.train_net import Trainer
from yolo_mask_plugin.d2.config import build_cfg

SNAPSHOTS = "snapshots.json"  # [{"weights", "wall_s", "cpu_s", "at"}] in training order, also in the run record


class _TimeUp(Exception):
    """Raised by `TrainingClock` when the run's minutes are spent."""


class TrainingClock(HookBase):
    """Records the training time at each periodic checkpoint DefaultTrainer writes, and stops the run when
    `minutes` of wall time are spent (run after the PeriodicCheckpointer, so its file is there)."""

    def __init__(self, run_dir: Path, period: int, minutes: float | None, snapshots: list[dict]):
        self.run_dir, self.period, self.minutes, self.snapshots = run_dir, period, minutes, snapshots
        self.clock: CostClock | None = None  # started in before_train
        self.last_step: dict | None = None  # the clock at the end of the last training step

    def before_train(self) -> None:
        """Start the clock once the trainer is set up (as Ultralytics' clock starts); a resumed run goes on from its
        last snapshot's time.
        """
        self.clock = CostClock(self.snapshots[-1] if self.snapshots else None)

    def after_step(self) -> None:
        """Read the clock; note a snapshot at each periodic checkpoint; stop the run when its minutes are spent."""
        iteration = self.trainer.iter
        self.last_step = self.clock.read()
        if (iteration + 1) % self.period == 0:
            self.record(f"model_{iteration:07d}.pth", iteration + 1)
        if self.minutes is not None and self.last_step["wall_s"] >= 60 * self.minutes:
            raise _TimeUp

    def record(self, weights: str, iterations: int) -> None:
        """Add the snapshot `weights` (a file in the run folder) at `iterations`, at the last step's time, and write
        snapshots.json.
        """
        self.snapshots.append({"weights": str(self.run_dir / weights), "at": f"{iterations} it",
                                **(self.last_step or self.clock.read())})
        self._write()

    def record_final(self, weights: Path, iterations: int) -> None:
        """The final weights as the last snapshot (in place of the periodic checkpoint of the same iteration), at
        the time of the last step (saving them is not training)."""
        if self.snapshots and self.snapshots[-1]["at"] == f"{iterations} it":
            self.snapshots[-1]["weights"] = str(weights)
            self._write()
        else:
            self.record(weights.name, iterations)

    def _write(self) -> None:
        (self.run_dir / SNAPSHOTS).write_text(json.dumps(self.snapshots, indent=2))


def _snapshots(run_dir: Path) -> list[dict]:
    path = run_dir / SNAPSHOTS
    return json.loads(path.read_text()) if path.is_file() else []


def train_detectron2(run_dir: Path, config_file: str, opts: list[str], minutes: float | None = None) -> dict:
    """DefaultTrainer on `config_file` + `opts` into `run_dir`, for at most `minutes` of wall time.

    Reused when `run_dir` holds a finished run of the same settings and code; an unfinished one of the same settings
    resumes from its last checkpoint.

    Args:
        run_dir (Path): the run's folder (OUTPUT_DIR).
        config_file (str): a config name under `configs/` or a path.
        opts (list[str]): Detectron2 opts (KEY VALUE ...).
        minutes (float | None): stop after this many minutes of training (None: the config's iterations).

    Returns:
        (dict): the run record (`apps.run_record`): settings, weights (model_final.pth), cost, and "snapshots".
    """
    settings = {"config_file": config_file, "opts": list(opts), "minutes": minutes, "code": code_version()}
    record = finished_run(run_dir, settings)
    if record is not None:
        print(f"[compare] reusing the finished Detectron2 run in {run_dir}", flush=True)
        return record
    cfg = build_cfg(config_file, [*opts, "OUTPUT_DIR", str(run_dir)])
    cfg.freeze()
    start_run(run_dir, settings)
    (run_dir / "config.yaml").write_text(cfg.dump())
    setup_logger(name="detectron2")  # DefaultTrainer's progress lines (ETA, losses) every 20 iterations
    seed_all_rng(None if cfg.SEED < 0 else cfg.SEED)  # as default_setup seeds: a negative SEED draws one
    trainer = Trainer(cfg)
    clock = TrainingClock(run_dir, cfg.SOLVER.CHECKPOINT_PERIOD, minutes, _snapshots(run_dir))
    trainer.register_hooks([clock])
    trainer.resume_or_load(resume=True)  # an interrupted run continues from its last checkpoint
    try:
        trainer.train()
    except _TimeUp:
        for hook in trainer.default_hooks:  # what a PreciseBN hook does after the last iteration, if the config has one
            if isinstance(hook, hooks.PreciseBN):
                hook.update_stats()
        trainer.checkpointer.save("model_final")
        print(f"[compare] {run_dir.name}: {minutes} min spent at iteration {trainer.iter + 1}", flush=True)
    weights = run_dir / "model_final.pth"
    if not weights.is_file():
        raise RuntimeError(f"Detectron2 training in {run_dir} ended without writing {weights}")
    clock.record_final(weights, trainer.iter + 1)
    return finish_run(run_dir, settings, weights, _cost(clock.snapshots[-1]), snapshots=clock.snapshots)


def _cost(snapshot: dict) -> dict:
    return {"wall_s": snapshot["wall_s"], "cpu_s": snapshot["cpu_s"]}


def train_ultralytics_model(
    run_dir: Path, family: str, model_file: str, init_weights: str | None, data_yaml: Path, train_args: dict,
    minutes: float | None = None,
) -> dict:
    """Ultralytics' trainer on `data_yaml`, for at most `minutes` (its `time=`).

    Args:
        run_dir (Path): the run's folder (Ultralytics' project/name).
        family (str): "yolo_mask" or "yolo_seg".
        model_file (str): the model yaml.
        init_weights (str | None): weights to start from (None: from scratch).
        data_yaml (Path): the YOLO-seg dataset yaml.
        train_args (dict): Ultralytics train arguments.
        minutes (float | None): stop after this many minutes (None: the epochs in `train_args`).

    Returns:
        (dict): the run record: its weights are `last.pt`, the weights after the last epoch (`best.pt` is picked on
            the val split, which the comparison must not do); the per-epoch snapshots under "snapshots".
    """
    settings = {"family": family, "model": model_file, "init_weights": init_weights, **train_args,
                "minutes": minutes, "code": code_version()}
    record = finished_run(run_dir, settings)
    if record is not None:
        print(f"[compare] reusing the finished Ultralytics run in {run_dir}", flush=True)
        return record
    start_run(run_dir, settings)
    yolo = load_ultralytics(model_file, family)
    if init_weights:
        yolo.load(init_weights)  # Ultralytics' transfer: every tensor whose name and shape match
    snapshots: list[dict] = []
    clock = {"run": CostClock(), "epoch_end": None}

    def start_clock(trainer) -> None:  # once the trainer is set up, where Ultralytics' own `time=` clock starts
        clock["run"] = CostClock()

    def end_epoch(trainer) -> None:  # training time ends with the epoch's last step, before any validation
        clock["epoch_end"] = clock["run"].read()

    def record_epoch(trainer) -> None:  # after the epoch's weights are saved (save_period=1)
        snapshots.append({"weights": str(trainer.wdir / f"epoch{trainer.epoch}.pt"), "at": f"{trainer.epoch + 1} ep",
                          **(clock["epoch_end"] or clock["run"].read())})

    def stop_when_time_is_up(trainer) -> None:
        # Ultralytics checks its own `time=` at optimizer steps only (every nbs / batch batches); stopping at the
        # first batch past the budget keeps it as close to the minutes as the Detectron2 hook, which checks each step
        if minutes is not None and clock["run"].read()["wall_s"] >= 60 * minutes:
            trainer.stop = True

    yolo.add_callback("on_train_start", start_clock)
    yolo.add_callback("on_train_batch_end", stop_when_time_is_up)
    yolo.add_callback("on_train_epoch_end", end_epoch)
    yolo.add_callback("on_model_save", record_epoch)
    extra = {"trainer": AllThreadsSegmentationTrainer} if family == "yolo_seg" else {}  # YOLOMask routes its own
    if minutes is not None:
        extra["time"] = minutes / 60  # hours
    best = train_ultralytics(yolo, data_yaml, run_dir.parent, run_dir.name, save_period=1, **train_args, **extra)
    last = best.parent / "last.pt"
    snapshots = [s for s in snapshots if Path(s["weights"]).is_file()]
    if snapshots:  # the last epoch's snapshot holds what last.pt holds
        snapshots[-1]["weights"] = str(last)
    (run_dir / SNAPSHOTS).write_text(json.dumps(snapshots, indent=2))
    cost = _cost(snapshots[-1]) if snapshots else clock["run"].read()
    return finish_run(run_dir, settings, last, cost, snapshots=snapshots)
