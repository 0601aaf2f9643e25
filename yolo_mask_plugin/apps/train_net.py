"""Detectron2's `tools/train_net.py` (yacs `.yaml`) and `tools/lazyconfig_train_net.py` (LazyConfig `.py`) for
configs that use the plugin: `yolo-mask train` / `yolo-mask eval`.

Nothing here trains or evaluates on its own. yacs configs run through `DefaultTrainer` + `COCOEvaluator`;
LazyConfig configs through `AMPTrainer` / `SimpleTrainer`, Detectron2's hooks and `inference_on_dataset` with
the config's evaluator; both through `DetectionCheckpointer` and `launch`, exactly as for any Detectron2 model.
The only additions: `add_yolo_mask_config` before a YAML is merged, config files found by name in the plugin's
`configs/`, an Ultralytics `.pt` given as MODEL.WEIGHTS / train.init_checkpoint converted first
(`yolo_mask_plugin.interop.checkpoint`), and the mask format switched to "bitmask" when the training data holds RLE
masks (Detectron2's default "polygon" would fail on them inside its data loader).
"""
from __future__ import annotations

import argparse
import logging
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode, LazyConfig, instantiate
from detectron2.engine import AMPTrainer, DefaultTrainer, HookBase, SimpleTrainer, default_setup, default_writers, hooks
from detectron2.engine.defaults import create_ddp_model
from detectron2.evaluation import COCOEvaluator, DatasetEvaluator, inference_on_dataset, print_csv_format
from detectron2.evaluation import verify_results
from detectron2.utils import comm
from fvcore.nn.precise_bn import get_bn_modules
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from yolo_mask_plugin.core.errors import ConfigKeyError, InvalidInputError
from yolo_mask_plugin.d2.clipping import maybe_add_gradient_clipping
from yolo_mask_plugin.d2.compat import last_eval_results, set_last_eval_results
from yolo_mask_plugin.d2.config import build_cfg, get_config_file
from yolo_mask_plugin.d2.datasets import mask_format_of, register_coco_dataset
from yolo_mask_plugin.d2.recipe import add_recipe_hooks, lazy_clip_gradients, lazy_recipe, yacs_recipe
from yolo_mask_plugin.d2.solver import build_optimizer
from yolo_mask_plugin.d2.warmup import split_bias_groups
from yolo_mask_plugin.interop.checkpoint import as_detectron2_weights, check_mask_head_config

logger = logging.getLogger("detectron2")


def is_lazy_config(config_file: str) -> bool:
    """A LazyConfig `.py` (else a yacs `.yaml`)."""
    return str(config_file).endswith(".py")


def training_mask_format(dataset_names, configured: str) -> str:
    """The configured mask format, or "bitmask" when it is "polygon" and the training data holds RLE masks."""
    if configured != "polygon" or mask_format_of(dataset_names) == "polygon":
        return configured
    logger.info("Training data %s stores masks as RLE: mask format 'bitmask' instead of 'polygon'", list(dataset_names))
    return "bitmask"


def setup(args: argparse.Namespace) -> CfgNode:
    """yacs config from train_net-style `args` (`config_file`, `opts`), frozen, with Detectron2's default_setup."""
    args.config_file = get_config_file(args.config_file)  # default_setup logs and copies the file itself
    cfg = build_cfg(args.config_file, args.opts)
    if cfg.MODEL.MASK_ON and not args.eval_only:
        cfg.INPUT.MASK_FORMAT = training_mask_format(cfg.DATASETS.TRAIN, cfg.INPUT.MASK_FORMAT)
    cfg.MODEL.WEIGHTS = as_detectron2_weights(cfg.MODEL.WEIGHTS, cfg.OUTPUT_DIR)
    check_mask_head_config(cfg, cfg.MODEL.WEIGHTS)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


