"""Torch's CPU thread count, which Ultralytics changes behind the caller's back, twice.

* `import ultralytics` sets OMP_NUM_THREADS=1 when it is unset: a torch whose thread pool has not started yet then
  runs the whole process on one thread (Detectron2's training and inference included), and so does every child
  process (they inherit the variable). `fix_omp_threads_before_ultralytics` runs when the plugin is imported.
* Ultralytics' `select_device` sets torch to `cpu_count - 1` threads whenever a trainer, validator or predictor
  sets up on the CPU, and never sets it back; whatever runs next (the other model of a comparison, a latency
  measurement, the rest of a test session) would silently run on fewer threads: `kept_torch_threads`.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def fix_omp_threads_before_ultralytics() -> None:
    """Set OMP_NUM_THREADS to torch's own default thread count, unless the user set it.

    This also starts torch's pool with that count, so that a later `import ultralytics` leaves it alone. A user who
    imports Ultralytics before the plugin keeps its one thread: set OMP_NUM_THREADS yourself then.
    """
    if not os.environ.get("OMP_NUM_THREADS"):
        os.environ["OMP_NUM_THREADS"] = str(torch.get_num_threads())


@contextmanager
def kept_torch_threads() -> Iterator[int]:
    """Run the block, then put torch's thread count back to what it was.

    Returns:
        (yields) torch's thread count before the block.

    Examples:
        >>> with kept_torch_threads():
        ...     YOLOMask("best.pt").val(data="data.yaml", device="cpu")  # Ultralytics changes the count here
    """
    threads = torch.get_num_threads()
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)
