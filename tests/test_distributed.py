"""The plugin's models under DistributedDataParallel: 2 processes on the CPU (gloo), each framework's own DDP settings.

Detectron2's `DefaultTrainer` wraps its model with `create_ddp_model(model, broadcast_buffers=False)`, so
find_unused_parameters=False: a trainable parameter without a gradient in one step stops the next step. Ultralytics
wraps with find_unused_parameters=True and no buffer sync. Neither launches several processes on a CPU
(`create_ddp_model` passes `device_ids`, Ultralytics' DDP is CUDA-only), so the processes are spawned here and the
models wrapped with those settings. Every batch has an image without instances, one rank gets a batch without
any, and every box is small enough to pool from the finest level only, leaving the other levels without RoIs.
Ultralytics' own DDP launch file runs as generated.
"""
from __future__ import annotations

import math
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.modeling.poolers import assign_boxes_to_levels
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage
from torch.nn.parallel import DistributedDataParallel
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import load_checkpoint
from ultralytics.utils import DEFAULT_CFG
from ultralytics.utils.dist import ddp_cleanup, generate_ddp_file
from ultralytics.utils.patches import torch_load
from ultralytics.utils.torch_utils import TORCH_2_13

from tests.conftest import TEST_IMAGE_SIZE, small_cfg
from tests.test_train import FAMILIES
from tests.test_ultralytics_shell import TRAIN_ARGS, _results_csv
from yolo_mask_plugin.adapters import YOLOMaskModel, YOLOMaskTrainer
from yolo_mask_plugin.adapters.args import with_mask_args
from yolo_mask_plugin.adapters.train import GT_MASK_ARGS
from yolo_mask_plugin.apps.train_net import Trainer
from yolo_mask_plugin.core.roi_align import MultiLevelRoIAlign

WORLD_SIZE = 2
STEPS = 3
# What Detectron2's DefaultTrainer gives DistributedDataParallel (besides device_ids, which the CPU refuses).
DETECTRON2_DDP = {"find_unused_parameters": False, "broadcast_buffers": False}
# What Ultralytics' BaseTrainer._setup_train gives it (without compile; device_ids likewise left out).
ULTRALYTICS_DDP = {
    "find_unused_parameters": True, "static_graph": False,
    "forward_sync_buffers" if TORCH_2_13 else "broadcast_buffers": False,
}
# The Detectron2 families of the plugin, ResNets shrunk to R18 with 64 channels to fit the test budget.
RESNET_18 = [
    "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64", "MODEL.FPN.OUT_CHANNELS", "64",
    "MODEL.ROI_MASK_HEAD.CONV_DIM", "64",
]
DETECTRON2_MODELS = {
    "single_pass": (FAMILIES["single_pass"][0], []),
    "two_branch_R18": (FAMILIES["two_branch_R50"][0], RESNET_18),
    "yolo_proposals_R18": (FAMILIES["yolo_proposals_R50"][0], RESNET_18),
}
# YOLOMaskModel with Ultralytics' settings, and with Detectron2's, which need a gradient for every parameter.
ULTRALYTICS_MODELS = {"yolo_mask_ultralytics_ddp": ULTRALYTICS_DDP, "yolo_mask_detectron2_ddp": DETECTRON2_DDP}
# Boxes under 112 px (the FPN rule's P2 bound): only the finest pooled level gets RoIs, in both shells.
BOXES = torch.tensor([[10.0, 12.0, 42.0, 40.0], [64.0, 58.0, 100.0, 90.0]])
CLASSES = torch.tensor([0, 2])


def _instance_counts(rank: int, step: int) -> list[int]:
    """Instances per image: the second image has none; on rank 1 the last batch has none at all."""
    return [0, 0] if (rank, step) == (1, STEPS - 1) else [len(BOXES), 0]


def _box_masks(n: int) -> torch.Tensor:
    masks = torch.zeros(n, TEST_IMAGE_SIZE, TEST_IMAGE_SIZE)
    for mask, (x0, y0, x1, y1) in zip(masks, BOXES.int().tolist()):
        mask[y0:y1, x0:x1] = 1
    return masks


def _images(rank: int, step: int) -> torch.Tensor:
    """Noise of each rank's own, so the ranks' gradients differ and only DDP's all-reduce keeps them equal."""
    generator = torch.Generator().manual_seed(1000 * rank + step)
    return torch.randint(0, 256, (2, 3, TEST_IMAGE_SIZE, TEST_IMAGE_SIZE), dtype=torch.uint8, generator=generator)


def _detectron2_batch(rank: int, step: int) -> list[dict]:
    batch = []
    for image, n in zip(_images(rank, step), _instance_counts(rank, step)):
        instances = Instances(
            (TEST_IMAGE_SIZE, TEST_IMAGE_SIZE), gt_boxes=Boxes(BOXES[:n]), gt_classes=CLASSES[:n],
            gt_masks=BitMasks(_box_masks(n).bool()),
        )
        batch.append({"image": image, "instances": instances, "height": TEST_IMAGE_SIZE, "width": TEST_IMAGE_SIZE})
    return batch


def _ultralytics_batch(rank: int, step: int) -> dict:
    """An Ultralytics training batch after `preprocess_batch`: images in [0, 1], normalised xywh boxes, one mask per
    instance at input resolution (`overlap_mask=False`, `mask_ratio=1`)."""
    counts = _instance_counts(rank, step)
    batch_idx = torch.cat([torch.full((n,), float(i)) for i, n in enumerate(counts)])
    boxes = torch.cat([BOXES[:n] for n in counts])
    xywh = torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], dim=1) / TEST_IMAGE_SIZE
    classes = torch.cat([CLASSES[:n] for n in counts]).float()[:, None]
    masks = torch.cat([_box_masks(n) for n in counts])
    return {"img": _images(rank, step).float() / 255, "batch_idx": batch_idx, "cls": classes, "bboxes": xywh,
            "masks": masks}