class Trainer(DefaultTrainer):
    """DefaultTrainer with COCOEvaluator (bbox + segm), as Detectron2's train_net does for COCO-format data, and
    the optimizer SOLVER.OPTIMIZER names (SGD, or AdamW for YOLO recipes: `yolo_mask_plugin.d2.solver`).

    Example::

        cfg = build_cfg("shapes/yolo_mask_single_pass.yaml", ["MODEL.YOLO.WEIGHTS", "best.pt"])
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=False)
        trainer.train()
    """

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder: str | None = None) -> DatasetEvaluator:
        """COCOEvaluator (bbox + segm) on `dataset_name`, writing into `output_folder` (default:
        OUTPUT_DIR/inference/<dataset_name>)."""
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return COCOEvaluator(dataset_name, output_dir=output_folder)

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
        """The optimizer SOLVER.OPTIMIZER names (`yolo_mask_plugin.d2.solver.build_optimizer`)."""
        return build_optimizer(cfg, model)

    def build_hooks(self) -> list[HookBase]:
        """DefaultTrainer's hooks plus the Ultralytics recipe pieces MODEL_EMA / SOLVER.WARMUP_* enable
        (`yolo_mask_plugin.d2.recipe`); with EMA the evaluation sees the averaged model, as in Ultralytics. Kept as
        `default_hooks` (e.g. to run PreciseBN when training stops early)."""
        hook_list = [hook for hook in super().build_hooks() if hook is not None]
        ema = add_recipe_hooks(hook_list, self.model, **yacs_recipe(self.cfg))
        if ema is not None:

            def test_and_save_results() -> dict:  # DefaultTrainer's, on the averaged model
                return set_last_eval_results(self, self.test(self.cfg, ema.model))

            eval_hook = hooks.EvalHook(self.cfg.TEST.EVAL_PERIOD, test_and_save_results)
            hook_list = [eval_hook if isinstance(h, hooks.EvalHook) else h for h in hook_list]
        self.default_hooks = hook_list
        return hook_list


def _can_set(cfg: DictConfig, key: str) -> bool:
    """`key` is in the config, or is a new argument of an `L(...)` call (a node with `_target_`)."""
    parent_key, _, name = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if OmegaConf.is_list(parent):
        return name.isdigit() and int(name) < len(parent)
    return OmegaConf.is_dict(parent) and (name in parent.keys() or "_target_" in parent)


def load_lazy_config(config_file: str, overrides: list[str] | None = None) -> DictConfig:
    """A LazyConfig `.py` (a path, or a name under the plugin's `configs/`) with `key=value` overrides.

    An override must set a key the config has or a new argument of an `L(...)` call, or add a key with Hydra's
    `+key=value`: Detectron2 would silently add a misspelt key (`train.max_iters=10`) and train with the default.
    Such a key, a malformed override and a config file with a syntax error raise an InputError.
    """
    path = get_config_file(config_file)
    try:
        cfg = LazyConfig.load(path)
    except SyntaxError as e:  # Detectron2's, naming the file; Python's, with the line, is its cause
        raise InvalidInputError(f"{e} ({e.__cause__})") from e
    overrides = list(overrides or [])
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as e:
        raise ConfigKeyError(f"bad command-line config override: {e}") from e
    unknown = [o.input_line for o in parsed if not o.is_add() and not _can_set(cfg, o.key_or_group)]
    if unknown:
        raise ConfigKeyError(
            f"config overrides {unknown} set keys that {path} does not have (to add a key, write +key=value)"
        )
    return LazyConfig.apply_overrides(cfg, overrides)


def lazy_test(cfg: DictConfig, model) -> dict:
    """`inference_on_dataset` with the config's test loader and evaluator (none configured: nothing to report)."""
    if "evaluator" not in cfg.dataloader:
        return {}
    results = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
    print_csv_format(results)
    return results


