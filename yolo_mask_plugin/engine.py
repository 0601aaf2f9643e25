"""Detectron2's `tools/train_net.py`, for configs that use the plugin: a thin layer over DefaultTrainer.

Nothing here trains or evaluates on its own: DefaultTrainer, COCOEvaluator, DetectionCheckpointer and
`launch` do, exactly as for any Detectron2 model. The only additions are `add_yolo_mask_config` before the
YAML is merged and config files found by name in the plugin's `configs/`.
"""
from __future__ import annotations

import argparse
import os

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode, get_cfg
from detectron2.engine import DefaultTrainer, default_setup
from detectron2.evaluation import COCOEvaluator, DatasetEvaluator, verify_results

from yolo_mask_plugin._source_layout import config_dir
from yolo_mask_plugin.config import add_yolo_mask_config


def get_config_file(config_file: str) -> str:
    """A path as given if it exists, else the file of that name in the plugin's `configs/`.

    So `--config-file shapes/yolo_mask_single_pass.yaml` works from any directory, as
    `detectron2.model_zoo.get_config_file` does for Detectron2's own configs.
    """
    if os.path.isfile(config_file):
        return config_file
    packaged = config_dir() / config_file
    if packaged.is_file():
        return str(packaged)
    raise FileNotFoundError(
        f"config file {config_file!r} is neither a file nor one of the plugin's configs under {config_dir()}"
    )


def build_cfg(config_file: str, opts: list[str] | None = None) -> CfgNode:
    """get_cfg() -> add_yolo_mask_config -> merge_from_file -> merge_from_list, the order that works."""
    cfg = get_cfg()
    add_yolo_mask_config(cfg)
    cfg.merge_from_file(get_config_file(config_file))
    try:
        cfg.merge_from_list(list(opts or []))
    except AssertionError as e:  # yacs reports unknown keys / odd pairs with bare asserts (gone under -O)
        raise KeyError(f"bad command-line config override {list(opts or [])}: {e}") from e
    return cfg


def setup(args: argparse.Namespace) -> CfgNode:
    """Config from train_net-style `args` (`config_file`, `opts`), frozen, with Detectron2's default_setup."""
    args.config_file = get_config_file(args.config_file)  # default_setup logs and copies the file itself
    cfg = build_cfg(args.config_file, args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


class Trainer(DefaultTrainer):
    """DefaultTrainer with COCOEvaluator (bbox + segm), as Detectron2's train_net does for COCO-format data."""

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder: str | None = None) -> DatasetEvaluator:
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return COCOEvaluator(dataset_name, output_dir=output_folder)


def main(args: argparse.Namespace) -> dict:
    """Train (or, with `--eval-only`, evaluate) and return the evaluation results, as train_net's main."""
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        results = Trainer.test(cfg, model)
    else:
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        trainer.train()
        results = getattr(trainer, "_last_eval_results", None) or {}  # DefaultTrainer's EvalHook ran at the end
    if results and cfg.TEST.EXPECTED_RESULTS:
        verify_results(cfg, results)
    return dict(results)
