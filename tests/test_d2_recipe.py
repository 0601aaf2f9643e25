"""Ultralytics' recipe pieces in Detectron2's loop (yolo_mask_plugin.d2.recipe), each checked against Ultralytics'
own arithmetic over a few real training steps of a tiny model: model EMA (ultralytics ModelEMA), the bias LR and
momentum warm-up (the `np.interp` lines of BaseTrainer._do_train) and whole-model gradient clipping
(BaseTrainer.optimizer_step's `clip_grad_norm_(model.parameters(), 10.0)`).

The tiny model trains inside the plugin's own DefaultTrainer (`apps.train_net.Trainer`) through Detectron2's
extension points (build_model, build_train_loader, build_test_loader, build_evaluator), so the yacs keys, the
optimizer builder, the hook placement, checkpointing and resume are the ones `yolo-mask train` runs.
"""
from __future__ import annotations

import copy
import itertools
import shutil

import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, get_cfg
from detectron2.solver import WarmupParamScheduler
from detectron2.solver.build import get_default_optimizer_params
from fvcore.common.param_scheduler import MultiStepParamScheduler
from omegaconf import OmegaConf
from detectron2.evaluation import DatasetEvaluator
from torch import nn
from ultralytics.utils.torch_utils import ModelEMA

from .numerics import EPS_FLOAT32
from yolo_mask_plugin.apps.train_net import Trainer, lazy_train
from yolo_mask_plugin.d2.config import add_yolo_mask_config, get_config_file
from yolo_mask_plugin.d2.ema import EMA_WEIGHTS_FILE, ModelEMAHook
from yolo_mask_plugin.d2.recipe import lazy_clip_gradients, lazy_recipe, yacs_recipe
from yolo_mask_plugin.d2.solver import build_optimizer



