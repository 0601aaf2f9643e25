"""Torch's CPU threads survive `import ultralytics`, which sets OMP_NUM_THREADS=1 when it is unset (each case in a
fresh interpreter, since torch fixes its thread pool once)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _threads(code: str, cwd: Path | None = None, **env: str) -> list[str]:
    """`code`'s last line of stdout, split, from a fresh interpreter without OMP_NUM_THREADS (plus `env`)."""
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | env
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300,
                            cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1].split()


def test_importing_the_plugin_keeps_torch_default_threads_through_ultralytics_import():
    (default,) = _threads("import torch; print(torch.get_num_threads())")
    if default == "1":
        pytest.skip("torch defaults to one thread here: Ultralytics' OMP_NUM_THREADS=1 would change nothing")
    report = "import os, torch; print(torch.get_num_threads(), os.environ['OMP_NUM_THREADS'])"
    # what Ultralytics alone does, and so what the plugin undoes
    assert _threads(f"import ultralytics; {report}") == ["1", "1"]
    # imported first, the plugin keeps torch's default for this process and the children that inherit the variable
    assert _threads(f"import yolo_mask_plugin.adapters, ultralytics; {report}") == [default, default]
    # a count the user chose is kept
    assert _threads(f"import yolo_mask_plugin.adapters; {report}", OMP_NUM_THREADS="1") == ["1", "1"]



TRAIN_AND_REPORT_THREADS = """
from pathlib import Path
import torch
from yolo_mask_plugin.adapters import YOLOMask
from yolo_mask_plugin.data import generate_shapes_dataset
root = generate_shapes_dataset(Path("shapes"), num_train=4, num_val=2, image_size=64)
model = YOLOMask({yaml!r})
seen = []
def read_threads_in_forward(trainer):
    trainer.model.register_forward_pre_hook(lambda module, args: seen.append(torch.get_num_threads()))
model.add_callback("on_train_start", read_threads_in_forward)
model.train(data=str(root / "shapes-seg.yaml"), epochs=1, imgsz=64, batch=4, workers=0, device="cpu", plots=False,
            val=False, project=str(Path("runs").absolute()), name="threads", exist_ok=True, seed=0)
print(seen[0])
"""


def test_cpu_training_uses_every_thread(tmp_path):
    """The threads torch runs the first training batch's forward on, in a real `YOLOMask(...).train` in a fresh
    interpreter started by one that imported the Ultralytics shell (as `yolo-mask compare` starts its runs, or a
    user's script its jobs): torch's own default when OMP_NUM_THREADS is unset, and the user's count when set.

    In-process the one-thread bug does not show here: the plugin imports torch, whose OpenMP runtime reads
    OMP_NUM_THREADS when it loads, before `import ultralytics` sets it; every child process inherits the 1."""
    (default,) = _threads("import torch; print(torch.get_num_threads())")
    if default == "1":
        pytest.skip("torch defaults to one thread here: Ultralytics' OMP_NUM_THREADS=1 would change nothing")
    train = TRAIN_AND_REPORT_THREADS.format(yaml=str(Path(__file__).parent / "data" / "yolo11-tiny.yaml"))
    parent = f"import subprocess, sys, yolo_mask_plugin.adapters; subprocess.run([sys.executable, '-c', {train!r}], check=True)"
    assert _threads(parent, cwd=tmp_path) == [default]
    assert _threads(parent, cwd=tmp_path, OMP_NUM_THREADS="1") == ["1"]
