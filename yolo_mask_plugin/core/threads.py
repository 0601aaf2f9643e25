"""One guard for torch's CPU thread count, which Ultralytics changes behind the caller's back.

Ultralytics' `select_device` sets torch to `cpu_count - 1` threads whenever a trainer, validator or predictor
sets up on the CPU, and never sets it back; whatever runs next (the other model of a comparison, a latency
measurement, the rest of a test session) would silently run on fewer threads.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def kept_torch_threads() -> Iterator[int]:
    """Run the block, then put torch's thread count back to what it was; yields that count."""
    threads = torch.get_num_threads()
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)