class TinyModel(nn.Module):
    """Linear-BatchNorm-Linear: parameters, float buffers (BN statistics) and an integer buffer (num_batches_tracked).

    Training returns Detectron2's loss dict; evaluation returns the model's own floating-point state, flattened, so
    an evaluator sees exactly the weights of the model it was given."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, batch):
        x, y = batch
        if self.training:
            return {"loss_mse": nn.functional.mse_loss(self.body(x), y)}
        return flat_state(self)


def flat_state(model: nn.Module) -> torch.Tensor:
    return torch.cat([v.detach().flatten() for v in model.state_dict().values() if v.dtype.is_floating_point])


def batches(n: int = 6) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(16, 4, generator=g), 3 * torch.randn(16, 2, generator=g)) for _ in range(n)]


def cycled_batches():
    return itertools.cycle(batches())


class RecordingEvaluator(DatasetEvaluator):
    """Keeps what the evaluated model returned (its flattened state) in `TinyTrainer.evaluated`."""

    def reset(self):
        self.outputs = []

    def process(self, inputs, outputs):
        self.outputs.append(outputs)

    def evaluate(self):
        TinyTrainer.evaluated.append(self.outputs[0])
        return {"tiny": {"weights_sum": float(self.outputs[0].sum())}}


class TinyTrainer(Trainer):
    """The plugin's Trainer on TinyModel, through DefaultTrainer's own extension points."""

    evaluated: list[torch.Tensor] = []

    @classmethod
    def build_model(cls, cfg):
        torch.manual_seed(1)  # the initial weights MODEL.WEIGHTS replaces
        return TinyModel()

    @classmethod
    def build_train_loader(cls, cfg):
        return cycled_batches()

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return [batches(1)[0]]

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return RecordingEvaluator()


class OneBatchTrainer(TinyTrainer):
    """Trains on one batch over and over: a resumed run sees what the uninterrupted one saw (Detectron2 does not
    checkpoint the data loader's position)."""

    @classmethod
    def build_train_loader(cls, cfg):
        return itertools.repeat(batches(1)[0])


def tiny_cfg(output_dir, **opts):
    cfg = get_cfg()
    add_yolo_mask_config(cfg)
    cfg.merge_from_list([
        "OUTPUT_DIR", str(output_dir), "SOLVER.MAX_ITER", 5, "SOLVER.BASE_LR", 0.05, "SOLVER.STEPS", (),
        "SOLVER.WARMUP_ITERS", 1, "SOLVER.WARMUP_FACTOR", 1.0,  # a constant LR
        "SOLVER.CHECKPOINT_PERIOD", 1000, "SOLVER.IMS_PER_BATCH", 16, "TEST.EVAL_PERIOD", 0,
        "DATASETS.TRAIN", ("tiny",), "DATASETS.TEST", ("tiny",),
        *itertools.chain.from_iterable(opts.items()),
    ])
    return cfg


def loaded_weights(tmp_path) -> str:
    """MODEL.WEIGHTS: a model unlike TinyTrainer.build_model's, so an EMA copied before loading would show."""
    torch.manual_seed(2)
    path = tmp_path / "init.pth"
    torch.save({"model": TinyModel().state_dict()}, path)
    return str(path)


def ema_hook(trainer) -> ModelEMAHook:
    (hook,) = [h for h in trainer._hooks if isinstance(h, ModelEMAHook)]
    return hook


def ema_tolerance(n_updates: int, *states: torch.Tensor) -> float:
    """Each update is a lerp (a convex combination) rounding within ~2 eps of the largest weight; n of them add."""
    return 2 * n_updates * EPS_FLOAT32 * max(float(s.abs().max()) for s in states)


@pytest.mark.parametrize("decay, tau", [(0.9999, 2000.0), (0.9, 2.0)])  # Ultralytics' ramp; one visible in 5 steps
def test_model_ema_is_ultralytics_model_ema_and_is_what_evaluation_sees(decay, tau, tmp_path):
    weights = loaded_weights(tmp_path)
    cfg = tiny_cfg(tmp_path / "run", **{"MODEL_EMA.ENABLED": True, "MODEL_EMA.DECAY": decay, "MODEL_EMA.TAU": tau,
                                        "MODEL.WEIGHTS": weights, "TEST.EVAL_PERIOD": 2})
    TinyTrainer.evaluated = []
    trainer = TinyTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()

    # Ultralytics' loop on the same model, weights and batches: step, then ModelEMA.update (optimizer_step)
    model = TinyModel()
    model.load_state_dict(torch.load(weights)["model"])
    optimizer = build_optimizer(cfg, model)
    ema = ModelEMA(model, decay=decay, tau=tau)
    expected_evaluated = {}
    for step, batch in enumerate(batches()[: cfg.SOLVER.MAX_ITER], start=1):
        loss = sum(model(batch).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update(model)
        expected_evaluated[step] = flat_state(ema.ema)

    hook = ema_hook(trainer)
    assert hook.updates == ema.updates == 5
    final = flat_state(hook.model)
    torch.testing.assert_close(final, expected_evaluated[5], rtol=0, atol=ema_tolerance(5, final))
    gap = float((final - flat_state(model)).abs().max())
    assert gap > 10 * ema_tolerance(5, final), "the test needs an EMA that differs from the model beyond rounding"
    # evaluation at iterations 2 and 4 (TEST.EVAL_PERIOD) and after training saw the averaged model
    assert len(TinyTrainer.evaluated) == 3
    for seen, step in zip(TinyTrainer.evaluated, (2, 4, 5)):
        torch.testing.assert_close(seen, expected_evaluated[step], rtol=0, atol=ema_tolerance(step, seen))
    # the averaged model is saved for MODEL.WEIGHTS
    saved = torch.load(tmp_path / "run" / EMA_WEIGHTS_FILE)
    assert saved["ema_updates"] == 5
    deployed = TinyModel()
    DetectionCheckpointer(deployed).load(str(tmp_path / "run" / EMA_WEIGHTS_FILE))
    torch.testing.assert_close(deployed.state_dict(), hook.model.state_dict(), rtol=0, atol=0)


def test_model_ema_is_checkpointed_and_resume_continues_it(tmp_path):
    opts = {"MODEL_EMA.ENABLED": True, "MODEL_EMA.DECAY": 0.9, "MODEL_EMA.TAU": 2.0, "SOLVER.MAX_ITER": 6,
            "SOLVER.CHECKPOINT_PERIOD": 3, "MODEL.WEIGHTS": loaded_weights(tmp_path)}
    whole = OneBatchTrainer(tiny_cfg(tmp_path / "whole", **opts))
    whole.resume_or_load(resume=False)
    whole.train()

    # a run stopped after iteration 2's checkpoint, resumed in a fresh trainer (another initial model)
    (tmp_path / "resumed").mkdir()
    shutil.copy(tmp_path / "whole" / "model_0000002.pth", tmp_path / "resumed")
    (tmp_path / "resumed" / "last_checkpoint").write_text("model_0000002.pth")
    resumed = OneBatchTrainer(tiny_cfg(tmp_path / "resumed", **opts))
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 3 and ema_hook(resumed).updates == 3
    resumed.train()

    assert ema_hook(resumed).updates == ema_hook(whole).updates == 6
    expected, got = flat_state(ema_hook(whole).model), flat_state(ema_hook(resumed).model)
    torch.testing.assert_close(got, expected, rtol=0, atol=ema_tolerance(6, expected))


def test_bias_lr_and_momentum_warm_up_as_ultralytics(tmp_path):
    warmup_bias_lr, warmup_momentum, momentum, nw = 0.1, 0.8, 0.937, 4  # Ultralytics' defaults, 4 warm-up iterations
    cfg = tiny_cfg(tmp_path, **{"SOLVER.WARMUP_BIAS_LR": warmup_bias_lr, "SOLVER.WARMUP_MOMENTUM": warmup_momentum,
                                "SOLVER.MOMENTUM": momentum, "SOLVER.WARMUP_ITERS": nw, "SOLVER.WARMUP_FACTOR": 0.0,
                                "SOLVER.MAX_ITER": 7})
    trainer = TinyTrainer(cfg)
    seen = []  # per iteration: (is_bias, lr, momentum) of every group, at the optimizer's step
    trainer.optimizer.register_step_pre_hook(
        lambda opt, args, kwargs: seen.append([(g.get("param_group") == "bias", g["lr"], g["momentum"])
                                               for g in opt.param_groups])
    )
    trainer.train()

    groups = trainer.optimizer.param_groups
    assert {g.get("param_group") == "bias" for g in groups} == {True, False}
    bias_params = {id(p) for g in groups if g.get("param_group") == "bias" for p in g["params"]}
    model_biases = {id(m.bias) for m in trainer.model.modules() if getattr(m, "bias", None) is not None}
    assert bias_params == model_biases
    assert len(seen) == cfg.SOLVER.MAX_ITER
    for ni, step in enumerate(seen):
        for (is_bias, lr, mom), group in zip(step, groups):
            # BaseTrainer._do_train, for ni <= nw (lf == 1: Detectron2's schedule is constant after warm-up)
            xi = [0, nw]
            target_lr = group["initial_lr"]
            want_lr = np.interp(ni, xi, [warmup_bias_lr if is_bias else 0.0, target_lr]) if ni <= nw else target_lr
            want_mom = np.interp(ni, xi, [warmup_momentum, momentum]) if ni <= nw else momentum
            assert lr == pytest.approx(want_lr, rel=1e-12, abs=1e-15), (ni, is_bias)
            assert mom == pytest.approx(want_mom, rel=1e-12), ni


@pytest.mark.parametrize("optimizer", ["SGD", "ADAMW"])
def test_full_model_gradient_clipping_is_clip_grad_norm_over_all_parameters(optimizer, tmp_path):
    clip = {"SOLVER.CLIP_GRADIENTS.ENABLED": True, "SOLVER.CLIP_GRADIENTS.CLIP_TYPE": "full_model",
            "SOLVER.CLIP_GRADIENTS.CLIP_VALUE": 10.0}
    cfg = tiny_cfg(tmp_path, **{"SOLVER.OPTIMIZER": optimizer, "SOLVER.WARMUP_BIAS_LR": 0.1, **clip})
    torch.manual_seed(0)
    model = TinyModel()
    reference = copy.deepcopy(model)
    clipped = build_optimizer(cfg, model)
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = False
    unclipped = build_optimizer(cfg, reference)
    x, y = batches(1)[0]
    for m in (model, reference):
        sum(m((x, 100 * y)).values()).backward()  # large targets: a gradient norm well above 10
    # Ultralytics' optimizer_step: clip the whole model's norm at 10.0, then step
    norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), max_norm=10.0)
    assert norm > 20.0, "the test needs gradients that clipping changes"
    unclipped.step()
    clipped.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        # the same float32 clipping arithmetic on the same gradients: the steps agree to a few roundings of p
        torch.testing.assert_close(p, q, rtol=0, atol=4 * EPS_FLOAT32 * float(q.detach().abs().max()))


