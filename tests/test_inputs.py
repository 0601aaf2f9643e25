"""Bad and odd input end to end: images of any mode and size, no detections, no annotations, CLI errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.structures import Boxes, Instances, PolygonMasks
from detectron2.utils.events import EventStorage
from PIL import Image

from tests.conftest import run_cli, small_cfg
from yolo_mask_plugin.apps.cli import main as cli_main
from yolo_mask_plugin.d2 import register_shapes_dataset
from yolo_mask_plugin.apps.train_net import Trainer
from yolo_mask_plugin.apps.predict import predict_images
from yolo_mask_plugin.core.errors import InputNotFoundError


@pytest.fixture(scope="module")
def single_pass_weights(shapes_root, yolo_checkpoint, tmp_path_factory):
    """A Detectron2 checkpoint of the single-pass model, saved by DetectionCheckpointer."""
    out = tmp_path_factory.mktemp("single_pass")
    cfg = small_cfg("shapes/yolo_mask_single_pass.yaml", shapes_root, out, "MODEL.YOLO.WEIGHTS", str(yolo_checkpoint))
    DetectionCheckpointer(Trainer.build_model(cfg), save_dir=str(out)).save("model_final")
    return out / "model_final.pth"


def _predict_cfg(shapes_root, yolo_checkpoint, weights, tmp_path, conf="0.0"):
    cfg = small_cfg(
        "shapes/yolo_mask_single_pass.yaml", shapes_root, tmp_path,
        "MODEL.YOLO.WEIGHTS", str(yolo_checkpoint), "MODEL.WEIGHTS", str(weights), "MODEL.YOLO.CONF_THRESH_TEST", conf,
    )
    cfg.freeze()
    return cfg


IMAGES = {
    "gray.png": lambda: Image.fromarray(np.random.default_rng(0).integers(0, 255, (70, 90), np.uint8), "L"),
    "rgba.png": lambda: Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 48, 4), np.uint8), "RGBA"),
    "one_pixel.png": lambda: Image.new("RGB", (1, 1), (200, 30, 30)),
    "wide.jpg": lambda: Image.new("RGB", (300, 40), (10, 200, 30)),
}


def test_any_image_mode_and_size_gives_masks_in_its_own_size(shapes_root, yolo_checkpoint, single_pass_weights, tmp_path):
    for name, make in IMAGES.items():
        make().save(tmp_path / name)
    cfg = _predict_cfg(shapes_root, yolo_checkpoint, single_pass_weights, tmp_path)
    json_path, skipped = predict_images(cfg, [str(tmp_path / n) for n in IMAGES], tmp_path / "out", log=lambda *_: None)
    assert not skipped
    coco = json.loads(json_path.read_text())
    sizes = {Image.open(tmp_path / n).size for n in IMAGES}
    assert {(i["width"], i["height"]) for i in coco["images"]} == sizes
    for image in coco["images"]:
        overlay = Image.open(tmp_path / "out" / (image["file_name"].rsplit("/", 1)[1].rsplit(".", 1)[0] + ".png"))
        assert overlay.size == (image["width"], image["height"])
    assert coco["annotations"], "confidence 0 keeps YOLO's boxes, so some images must have instances"
    for a in coco["annotations"]:
        image = coco["images"][a["image_id"] - 1]
        assert a["segmentation"]["size"] == [image["height"], image["width"]]
        assert a["category_id"] in {c["id"] for c in coco["categories"]}


def test_zero_detections_give_empty_results_not_a_crash(shapes_root, yolo_checkpoint, single_pass_weights, tmp_path):
    image = shapes_root / "images" / "val" / "000000.png"
    cfg = _predict_cfg(shapes_root, yolo_checkpoint, single_pass_weights, tmp_path, conf="1.0")
    coco = json.loads(predict_images(cfg, [str(image)], tmp_path / "out", log=lambda *_: None).json_path.read_text())
    assert len(coco["images"]) == 1 and coco["annotations"] == []
    model = Trainer.build_model(cfg).eval()
    with torch.no_grad():
        instances = model([{"image": torch.zeros(3, 128, 128), "height": 128, "width": 128}])[0]["instances"]
    assert len(instances) == 0
    assert set(instances.get_fields()) == {"pred_boxes", "scores", "pred_classes", "pred_masks"}
    assert instances.pred_masks.shape == (0, 128, 128)


def test_unreadable_images_are_skipped_and_named(shapes_root, yolo_checkpoint, single_pass_weights, tmp_path):
    """A corrupt file, a zero-byte one and a folder with an image's name: each skipped with its reason; with no
    readable image left, predictions.json is still written, empty. A path that does not exist is an input error."""
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "folder.png").mkdir()
    cfg = _predict_cfg(shapes_root, yolo_checkpoint, single_pass_weights, tmp_path)
    logged = []
    json_path, skipped = predict_images(cfg, [str(folder)], tmp_path / "out", log=logged.append)
    assert sorted(p.name for p in skipped) == ["broken.png", "empty.jpg", "folder.png"]
    assert all(str(path) in reason for path, reason in skipped.items())
    assert sum("skipped" in line for line in logged) == 3
    coco = json.loads(json_path.read_text())
    assert coco["images"] == [] and coco["annotations"] == [] and coco["categories"]
    with pytest.raises(InputNotFoundError, match="missing.png"):
        predict_images(cfg, [str(tmp_path / "missing.png")], tmp_path / "out")


@pytest.mark.parametrize("config", ["shapes/yolo_mask_single_pass.yaml", "shapes/yolo_proposals_R_50_FPN.yaml",
                                    "shapes/yolo_mask_single_pass_end2end.yaml"])
def test_training_image_without_annotations(config, shapes_root, yolo_checkpoint, tmp_path):
    """FILTER_EMPTY_ANNOTATIONS=False hands the model images with no objects: finite losses, no crash (also for
    YOLO's own detection losses when it trains in Detectron2)."""
    cfg = small_cfg(config, shapes_root, tmp_path, "MODEL.YOLO.WEIGHTS", str(yolo_checkpoint))
    model = Trainer.build_model(cfg).train()
    empty = Instances((128, 128), gt_boxes=Boxes(torch.zeros(0, 4)), gt_classes=torch.zeros(0, dtype=torch.long))
    empty.gt_masks = PolygonMasks([])
    batch = [{"image": torch.randint(0, 255, (3, 128, 128), dtype=torch.uint8), "instances": empty}]
    with EventStorage(0):
        losses = model(batch)
    assert losses and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()


def test_cli_data_train_eval(tmp_path, shapes_root, yolo_checkpoint):
    register_shapes_dataset(shapes_root)  # train/eval below use the session's dataset; `data` writes another
    root = tmp_path / "shapes"
    cli_main(["data", "--root", str(root), "--num-train", "6", "--num-val", "3"])
    assert (root / "annotations" / "instances_val.json").is_file() and (root / "shapes-seg.yaml").is_file()

    common = [
        "--config-file", "shapes/yolo_mask_single_pass.yaml", "MODEL.DEVICE", "cpu", "MODEL.YOLO.WEIGHTS",
        str(yolo_checkpoint), "OUTPUT_DIR", str(tmp_path / "run"), "INPUT.MIN_SIZE_TEST", "128",
        "INPUT.MAX_SIZE_TEST", "128", "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "128",
        "DATALOADER.NUM_WORKERS", "0", "MODEL.YOLO.CONF_THRESH_TEST", "0.0",
    ]
    cli_main(["train", *common, "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "2"])
    assert (tmp_path / "run" / "model_final.pth").is_file()
    cli_main(["eval", *common, "MODEL.WEIGHTS", str(tmp_path / "run" / "model_final.pth")])
    assert (tmp_path / "run" / "inference" / "shapes_val" / "coco_instances_results.json").is_file()


def test_cli_predict_skips_an_unreadable_image(shapes_root, yolo_checkpoint, single_pass_weights, tmp_path):
    """`yolo-mask predict` on two images and a corrupt file: results for the two, the file named, exit status 1."""
    folder = tmp_path / "images"
    folder.mkdir()
    good = sorted((shapes_root / "images" / "val").iterdir())[:2]
    for image in good:
        shutil.copy(image, folder / image.name)
    (folder / "corrupt.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"
    result = run_cli(
        "predict", "--weights", str(single_pass_weights), "--input", str(folder), "--output", str(out), "--cpu",
        "--confidence-threshold", "0.0", "MODEL.YOLO.WEIGHTS", str(yolo_checkpoint), "MODEL.YOLO.IMAGE_SIZE", "128",
        "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "128", cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and str(folder / "corrupt.png") in result.stderr.splitlines()[-1]
    coco = json.loads((out / "predictions.json").read_text())
    assert [Path(i["file_name"]).name for i in coco["images"]] == [p.name for p in good]
    assert sorted(p.name for p in out.glob("*.png")) == [p.name for p in good]