def _total_loss(output) -> torch.Tensor:
    """Detectron2 models return a dict of losses, Ultralytics models (loss vector, items)."""
    return sum(output.values()) if isinstance(output, dict) else output[0].sum()


def _train_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ddp_settings: dict, batches: list) -> dict:
    """A few steps of `model` wrapped in DDP with `ddp_settings`; losses, parameters after, and what trained."""
    ddp = DistributedDataParallel(model, **ddp_settings)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    before = {n: p.detach().clone() for n, p in trainable.items()}
    losses = []
    with EventStorage(0):  # Detectron2's models log into it
        for batch in batches:
            loss = _total_loss(ddp(batch))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return {
        "losses": losses,
        "parameters": {n: p.detach().clone() for n, p in model.named_parameters()},
        "trained": sorted(n for n, p in trainable.items() if not torch.equal(p, before[n])),
    }


def _train_every_model(rank: int, rendezvous: str, out: Path, shapes_root: Path, yolo_checkpoint: Path) -> None:
    """One spawned rank: every model a few DDP steps; each result saved as `<model>_rank<rank>.pt`."""
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=WORLD_SIZE,
                            timeout=timedelta(minutes=3))
    torch.set_num_threads(1)  # one core per rank
    try:
        for name, (config, opts) in DETECTRON2_MODELS.items():
            cfg = small_cfg(config, shapes_root, out / name, "MODEL.YOLO.WEIGHTS", str(yolo_checkpoint), *opts)
            model = Trainer.build_model(cfg).train()
            batches = [_detectron2_batch(rank, step) for step in range(STEPS)]
            result = _train_steps(model, Trainer.build_optimizer(cfg, model), DETECTRON2_DDP, batches)
            torch.save(result, out / f"{name}_rank{rank}.pt")
        for name, ddp_settings in ULTRALYTICS_MODELS.items():
            model = YOLOMaskModel("yolo11n.yaml", nc=4, verbose=False).train()
            model.args = get_cfg(with_mask_args(DEFAULT_CFG), GT_MASK_ARGS)  # the hyperparameters its loss reads
            optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
            batches = [_ultralytics_batch(rank, step) for step in range(STEPS)]
            torch.save(_train_steps(model, optimizer, ddp_settings, batches), out / f"{name}_rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_runs(shapes_root, yolo_checkpoint, tmp_path_factory) -> dict[str, list[dict]]:
    """Per model, what each rank saved after its DDP steps (one spawn for all: process start-up dominates)."""
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_train_every_model, args=(f"file://{out / 'rendezvous'}", out, shapes_root, yolo_checkpoint),
             nprocs=WORLD_SIZE)
    names = [*DETECTRON2_MODELS, *ULTRALYTICS_MODELS]
    return {n: [torch.load(out / f"{n}_rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)] for n in names}


def test_batches_leave_coarser_levels_without_boxes():
    detectron2_levels = assign_boxes_to_levels([Boxes(BOXES)], 2, 5, canonical_box_size=224, canonical_level=4)
    core_levels = MultiLevelRoIAlign([8, 16, 32], 14).level_of([BOXES])
    assert detectron2_levels.eq(0).all() and core_levels.eq(0).all()


@pytest.mark.parametrize("name", [*DETECTRON2_MODELS, *ULTRALYTICS_MODELS])
def test_ranks_train_and_end_with_identical_parameters(ddp_runs, name):
    ranks = ddp_runs[name]
    assert all(math.isfinite(loss) for r in ranks for loss in r["losses"]), [r["losses"] for r in ranks]
    assert ranks[0]["losses"] != ranks[1]["losses"]  # each rank saw its own data
    assert ranks[0]["trained"] and ranks[0]["trained"] == ranks[1]["trained"]
    for key, value in ranks[0]["parameters"].items():
        assert torch.equal(value, ranks[1]["parameters"][key]), key


def test_ultralytics_ddp_launch_file_rebuilds_the_trainer_and_trains(small_shapes_root, yolo_checkpoint, tmp_path):
    """Ultralytics' multi-GPU path pickles the trainer class, its arguments and the model, and writes a script that
    rebuilds the trainer from them in each fresh worker process and trains. That script, as generated, runs here
    in a fresh interpreter (one process: on the CPU the workers' process group is not set up)."""
    trainer = YOLOMaskTrainer(overrides={
        **TRAIN_ARGS, "model": str(yolo_checkpoint), "data": str(small_shapes_root / "shapes-seg.yaml"), "epochs": 1,
        "mask": 1.5, "val": False, "plots": False, "project": str(tmp_path), "name": "ddp",
    })
    detector, _ = load_checkpoint(yolo_checkpoint)
    # a mask head `args.model` would not rebuild: the launched process must train the pickled model
    trainer.model = trainer.get_model(cfg={**detector.yaml, "mask_head": {"conv_dim": 32}}, weights=detector)
    launch_file = generate_ddp_file(trainer)
    try:
        run = subprocess.run([sys.executable, launch_file], capture_output=True, text=True)
    finally:
        ddp_cleanup(trainer, launch_file)
    assert run.returncode == 0, run.stderr[-4000:]
    checkpoint = torch_load(trainer.last, map_location="cpu")
    assert isinstance(checkpoint["model"], YOLOMaskModel) and checkpoint["model"].mask_head.spec["conv_dim"] == 32
    assert checkpoint["train_args"]["mask"] == 1.5
    rows = _results_csv(trainer.save_dir)
    assert len(rows) == 1 and rows[0]["train/mask_loss"] > 0