def test_lazy_config_spells_the_same_recipe_as_yacs(tmp_path):
    lazy = LazyConfig.load(get_config_file("shapes/yolo_mask_single_pass_end2end.py"))
    assert lazy_recipe(lazy)["model_ema"] == {} and not lazy_clip_gradients(lazy).ENABLED  # off as shipped
    lazy.train.model_ema = dict(enabled=True, decay=0.9999, tau=2000.0)
    lazy.train.warmup_bias_lr, lazy.train.warmup_momentum = 0.1, 0.8
    lazy.train.clip_gradients = dict(enabled=True, clip_type="full_model", clip_value=10.0)
    yacs = tiny_cfg(lazy.train.output_dir, **{
        "MODEL_EMA.ENABLED": True, "SOLVER.WARMUP_BIAS_LR": 0.1, "SOLVER.WARMUP_MOMENTUM": 0.8,
        "SOLVER.WARMUP_ITERS": round(lazy.lr_multiplier.warmup_length * lazy.train.max_iter),
        "SOLVER.CLIP_GRADIENTS.ENABLED": True, "SOLVER.CLIP_GRADIENTS.CLIP_TYPE": "full_model",
        "SOLVER.CLIP_GRADIENTS.CLIP_VALUE": 10.0,
    })
    assert lazy_recipe(lazy) == yacs_recipe(yacs)
    assert lazy_clip_gradients(lazy) == yacs.SOLVER.CLIP_GRADIENTS
    lazy.train.clip_gradients = dict(enabled=True, clip_typ="full_model")
    with pytest.raises(KeyError, match="clip_typ"):
        lazy_clip_gradients(lazy)


