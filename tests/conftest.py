"""Shared fixtures: a tiny shapes dataset, YOLO and YOLO-mask checkpoints Ultralytics' trainer really wrote, configs.

Everything is generated or trained here, offline; nothing is downloaded.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pytest

# Offline, without download attempts: Ultralytics looks for its label font (Arial.ttf) in YOLO_CONFIG_DIR before
# fetching it, so the tests give it a local font (matplotlib's DejaVu Sans) under that name. Set before
# Ultralytics is imported: it reads YOLO_CONFIG_DIR once.
os.environ.setdefault("YOLO_OFFLINE", "1")
if "YOLO_CONFIG_DIR" not in os.environ:
    os.environ["YOLO_CONFIG_DIR"] = tempfile.mkdtemp(prefix="yolo-config-")
    atexit.register(shutil.rmtree, os.environ["YOLO_CONFIG_DIR"], ignore_errors=True)
    shutil.copy(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf",
                Path(os.environ["YOLO_CONFIG_DIR"]) / "Arial.ttf")

from yolo_mask_plugin.d2 import register_shapes_dataset  # noqa: E402  (importing the Detectron2 shell registers it)
from yolo_mask_plugin.data import generate_shapes_dataset  # noqa: E402
from yolo_mask_plugin.d2.config import build_cfg  # noqa: E402

TEST_IMAGE_SIZE = 128
TRAIN_ARGS = {"imgsz": TEST_IMAGE_SIZE, "batch": 8, "workers": 0, "device": "cpu", "seed": 0}  # Ultralytics trainer


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory) -> Path:
    """A small shapes dataset (registered as shapes_train / shapes_val) at the size the tests train at."""
    root = generate_shapes_dataset(tmp_path_factory.mktemp("datasets") / "shapes", 48, 12, TEST_IMAGE_SIZE)
    register_shapes_dataset(root)
    return root


@pytest.fixture(scope="session")
def yolo_checkpoint(shapes_root, tmp_path_factory) -> Path:
    """`best.pt` from one epoch of Ultralytics' own trainer: a real checkpoint file, loaded from a path."""
    from yolo_mask_plugin.adapters.training import train_yolo_detector

    return train_yolo_detector(
        shapes_root / "shapes-seg.yaml", tmp_path_factory.mktemp("ultralytics"), epochs=1,
        imgsz=TEST_IMAGE_SIZE, batch=8, workers=0, device="cpu", val=False,
    )


@pytest.fixture(scope="session")
def frozen_detector_run(shapes_root, yolo_checkpoint, tmp_path_factory):
    """YOLO-mask fine-tuned from a detection checkpoint with the whole detector frozen (`freeze=` every layer)."""
    import torch

    from yolo_mask_plugin.adapters import YOLOMask
    from yolo_mask_plugin.adapters.training import train_ultralytics

    model = YOLOMask(str(yolo_checkpoint))
    seen = {}

    def on_train_start(trainer):
        net = trainer.model
        seen["mask_head"] = {k: v.clone() for k, v in net.mask_head.state_dict().items()}
        seen["trainable"] = {n for n, p in net.named_parameters() if p.requires_grad}
        seen["threads"] = torch.get_num_threads()

    model.add_callback("on_train_start", on_train_start)
    threads = torch.get_num_threads()
    best = train_ultralytics(
        model, shapes_root / "shapes-seg.yaml", tmp_path_factory.mktemp("yolo_mask"), "frozen",
        epochs=3, freeze=len(model.model.model), optimizer="AdamW", lr0=0.005, warmup_epochs=0, **TRAIN_ARGS,
    )
    return SimpleNamespace(best=best, save_dir=best.parent.parent, seen=seen, threads=threads, model=model)


def small_cfg(config_name: str, shapes_root: Path, output_dir: Path, *opts: str):
    """A `configs/shapes/` config shrunk to a few CPU iterations on the test dataset."""
    register_shapes_dataset(shapes_root)
    cfg = build_cfg(
        config_name,
        [
            "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "3", "SOLVER.STEPS", "()", "SOLVER.WARMUP_ITERS", "0",
            "SOLVER.CHECKPOINT_PERIOD", "1000", "DATALOADER.NUM_WORKERS", "0",
            "INPUT.MIN_SIZE_TRAIN", f"({TEST_IMAGE_SIZE},)", "INPUT.MAX_SIZE_TRAIN", str(TEST_IMAGE_SIZE),
            "INPUT.MIN_SIZE_TEST", str(TEST_IMAGE_SIZE), "INPUT.MAX_SIZE_TEST", str(TEST_IMAGE_SIZE),
            "MODEL.YOLO.IMAGE_SIZE", str(TEST_IMAGE_SIZE), "MODEL.DEVICE", "cpu",
            # a one-epoch YOLO (and a 3-iteration box head) is rarely confident: keep all their boxes so every
            # stage, and COCOEvaluator's segm task, sees some (it reports only bbox when nothing is detected)
            "MODEL.YOLO.CONF_THRESH_TRAIN", "0.0", "MODEL.YOLO.CONF_THRESH_TEST", "0.0",
            "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "SEED", "0", "OUTPUT_DIR", str(output_dir),
            *opts,
        ],
    )
    return cfg


@pytest.fixture(scope="session")
def user_coco(tmp_path_factory):
    """A COCO train/val pair as users bring them (`tests/user_coco.py`): RLE with holes, split instances, crowds,
    category ids 3/7/12, images of three sizes saved as RGB, grayscale, RGBA and JPEG."""
    from tests.user_coco import write_user_coco

    root = tmp_path_factory.mktemp("user_coco")
    return {split: write_user_coco(root, split, n, seed) for split, n, seed in (("train", 12, 0), ("val", 6, 1))}


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`yolo-mask <args>` in a fresh interpreter, as a user runs it: YOLO_MASK_DEBUG unset unless `env` sets it."""
    environment = {k: v for k, v in os.environ.items() if k != "YOLO_MASK_DEBUG"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "yolo_mask_plugin.apps.cli", *args], capture_output=True, text=True, cwd=cwd,
        env=environment, timeout=600,
    )
