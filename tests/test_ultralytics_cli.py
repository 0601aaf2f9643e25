"""`yolo-mask segment MODE key=value ...`: Ultralytics' `yolo` command line on the YOLO-mask model, and what
Ultralytics' own `YOLO(path)` does with a YOLO-mask checkpoint.

Run as a user runs it (a fresh interpreter) where what it writes matters; in-process where only Ultralytics' key
checks are at stake.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest
from ultralytics import YOLO

from yolo_mask_plugin.adapters.cli import run_yolo_cli
from yolo_mask_plugin.adapters.export import EXPORT_METADATA_KEY
from yolo_mask_plugin.core.errors import InvalidInputError

from .conftest import TEST_IMAGE_SIZE, run_cli

pytestmark = pytest.mark.ultralytics_shell


def test_segment_predict_saves_results_as_yolo_does(frozen_detector_run, shapes_root, tmp_path):
    image = sorted((shapes_root / "images" / "val").glob("*.png"))[0]
    result = run_cli(
        "segment", "predict", f"model={frozen_detector_run.best}", f"source={image}", f"imgsz={TEST_IMAGE_SIZE}",
        "conf=0.0", "save_txt=True", f"project={tmp_path}", "name=pred", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "pred" / f"{image.stem}.jpg").is_file()  # the plotted image, as `yolo predict` saves it
    rows = (tmp_path / "pred" / "labels" / f"{image.stem}.txt").read_text().splitlines()
    assert rows and all(len(row.split()) > 5 for row in rows)  # class + a mask polygon, not a box


def test_segment_export_writes_the_end_to_end_onnx(frozen_detector_run, tmp_path):
    best = Path(shutil.copy(frozen_detector_run.best, tmp_path / "best.pt"))
    result = run_cli("segment", "export", f"model={best}", "format=onnx", f"imgsz={TEST_IMAGE_SIZE}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    exported = onnx.load(tmp_path / "best.onnx")
    assert EXPORT_METADATA_KEY in {p.key for p in exported.metadata_props}
    assert {"NonMaxSuppression", "RoiAlign"} <= {node.op_type for node in exported.graph.node}


def test_unknown_key_is_one_line_and_status_2(tmp_path):
    result = run_cli("segment", "predict", "model=best.pt", "imgsz=128", "epoch=3", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("yolo-mask segment: error: 'epoch' is not a valid YOLO argument")


def test_mask_gain_is_a_train_key(frozen_detector_run, shapes_root, tmp_path):
    # train: `mask=` passes Ultralytics' key checks; the missing dataset is what stops it
    with pytest.raises(RuntimeError, match="missing.yaml"):
        run_yolo_cli("train", [f"model={frozen_detector_run.best}", f"data={tmp_path / 'missing.yaml'}", "mask=0.5"])
    image = sorted((shapes_root / "images" / "val").glob("*.png"))[0]
    with pytest.raises(InvalidInputError, match="'mask' is not a valid YOLO argument"):
        run_yolo_cli("predict", [f"model={frozen_detector_run.best}", f"source={image}", "mask=0.5"])


def test_model_is_required(tmp_path):
    with pytest.raises(InvalidInputError, match="give model="):
        run_yolo_cli("predict", ["source=image.png"])


@pytest.mark.parametrize("mode", ["predict", "val"])
def test_stock_yolo_stops_at_the_first_batch_naming_yolomask(mode, frozen_detector_run, shapes_root, tmp_path):
    model = YOLO(str(frozen_detector_run.best))
    with pytest.raises(TypeError, match=r"YOLOMask\('best.pt'\).predict/val.*yolo-mask segment predict\|val"):
        if mode == "predict":
            model.predict(str(shapes_root / "images" / "val" / "000000.png"), imgsz=TEST_IMAGE_SIZE, conf=0.0,
                          device="cpu", verbose=False)
        else:
            model.val(data=str(shapes_root / "shapes-seg.yaml"), imgsz=TEST_IMAGE_SIZE, batch=4, device="cpu",
                      plots=False, project=str(tmp_path), name="val")