def lazy_train(cfg: DictConfig, resume: bool) -> dict:
    """lazyconfig_train_net's loop: the config's model, optimizer, train loader and LR schedule, Detectron2's
    hooks (timer, LR, periodic checkpoints, eval every `train.eval_period` and at the end, writers), and its
    PreciseBN hook when the config asks for it (`train.precise_bn = dict(enabled=True, num_iter=N)`, the LazyConfig
    spelling of TEST.PRECISE_BN, which lazyconfig_train_net lacks). Ultralytics' recipe pieces as the yacs
    Trainer adds them, from `train.model_ema`, `train.warmup_bias_lr`, `train.warmup_momentum` and
    `train.clip_gradients` (`yolo_mask_plugin.d2.recipe`)."""
    model = instantiate(cfg.model)
    logger.info("Model:\n%s", model)
    model.to(cfg.train.device)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    recipe = lazy_recipe(cfg)
    if recipe["warmup_bias_lr"]:
        optimizer = split_bias_groups(optimizer, model)  # BiasWarmup's groups
    optimizer = maybe_add_gradient_clipping(lazy_clip_gradients(cfg), optimizer)
    train_loader = instantiate(cfg.dataloader.train)
    model = create_ddp_model(model, **cfg.train.ddp)
    trainer = (AMPTrainer if cfg.train.amp.enabled else SimpleTrainer)(model, train_loader, optimizer)
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, optimizer=optimizer, trainer=trainer)
    results: dict = {}
    ema = None  # the recipe's EMA hook, set below

    def evaluate() -> dict:
        results.update(lazy_test(cfg, ema.model if ema else model))
        return results

    main_process = comm.is_main_process()
    precise_bn = cfg.train.get("precise_bn") or {}
    hook_list = [
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        # as DefaultTrainer does for TEST.PRECISE_BN: before the checkpointer, so model_final has the statistics
        hooks.PreciseBN(cfg.train.eval_period, model, instantiate(cfg.dataloader.train), precise_bn["num_iter"])
        if precise_bn.get("enabled") and get_bn_modules(model) else None,
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if main_process else None,
        hooks.EvalHook(cfg.train.eval_period, evaluate),
        hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter), period=cfg.train.log_period)
        if main_process else None,
    ]
    ema = add_recipe_hooks(hook_list, model, **recipe)
    trainer.register_hooks(hook_list)
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=resume)
    # the checkpoint holds the iteration that had just finished: go on from the next one
    start_iter = trainer.iter + 1 if resume and checkpointer.has_checkpoint() else 0
    trainer.train(start_iter, cfg.train.max_iter)
    return results


def lazy_main(args: argparse.Namespace) -> dict:
    """lazyconfig_train_net's main: train, or with `--eval-only` evaluate `train.init_checkpoint`."""
    args.config_file = get_config_file(args.config_file)  # default_setup logs and copies the file itself
    cfg = load_lazy_config(args.config_file, args.opts)
    cfg.train.init_checkpoint = as_detectron2_weights(
        cfg.train.init_checkpoint, cfg.train.output_dir, key="train.init_checkpoint"
    )
    mapper = cfg.dataloader.train.mapper
    if not args.eval_only and mapper.get("use_instance_mask"):
        names = cfg.dataloader.train.dataset.names
        mapper.instance_mask_format = training_mask_format(
            [names] if isinstance(names, str) else list(names), mapper.get("instance_mask_format", "polygon")
        )
    default_setup(cfg, args)
    if not args.eval_only:
        return lazy_train(cfg, args.resume)
    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    model = create_ddp_model(model)
    DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
    return lazy_test(cfg, model)


def main(args: argparse.Namespace) -> dict:
    """Train (or, with `--eval-only`, evaluate) and return the evaluation results, as train_net's main.

    Datasets given as `args.register_coco` ([name, json, image folder] triples) are registered first, in the
    process that trains (each process `launch` starts registers them again).
    """
    for name, json_file, image_dir in getattr(args, "register_coco", None) or []:
        register_coco_dataset(name, json_file, image_dir)
    if is_lazy_config(args.config_file):
        return dict(lazy_main(args))
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        results = Trainer.test(cfg, model)
    else:
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        trainer.train()
        results = last_eval_results(trainer)  # DefaultTrainer's EvalHook ran at the end
    if results and cfg.TEST.EXPECTED_RESULTS:
        verify_results(cfg, results)
    return dict(results)