def test_lazy_train_runs_the_recipe_and_evaluates_the_average(tmp_path):
    """lazy_train with every piece on: it trains, evaluates the averaged model and saves that one."""
    cfg = OmegaConf.create({
        "model": L(TinyModel)(),
        "dataloader": {"train": L(cycled_batches)(), "test": L(batches)(n=1),
                       "evaluator": L(RecordingEvaluator)()},
        "optimizer": L(torch.optim.SGD)(params=L(get_default_optimizer_params)(), lr=0.05, momentum=0.9),
        "lr_multiplier": L(WarmupParamScheduler)(
            scheduler=L(MultiStepParamScheduler)(values=[1.0], milestones=[], num_updates=5), warmup_length=0.4, warmup_factor=0.0
        ),
        "train": {
            "output_dir": str(tmp_path), "init_checkpoint": "", "max_iter": 5, "device": "cpu", "eval_period": 0,
            "log_period": 20, "amp": {"enabled": False}, "ddp": {}, "checkpointer": {"period": 1000},
            "model_ema": {"enabled": True, "decay": 0.9, "tau": 2.0}, "warmup_bias_lr": 0.1, "warmup_momentum": 0.8,
            "clip_gradients": {"enabled": True, "clip_type": "full_model", "clip_value": 10.0},
        },
    }, flags={"allow_objects": True})
    TinyTrainer.evaluated = []
    lazy_train(cfg, resume=False)
    saved = torch.load(tmp_path / EMA_WEIGHTS_FILE)
    assert saved["ema_updates"] == 5
    (seen,) = TinyTrainer.evaluated
    expected = torch.cat([v.flatten() for v in saved["model"].values() if v.dtype.is_floating_point])
    torch.testing.assert_close(seen, expected, rtol=0, atol=0)
