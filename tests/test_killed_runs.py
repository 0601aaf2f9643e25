"""Runs killed for real and started again: the resuming that `--resume`, Ultralytics' `resume=True` and the
comparison's reuse of finished models promise.

Each run is a subprocess of the real entry point (`yolo-mask train`, `YOLOMask(...).train`, `yolo-mask compare`),
killed with SIGKILL as soon as the file it must resume from is complete, then started again in this process.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from ultralytics.utils.patches import torch_load

from tests.conftest import TEST_IMAGE_SIZE, YOLO_MASK_CLI, kill_when, start_process
from tests.test_ultralytics_shell import TRAIN_ARGS, _results_csv
from yolo_mask_plugin.adapters import YOLOMask
from yolo_mask_plugin.adapters.training import train_ultralytics
from yolo_mask_plugin.apps.cli import main as cli_main
from yolo_mask_plugin.apps.compare.models import MODEL_LABELS
from yolo_mask_plugin.apps.run_record import FINISHED
from yolo_mask_plugin.d2 import register_shapes_dataset

MAX_ITER, CHECKPOINT_PERIOD = 6, 2


def _tagged_checkpoint(output_dir: Path) -> str:
    """What Detectron2's `last_checkpoint` names (written after the checkpoint itself), or "" before the first."""
    tag = output_dir / "last_checkpoint"
    return tag.read_text().strip() if tag.is_file() else ""


def test_detectron2_train_resumes_from_its_last_checkpoint(shapes_root, yolo_checkpoint, tmp_path):
    """`yolo-mask train` killed after its first periodic checkpoint; `--resume` goes on from the next iteration."""
    out = tmp_path / "run"
    command = ["train", "--config-file", "shapes/yolo_mask_single_pass.yaml"]
    opts = [
        "MODEL.DEVICE", "cpu", "MODEL.YOLO.WEIGHTS", str(yolo_checkpoint), "OUTPUT_DIR", str(out), "DATASETS.TEST", "()",
        "INPUT.MIN_SIZE_TRAIN", f"({TEST_IMAGE_SIZE},)", "INPUT.MAX_SIZE_TRAIN", str(TEST_IMAGE_SIZE),
        "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", str(MAX_ITER),
        "SOLVER.CHECKPOINT_PERIOD", str(CHECKPOINT_PERIOD), "SOLVER.STEPS", "()", "SOLVER.WARMUP_ITERS", "0",
        "MODEL.ROI_MASK_HEAD.CONV_DIM", "32",
    ]
    log = tmp_path / "killed.log"
    process = start_process([*YOLO_MASK_CLI, *command, *opts], log, YOLO_MASK_DATASETS=str(shapes_root.parent))
    kill_when(process, lambda: bool(_tagged_checkpoint(out)), log)
    killed_at = _tagged_checkpoint(out)
    assert not (out / "model_final.pth").exists()
    written = {p.name: p.stat().st_mtime_ns for p in out.glob("model_*.pth") if p.name <= killed_at}

    register_shapes_dataset(shapes_root)  # what the subprocess found under YOLO_MASK_DATASETS
    cli_main([*command, "--resume", *opts])

    resumed_from = int(killed_at[len("model_") : -len(".pth")]) + 1
    assert f"Starting training from iteration {resumed_from}" in (out / "log.txt").read_text()
    assert _tagged_checkpoint(out) == "model_final.pth"
    assert torch.load(out / "model_final.pth", weights_only=False)["iteration"] == MAX_ITER - 1
    periodic = {f"model_{i:07d}.pth" for i in range(CHECKPOINT_PERIOD - 1, MAX_ITER, CHECKPOINT_PERIOD)}
    assert {p.name for p in out.glob("model_0*.pth")} == periodic
    assert {name: (out / name).stat().st_mtime_ns for name in written} == written  # the killed run's, untouched
    iterations = [json.loads(line)["iteration"] for line in (out / "metrics.json").read_text().splitlines()]
    assert iterations == sorted(set(iterations)) and iterations[-1] == MAX_ITER - 1


@pytest.mark.ultralytics_shell
def test_yolo_mask_run_resumes_with_its_mask_gain_and_mask_head(small_shapes_root, yolo_checkpoint, tmp_path):
    """A YOLOMask run killed after its first epoch's checkpoint; `resume=True` trains the second epoch from it."""
    run = tmp_path / "run"
    train_args = {
        **TRAIN_ARGS, "data": str(small_shapes_root / "shapes-seg.yaml"), "epochs": 2, "mask": 1.5, "save_period": 1,
        "val": False, "plots": False, "project": str(tmp_path), "name": run.name,
    }
    code = f"from yolo_mask_plugin.adapters import YOLOMask; YOLOMask({str(yolo_checkpoint)!r}).train(**{train_args!r})"
    log = tmp_path / "killed.log"
    process = start_process([sys.executable, "-c", code], log)
    kill_when(process, (run / "weights" / "epoch0.pt").is_file, log)  # save_period's copy, written after last.pt
    last = run / "weights" / "last.pt"
    killed = torch_load(last, map_location="cpu")
    assert killed["epoch"] == 0 and killed["train_args"]["mask"] == 1.5
    killed_head = killed["ema"].mask_head.float().state_dict()

    model = YOLOMask(str(last))
    seen = {}
    model.add_callback("on_train_start", lambda trainer: seen.update(
        start_epoch=trainer.start_epoch, gain=trainer.args.mask,
        head={k: v.clone() for k, v in trainer.model.mask_head.state_dict().items()},
    ))
    model.add_callback("on_train_batch_end", lambda trainer: seen.setdefault("loss_gain", trainer.model.criterion.mask_gain))
    train_ultralytics(model, small_shapes_root / "shapes-seg.yaml", tmp_path, run.name, resume=True)

    assert seen["start_epoch"] == 1 and seen["gain"] == seen["loss_gain"] == 1.5
    assert killed_head.keys() == seen["head"].keys()
    for key, value in killed_head.items():
        assert torch.equal(seen["head"][key], value), key
    assert [row["epoch"] for row in _results_csv(run)] == [1, 2]
    for weights in ("last.pt", "best.pt"):
        assert torch_load(run / "weights" / weights, map_location="cpu")["train_args"]["mask"] == 1.5, weights


def test_compare_killed_during_the_second_model_reuses_the_first(killed_tiny_run, tiny_run):
    """conftest.py's `tiny_run` is the rerun of a `yolo-mask compare` killed while its second model trained."""
    assert killed_tiny_run.finished == ["yolo_mask"]
    output, results = tiny_run
    weights = killed_tiny_run.first_weights
    assert results["models"]["yolo_mask"]["train"]["weights"] == str(weights)
    assert weights.stat().st_mtime_ns == killed_tiny_run.first_weights_mtime
    assert all((output / "models" / name / FINISHED).is_file() for name in MODEL_LABELS)
