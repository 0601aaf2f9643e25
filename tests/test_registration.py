"""Registration on import, idempotent imports, and config errors users hit first."""
from __future__ import annotations

import subprocess
import sys

import pytest
from detectron2.config import get_cfg
from detectron2.modeling import (
    BACKBONE_REGISTRY,
    PROPOSAL_GENERATOR_REGISTRY,
    ROI_HEADS_REGISTRY,
    ROI_MASK_HEAD_REGISTRY,
    build_model,
)

import yolo_mask_plugin
import yolo_mask_plugin.d2
from yolo_mask_plugin.d2.config import build_cfg, get_config_file
from yolo_mask_plugin.d2.registration import register_once

REGISTERED = [
    (BACKBONE_REGISTRY, "build_yolo_backbone"),
    (PROPOSAL_GENERATOR_REGISTRY, "YOLOProposalGenerator"),
    (ROI_HEADS_REGISTRY, "YOLOMaskROIHeads"),
    (ROI_MASK_HEAD_REGISTRY, "YOLOMaskFCNHead"),
]


def test_import_registers_every_component():
    for registry, name in REGISTERED:
        assert name in registry, f"{name} missing from {registry._name}"
    assert ROI_MASK_HEAD_REGISTRY.get("YOLOMaskFCNHead") is yolo_mask_plugin.YOLOMaskFCNHead


def test_reloading_modules_does_not_raise_already_registered():
    """In a fresh interpreter: reloaded modules define new classes, which would break `isinstance` checks of the
    components every later test in this session builds."""
    pairs = [(registry._name, name) for registry, name in REGISTERED]
    code = (
        "import importlib, yolo_mask_plugin, yolo_mask_plugin.d2\n"
        "for m in ('backbone', 'proposal_generator', 'mask_head', 'roi_heads'):\n"
        "    importlib.reload(importlib.import_module(f'yolo_mask_plugin.d2.{m}'))\n"
        "importlib.reload(yolo_mask_plugin.d2); importlib.reload(yolo_mask_plugin)\n"
        "from detectron2 import modeling as m\n"
        "registries = {r._name: r for r in (m.BACKBONE_REGISTRY, m.PROPOSAL_GENERATOR_REGISTRY, "
        "m.ROI_HEADS_REGISTRY, m.ROI_MASK_HEAD_REGISTRY)}\n"
        f"assert all(name in registries[registry] for registry, name in {pairs!r})\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


@pytest.mark.parametrize(
    "order",
    [
        ["yolo_mask_plugin.d2.roi_heads", "yolo_mask_plugin", "yolo_mask_plugin.d2.mask_head"],
        ["yolo_mask_plugin.adapters", "yolo_mask_plugin.d2.backbone", "yolo_mask_plugin"],
        ["yolo_mask_plugin", "yolo_mask_plugin.d2"],
    ],
)
def test_submodules_import_in_any_order_in_a_fresh_interpreter(order):
    code = "; ".join(f"import {m}" for m in order) + (
        "; from detectron2.modeling import ROI_HEADS_REGISTRY; import yolo_mask_plugin; "
        "assert 'YOLOMaskROIHeads' in ROI_HEADS_REGISTRY; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_adapters_is_not_a_top_level_package():
    assert yolo_mask_plugin.adapters.__name__ == "yolo_mask_plugin.adapters"
    result = subprocess.run([sys.executable, "-c", "import adapters"], capture_output=True, text=True, cwd="/")
    assert "No module named 'adapters'" in result.stderr


def test_a_different_class_under_a_taken_name_is_still_refused():
    class YOLOMaskROIHeads:  # same name, different definition
        pass

    with pytest.raises(KeyError, match="already registered"):
        register_once(ROI_HEADS_REGISTRY)(YOLOMaskROIHeads)


def test_yaml_without_add_yolo_mask_config_names_the_fix():
    cfg = get_cfg()
    with pytest.raises(KeyError, match="Non-existent config key: MODEL.YOLO"):
        cfg.merge_from_file(get_config_file("shapes/yolo_mask_single_pass.yaml"))


def test_model_without_plugin_keys_says_to_call_add_yolo_mask_config():
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.PROPOSAL_GENERATOR.NAME = "YOLOProposalGenerator"
    with pytest.raises(KeyError, match=r"add_yolo_mask_config\(cfg\)"):
        build_model(cfg)


def test_unknown_plugin_key_is_rejected():
    with pytest.raises(KeyError, match="MODEL.YOLO.NOT_A_KEY"):
        build_cfg("shapes/yolo_mask_single_pass.yaml", ["MODEL.YOLO.NOT_A_KEY", "1"])


def test_unknown_config_file_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="no_such.yaml"):
        build_cfg("no_such.yaml")


@pytest.mark.parametrize(
    "name",
    [
        "yolo_mask_single_pass.yaml",
        "yolo_mask_two_branch_R_50_FPN.yaml",
        "yolo_mask_two_branch_R_101_FPN.yaml",
        "yolo_proposals_R_50_FPN.yaml",
        "detectron2/mask_rcnn_R_50_FPN_3x.yaml",
        "shapes/yolo_mask_single_pass.yaml",
        "shapes/yolo_mask_single_pass_end2end.yaml",
        "shapes/yolo_mask_two_branch_R_50_FPN.yaml",
        "shapes/yolo_proposals_R_50_FPN.yaml",
        "shapes/mask_rcnn_R_50_FPN.yaml",
    ],
)
def test_every_packaged_config_loads(name):
    cfg = build_cfg(name)
    assert cfg.MODEL.MASK_ON
