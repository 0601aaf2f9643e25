"""Shared fixtures: a tiny shapes dataset, YOLO and YOLO-mask checkpoints Ultralytics' trainer really wrote, configs,
the tiny comparison run, and helpers to kill a run for real.

Everything is generated or trained here, offline; nothing is downloaded.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pytest
import torch

# Offline, without download attempts: Ultralytics looks for its label font (Arial.ttf) in YOLO_CONFIG_DIR before
# fetching it, so the tests give it a local font (matplotlib's DejaVu Sans) under that name. Set before
# Ultralytics is imported: it reads YOLO_CONFIG_DIR once.
os.environ.setdefault("YOLO_OFFLINE", "1")
if "YOLO_CONFIG_DIR" not in os.environ:
    os.environ["YOLO_CONFIG_DIR"] = tempfile.mkdtemp(prefix="yolo-config-")
    atexit.register(shutil.rmtree, os.environ["YOLO_CONFIG_DIR"], ignore_errors=True)
    shutil.copy(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf",
                Path(os.environ["YOLO_CONFIG_DIR"]) / "Arial.ttf")

from yolo_mask_plugin.apps.compare import CocoSplit, CompareBudget  # noqa: E402
from yolo_mask_plugin.apps.run_record import FINISHED  # noqa: E402
from yolo_mask_plugin.d2 import register_shapes_dataset  # noqa: E402  (importing the Detectron2 shell registers it)
from yolo_mask_plugin.data import generate_shapes_dataset  # noqa: E402
from yolo_mask_plugin.d2.config import build_cfg  # noqa: E402

TEST_IMAGE_SIZE = 128
YOLO_MASK_CLI = [sys.executable, "-m", "yolo_mask_plugin.apps.cli"]  # `yolo-mask` in a subprocess
TINY = CompareBudget(imgsz=TEST_IMAGE_SIZE, yolo_epochs=2, yolo_batch=8, d2_iters=2, d2_batch=2, workers=0)
# Every box a barely trained model keeps: so that every model has predictions the evaluators can disagree on.
TINY_SCORE_THRESHOLD = 0.0
TINY_PASS_THROUGH = {"d2": 64, "box": 5.0}  # --d2-opts MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE 64, --yolo-args box=5.0
TRAIN_ARGS = {"imgsz": TEST_IMAGE_SIZE, "batch": 8, "workers": 0, "device": "cpu", "seed": 0}  # Ultralytics trainer


SESSION_THREADS = torch.get_num_threads()  # after the plugin's import fixed OMP_NUM_THREADS (core/threads.py)


@pytest.fixture(autouse=True)
def _torch_threads_as_the_session_started():
    """Every test starts with the thread count the session started with: Ultralytics' predictors and validators set
    torch to cpu_count - 1 threads and never set it back, which would slow every later test in this process."""
    torch.set_num_threads(SESSION_THREADS)


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
    from yolo_mask_plugin.adapters import YOLOMask
    from yolo_mask_plugin.adapters.training import train_ultralytics

    model = YOLOMask(str(yolo_checkpoint))
    seen = {}

    def on_train_start(trainer):
        net = trainer.model
        seen["mask_head"] = {k: v.clone() for k, v in net.mask_head.state_dict().items()}
        seen["trainable"] = {n for n, p in net.named_parameters() if p.requires_grad}

    model.add_callback("on_train_start", on_train_start)
    best = train_ultralytics(
        model, shapes_root / "shapes-seg.yaml", tmp_path_factory.mktemp("yolo_mask"), "frozen",
        epochs=3, freeze=len(model.model.model), optimizer="AdamW", lr0=0.005, warmup_epochs=0, **TRAIN_ARGS,
    )
    return SimpleNamespace(best=best, save_dir=best.parent.parent, seen=seen, model=model)


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


@pytest.fixture(scope="session")
def small_shapes_root(tmp_path_factory) -> Path:
    """16 train and 4 val images (not registered in Detectron2): Ultralytics epochs of two batches, for runs that
    must happen, not learn."""
    return generate_shapes_dataset(tmp_path_factory.mktemp("datasets") / "shapes", 16, 4, TEST_IMAGE_SIZE)


def user_compare_splits(user_coco: dict) -> tuple[CocoSplit, CocoSplit]:
    return CocoSplit(*user_coco["train"]), CocoSplit(*user_coco["val"])


def compare_splits(root: Path) -> tuple[CocoSplit, CocoSplit]:
    return tuple(CocoSplit(root / "annotations" / f"instances_{s}.json", root / "images" / s) for s in ("train", "val"))


def start_process(command: list[str], log: Path, **env: str) -> subprocess.Popen:
    """`command` in the background with this environment (plus `env`), its stdout and stderr into `log`."""
    with open(log, "w") as out:  # the child keeps its own handle
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})


def kill_when(process: subprocess.Popen, ready: Callable[[], bool], log: Path, timeout_s: float = 600) -> None:
    """SIGKILL `process` as soon as `ready()`; fail, with the end of its log, if it ends or times out first."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run ended before it could be killed (exit {process.wait()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL


