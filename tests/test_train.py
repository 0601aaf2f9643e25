"""Each config family in Detectron2's own DefaultTrainer + COCOEvaluator, and checkpoints that reload."""
from __future__ import annotations

import math

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer

from tests.conftest import small_cfg
from yolo_mask_plugin.apps.train_net import Trainer

FAMILIES = {
    "single_pass": ("shapes/yolo_mask_single_pass.yaml", ["mask"]),
    "two_branch_R50": ("shapes/yolo_mask_two_branch_R_50_FPN.yaml", ["mask"]),
    "yolo_proposals_R50": ("shapes/yolo_proposals_R_50_FPN.yaml", ["cls", "box_reg", "mask"]),
    "mask_rcnn_R50_baseline": ("shapes/mask_rcnn_R_50_FPN.yaml", ["rpn_cls", "rpn_loc", "cls", "box_reg", "mask"]),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_default_trainer_runs_evaluates_and_checkpoints(family, shapes_root, yolo_checkpoint, tmp_path):
    config, losses = FAMILIES[family]
    cfg = small_cfg(config, shapes_root, tmp_path, "MODEL.YOLO.WEIGHTS", str(yolo_checkpoint))
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()

    history = trainer.storage.histories()
    # SimpleTrainer logs each loss separately only when there are several; total_loss always
    for name in ["total_loss"] + ([f"loss_{n}" for n in losses] if len(losses) > 1 else []):
        values = [v for v, _ in history[name].values()]
        assert len(values) == cfg.SOLVER.MAX_ITER and all(math.isfinite(v) for v in values), (name, values)
        assert values[-1] > 0, name

    results = trainer._last_eval_results  # DefaultTrainer's EvalHook ran COCOEvaluator after the last iteration
    assert set(results) == {"bbox", "segm"}
    for task in ("bbox", "segm"):
        assert {"AP", "AP50", "AP75", "APs", "APm", "APl"} <= set(results[task])

    reloaded = Trainer.build_model(cfg)
    DetectionCheckpointer(reloaded).load(str(tmp_path / "model_final.pth"))
    trained = trainer.model.state_dict()
    for key, value in reloaded.state_dict().items():
        assert torch.equal(value, trained[key]), key


def test_mask_head_trains_only_what_it_should(shapes_root, yolo_checkpoint, tmp_path):
    """Single pass: YOLO stays frozen (Ultralytics trains it); laterals and the mask head learn."""
    cfg = small_cfg("shapes/yolo_mask_single_pass.yaml", shapes_root, tmp_path, "MODEL.YOLO.WEIGHTS", str(yolo_checkpoint))
    model = Trainer.build_model(cfg)
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"roi_heads"}
    frozen_before = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainer = Trainer(cfg)
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert all(torch.equal(frozen_before[n], after[n]) for n in frozen_before)
