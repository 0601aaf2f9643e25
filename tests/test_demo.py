"""The main job end to end, shrunk: every step of `yolo-mask demo` runs and writes what it promises."""
from __future__ import annotations

import json

from yolo_mask_plugin.apps.demo import NUM_OVERLAYS, run_demo


def test_demo_runs_every_step_and_reuses_finished_yolo(tmp_path, capsys):
    opts = ["SOLVER.MAX_ITER", "2", "DATALOADER.NUM_WORKERS", "0", "MODEL.YOLO.CONF_THRESH_TEST", "0.0"]
    metrics = run_demo(str(tmp_path / "demo"), data_root=str(tmp_path / "shapes"), yolo_epochs=1, opts=opts)

    saved = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert set(saved) == set(metrics) and saved["yolo_train_args"]["epochs"] == 1
    assert {"AP", "AP50", "AP75"} <= set(saved["segm"]) and {"AP", "AP50", "AP75"} <= set(saved["bbox"])
    assert set(saved["wall_time_s"]) == {"data", "yolo_train", "mask_train_and_eval", "overlays", "total"}
    assert len(list((tmp_path / "demo" / "overlays").glob("*.png"))) == NUM_OVERLAYS
    assert (tmp_path / "demo" / "detectron2" / "model_final.pth").is_file()

    run_demo(str(tmp_path / "demo"), data_root=str(tmp_path / "shapes"), yolo_epochs=1, opts=opts)
    assert "reusing the finished YOLO run" in capsys.readouterr().out
