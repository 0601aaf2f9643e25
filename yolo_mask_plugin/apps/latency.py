"""The one latency timer: models interleaved input by input, in one process, after warm-up.

Interleaving makes drifts in machine load (other processes, CPU frequency) hit every model alike, so the
ratios between models hold even when absolute times move between runs.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch


def interleaved_latency(runs: dict[str, Callable], inputs: Sequence, warmup: int) -> dict[str, dict]:
    """Median and p90 ms of `run(input)` for every run; each input goes through all runs in turn.

    Every run first sees the first `warmup` inputs untimed.

    Args:
        runs (dict[str, Callable]): name -> a function of one input.
        inputs (Sequence): the inputs, each timed once per run.
        warmup (int): how many of the first inputs each run sees untimed first.

    Returns:
        (dict[str, dict]): name -> {"median_ms", "p90_ms", "runs"}.

    Raises:
        RuntimeError: a run changed torch's thread count (the numbers after it would not be comparable).

    Examples:
        >>> interleaved_latency({"a": model_a, "b": model_b}, [x] * 25, warmup=5)["a"]["median_ms"]
    """
    threads = torch.get_num_threads()
    times: dict[str, list[float]] = {name: [] for name in runs}
    with torch.inference_mode():
        for run in runs.values():
            for x in inputs[:warmup]:
                run(x)
        for x in inputs:
            for name, run in runs.items():
                start = time.perf_counter()
                run(x)
                times[name].append((time.perf_counter() - start) * 1000)
    if torch.get_num_threads() != threads:
        raise RuntimeError(f"a timed run changed torch's thread count ({threads} -> {torch.get_num_threads()})")
    return {
        name: {"median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)), "runs": len(t)}
        for name, t in times.items()
    }
