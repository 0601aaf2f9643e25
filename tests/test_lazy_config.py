"""LazyConfig: every `.py` config instantiates, trains and evaluates through `yolo-mask train/eval` as
`tools/lazyconfig_train_net.py` does, and builds the same model as its yacs twin."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.modeling import build_model

from tests.conftest import TEST_IMAGE_SIZE, small_cfg
from yolo_mask_plugin.apps import train_net
from yolo_mask_plugin.apps.cli import build_parser
from yolo_mask_plugin.apps.cli import main as cli_main
from yolo_mask_plugin.apps.train_net import load_lazy_config
from yolo_mask_plugin.d2.config import config_dir

LAZY_CONFIGS = sorted(
    str(p.relative_to(config_dir())) for p in config_dir().rglob("*.py")
    if p.name != "__init__.py" and "common" not in p.parts
)


def test_the_three_designs_have_lazy_configs_for_coco_and_the_embedded_data():
    designs = ("yolo_mask_single_pass.py", "yolo_mask_two_branch_R_50_FPN.py", "yolo_proposals_R_50_FPN.py")
    end_to_end = "shapes/yolo_mask_single_pass_end2end.py"  # the single-pass model trained whole by Detectron2
    assert set(LAZY_CONFIGS) == {*designs, *(f"shapes/{d}" for d in designs), end_to_end}


@pytest.mark.parametrize("name", LAZY_CONFIGS)
def test_every_lazy_config_loads_and_builds_offline_as_shipped(name):
    cfg = load_lazy_config(name)
    assert {"model", "dataloader", "optimizer", "lr_multiplier", "train"} <= set(cfg)
    model = instantiate(cfg.model)
    assert model.roi_heads.mask_on if hasattr(model.roi_heads, "mask_on") else model.roi_heads.mask_head is not None
    cfg.optimizer.params.model = model
    assert instantiate(cfg.optimizer).param_groups


def _lazy_opts(weights: Path, output_dir: Path) -> list[str]:
    """The shapes single-pass LazyConfig shrunk to the test dataset and a few CPU iterations."""
    return [
        f"model.backbone.weights={weights}", f"train.output_dir={output_dir}", "train.device=cpu",
        "train.max_iter=3", "train.checkpointer.period=1000", "dataloader.train.total_batch_size=2",
        "dataloader.train.num_workers=0", "dataloader.test.num_workers=0",
        # a one-epoch YOLO is rarely confident: keep all its boxes, so COCOEvaluator reports segm too
        "model.proposal_generator.conf_thresh_test=0.0", "model.proposal_generator.conf_thresh_train=0.0",
        f"dataloader.train.mapper.augmentations.0.short_edge_length=[{TEST_IMAGE_SIZE}]",
        f"dataloader.train.mapper.augmentations.0.max_size={TEST_IMAGE_SIZE}",
        f"dataloader.test.mapper.augmentations.0.short_edge_length={TEST_IMAGE_SIZE}",
        f"dataloader.test.mapper.augmentations.0.max_size={TEST_IMAGE_SIZE}",
    ]


def test_lazy_config_trains_and_evaluates_through_the_cli(shapes_root, yolo_checkpoint, tmp_path):
    config = "shapes/yolo_mask_single_pass.py"
    cli_main(["train", "--config-file", config, *_lazy_opts(yolo_checkpoint, tmp_path)])
    assert (tmp_path / "model_final.pth").is_file() and (tmp_path / "config.yaml").is_file()
    logged = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    steps = [row for row in logged if "total_loss" in row]
    assert steps[-1]["iteration"] == 2 and all(torch.isfinite(torch.tensor([r["total_loss"] for r in steps])))  # = loss_mask, the only loss
    assert "segm/AP" in logged[-1] and "bbox/AP" in logged[-1]  # the EvalHook's COCOEvaluator after the last step

    # `yolo-mask eval` of the saved weights (what the command runs under `launch` with one process)
    args = build_parser().parse_args(["eval", "--config-file", config, *_lazy_opts(yolo_checkpoint, tmp_path / "e"),
                                      f"train.init_checkpoint={tmp_path / 'model_final.pth'}"])
    args.eval_only = True
    results = train_net.main(args)
    assert results["segm"]["AP"] == pytest.approx(logged[-1]["segm/AP"])
    assert results["bbox"]["AP"] == pytest.approx(logged[-1]["bbox/AP"])


@pytest.mark.parametrize("twins", ["shapes/yolo_mask_single_pass", "shapes/yolo_mask_single_pass_end2end"])
def test_yacs_and_lazy_builds_of_one_design_give_identical_outputs(twins, shapes_root, yolo_checkpoint, tmp_path):
    yacs_cfg = small_cfg(f"{twins}.yaml", shapes_root, tmp_path, "MODEL.YOLO.WEIGHTS",
                         str(yolo_checkpoint), "MODEL.YOLO.CONF_THRESH_TEST", "0.0")
    yacs_model = build_model(yacs_cfg).eval()
    lazy_cfg = load_lazy_config(f"{twins}.py", _lazy_opts(yolo_checkpoint, tmp_path))
    lazy_model = instantiate(lazy_cfg.model).eval()
    assert yacs_model.backbone.frozen == lazy_model.backbone.frozen == (twins == "shapes/yolo_mask_single_pass")
    for key in ("loss_gain_per_image", "loss_weight"):
        assert getattr(yacs_model.roi_heads.mask_head, key) == getattr(lazy_model.roi_heads.mask_head, key), key
    assert yacs_model.proposal_generator.loss_gains == lazy_model.proposal_generator.loss_gains

    assert set(yacs_model.state_dict()) == set(lazy_model.state_dict())
    for key, value in yacs_model.state_dict().items():
        assert value.shape == lazy_model.state_dict()[key].shape, key
    # same weights in both: the yacs model's (its mask head is freshly initialised) through a checkpoint file
    DetectionCheckpointer(yacs_model, save_dir=str(tmp_path)).save("yacs")
    DetectionCheckpointer(lazy_model).load(str(tmp_path / "yacs.pth"))

    image = cv2.imread(str(sorted((shapes_root / "images" / "val").iterdir())[0]))[:, :, ::-1]  # RGB, as both read
    inputs = [{"image": torch.as_tensor(image.transpose(2, 0, 1).copy()), "height": 96, "width": 160}]
    with torch.no_grad():
        a, b = yacs_model(inputs)[0]["instances"], lazy_model(inputs)[0]["instances"]
    assert len(a) > 0 and len(a) == len(b)
    for field in ("pred_boxes", "scores", "pred_classes", "pred_masks"):
        x, y = a.get(field), b.get(field)
        x, y = (x.tensor, y.tensor) if hasattr(x, "tensor") else (x, y)
        assert torch.equal(x, y), field


def test_end_to_end_lazy_config_recomputes_batchnorm_statistics_before_saving(shapes_root, tmp_path):
    """`train.precise_bn` (the end-to-end config's) adds Detectron2's PreciseBN hook to the LazyConfig loop: the
    saved BatchNorm statistics are the ones it recomputed, not the momentum-updated ones of the training steps."""
    config = "shapes/yolo_mask_single_pass_end2end.py"
    saved = {}
    for enabled in (False, True):
        out = tmp_path / f"precise_bn_{enabled}"
        opts = [o for o in _lazy_opts(Path("yolo11n.yaml"), out) if not o.startswith("model.proposal_generator.")]
        cli_main(["train", "--config-file", config, *opts, "train.max_iter=1",
                  f"train.precise_bn.enabled={enabled}", "train.precise_bn.num_iter=2"])
        saved[enabled] = torch.load(out / "model_final.pth", weights_only=False)["model"]
    key = "backbone.layers.0.bn.running_mean"
    momentum_only = saved[False][key]  # one step at Ultralytics' momentum 0.03, from 0
    # the recomputed mean is the average batch mean: ~1/0.03 times the mean one momentum step leaves
    assert saved[True][key].abs().mean() > 10 * momentum_only.abs().mean()