@pytest.fixture(scope="session")
def mask_rcnn_checkpoint(tmp_path_factory) -> Path:
    """A Detectron2 checkpoint of Detectron2's own Mask R-CNN config, written by DetectionCheckpointer: what a
    model-zoo user passes as --mask-rcnn-weights. Random weights (nothing is downloaded), but with FrozenBN
    statistics measured on images, as a pretrained ResNet has them: with the default ones (mean 0, variance 1) a
    random ResNet's activations grow without bound, and it proposes nothing."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.layers import FrozenBatchNorm2d
    from detectron2.modeling import build_model

    from yolo_mask_plugin.apps.compare.models import MASK_RCNN_CONFIG

    cfg = build_cfg(MASK_RCNN_CONFIG, ["MODEL.DEVICE", "cpu", "MODEL.ROI_HEADS.NUM_CLASSES", "4"])
    model = build_model(cfg).eval()

    def calibrate(module: FrozenBatchNorm2d, inputs: tuple[torch.Tensor]) -> None:  # before the layer normalises
        module.running_mean.copy_(inputs[0].mean((0, 2, 3)))
        module.running_var.copy_(inputs[0].var((0, 2, 3)))

    hooks = [m.register_forward_pre_hook(calibrate) for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    with torch.no_grad():
        model.backbone(torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 50)
    for hook in hooks:
        hook.remove()
    folder = tmp_path_factory.mktemp("mask_rcnn_weights")
    DetectionCheckpointer(model, save_dir=str(folder)).save("pretrained")
    return folder / "pretrained.pth"


@pytest.fixture(scope="session")
def killed_tiny_run(user_coco, yolo_checkpoint, mask_rcnn_checkpoint, tmp_path_factory) -> SimpleNamespace:
    """`yolo-mask compare` on the TINY budget, on data users bring (`user_coco`: RLE with holes, split instances,
    crowds, ids 3/7/12, mixed sizes, grayscale and RGBA files), killed (SIGKILL) once its second model's trainer is
    set up: the output folder, the models finished by then, and the first model's weights with their mtime."""
    output = tmp_path_factory.mktemp("compare")
    models = output / "models"
    train, val = user_compare_splits(user_coco)
    command = [
        *YOLO_MASK_CLI, "compare", "--output-dir", str(output),
        "--train-json", str(train.json_file), "--train-images", str(train.image_dir),
        "--val-json", str(val.json_file), "--val-images", str(val.image_dir),
        "--imgsz", str(TINY.imgsz), "--yolo-epochs", str(TINY.yolo_epochs), "--yolo-batch", str(TINY.yolo_batch),
        "--iters", str(TINY.d2_iters), "--d2-batch", str(TINY.d2_batch), "--workers", str(TINY.workers),
        "--yolo-weights", str(yolo_checkpoint), "--mask-rcnn-weights", str(mask_rcnn_checkpoint),
        "--score-threshold", str(TINY_SCORE_THRESHOLD),
        "--d2-opts", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", str(TINY_PASS_THROUGH["d2"]),
        "--yolo-args", f"box={TINY_PASS_THROUGH['box']}",
    ]
    log = output / "killed.log"
    first, second = "yolo_mask", "yolo_seg"  # the order `train_models` trains them in
    # Ultralytics' trainer writes args.yaml as it sets up
    kill_when(start_process(command, log), lambda: (models / second / "args.yaml").is_file(), log)
    weights = Path(json.loads((models / first / FINISHED).read_text())["weights"])
    return SimpleNamespace(
        output=output, finished=sorted(p.parent.name for p in models.glob(f"*/{FINISHED}")),
        first_weights=weights, first_weights_mtime=weights.stat().st_mtime_ns,
    )


@pytest.fixture(scope="session")
def tiny_run(killed_tiny_run, user_coco, yolo_checkpoint, mask_rcnn_checkpoint) -> tuple[Path, dict]:
    """The killed tiny comparison run again, to its end, as a rerun of the command does: (output folder, results)."""
    from yolo_mask_plugin.apps.compare import run_compare

    output = killed_tiny_run.output
    results = run_compare(
        output, *user_compare_splits(user_coco), budget=TINY, yolo_weights=str(yolo_checkpoint),
        mask_rcnn_weights=str(mask_rcnn_checkpoint), score_threshold=TINY_SCORE_THRESHOLD, speed_images=4,
        warmup_images=1, grid_images=2, d2_opts=["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", str(TINY_PASS_THROUGH["d2"])],
        yolo_args={"box": TINY_PASS_THROUGH["box"]},
    )
    return output, results

