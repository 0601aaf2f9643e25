"""`yolo-mask` as a user runs it, in a fresh interpreter: bad input is one line on stderr and exit status 2, with
the traceback only when asked for; more processes than GPUs fail before anything is spawned.

(`predict` skipping an unreadable image, exit status 1, is in test_inputs.py, next to its checkpoint fixture.)
"""
from __future__ import annotations

import pytest
import torch

from tests.conftest import run_cli

YACS = ["--config-file", "shapes/yolo_mask_single_pass.yaml"]
LAZY = ["--config-file", "shapes/yolo_mask_single_pass.py"]

# (command line, {tmp} standing for the test's folder; what the error line must name)
USER_ERRORS = {
    "missing config file": (["train", "--config-file", "no_such.yaml"], "no_such.yaml"),
    "unknown yacs key": (["train", *YACS, "MODEL.YOLO.NO_SUCH_KEY", "1"], "MODEL.YOLO.NO_SUCH_KEY"),
    "misspelt LazyConfig key": (["train", *LAZY, "train.max_iters=3"], "train.max_iters"),
    "missing checkpoint": (["eval", *YACS, "MODEL.WEIGHTS", "{tmp}/nope.pth"], "nope.pth"),
    "corrupt checkpoint": (
        ["predict", "--weights", "{tmp}/corrupt.pth", "--input", "{tmp}", "--output", "{tmp}/out"], "corrupt.pth"
    ),
    "missing dataset json": (
        ["compare", "--output-dir", "{tmp}/compare", "--train-json", "{tmp}/nope.json", "--train-images", "{tmp}",
         "--val-json", "{tmp}/nope.json", "--val-images", "{tmp}"],
        "nope.json",
    ),
}


@pytest.mark.parametrize("case", list(USER_ERRORS))
def test_user_error_is_one_line_and_status_2(case, tmp_path):
    argv, named = USER_ERRORS[case]
    (tmp_path / "corrupt.pth").write_bytes(b"not a checkpoint")
    result = run_cli(*(arg.format(tmp=tmp_path) for arg in argv), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"yolo-mask {argv[0]}: error: ") and named in line


@pytest.mark.parametrize("flag, env", [(["--debug"], None), ([], {"YOLO_MASK_DEBUG": "1"})],
                         ids=["--debug", "YOLO_MASK_DEBUG=1"])
def test_debug_shows_the_traceback(flag, env, tmp_path):
    result = run_cli(*flag, "train", *YACS, "MODEL.YOLO.NO_SUCH_KEY", "1", cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr  # Python's status for an exception nobody caught
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("yolo_mask_plugin.core.errors.ConfigKeyError: ")


def test_more_processes_than_gpus_fail_before_spawning(tmp_path):
    found = torch.cuda.device_count()
    num_gpus = max(2, found + 1)
    result = run_cli("train", *YACS, "--num-gpus", str(num_gpus), "MODEL.DEVICE", "cpu", "OUTPUT_DIR",
                     str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert f"--num-gpus {num_gpus}: {found} GPU(s) found" in line and "CPU is one process (--num-gpus 1" in line
    assert not (tmp_path / "run").exists()  # no process got as far as Detectron2's default_setup
