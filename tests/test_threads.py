"""Torch's CPU threads survive `import ultralytics`, which sets OMP_NUM_THREADS=1 when it is unset (each case in a
fresh interpreter, since torch fixes its thread pool once)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _threads(code: str, **env: str) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | env
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


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
