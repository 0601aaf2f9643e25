"""What a run costs: wall and CPU seconds (a clock that survives a resumed run) and the process's resident memory."""
from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished children (data-loader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CostClock:
    """Wall and CPU seconds since it was made, plus what an earlier part of the same run had spent.

    Args:
        offset (dict | None): {"wall_s", "cpu_s"} already spent (a resumed run's last snapshot); missing keys are 0.

    Examples:
        >>> clock = CostClock({"wall_s": 60.0, "cpu_s": 100.0})
        >>> clock.read()  # {"wall_s": 60.0 + wall seconds since, "cpu_s": 100.0 + CPU seconds since}
    """

    def __init__(self, offset: dict | None = None):
        self.offset = {"wall_s": 0.0, "cpu_s": 0.0, **(offset or {})}
        self._wall0, self._cpu0 = time.perf_counter(), cpu_seconds()

    def read(self) -> dict:
        """The cost so far, offset included.

        Returns:
            (dict): {"wall_s": float, "cpu_s": float}, rounded to 0.1 s.
        """
        return {
            "wall_s": round(self.offset["wall_s"] + time.perf_counter() - self._wall0, 1),
            "cpu_s": round(self.offset["cpu_s"] + cpu_seconds() - self._cpu0, 1),
        }


@contextmanager
def measured_cost() -> Iterator[dict]:
    """Wall and CPU seconds of the block; CPU includes finished child processes (data-loader workers).

    Yields:
        (dict): empty inside the block, {"wall_s", "cpu_s"} after it.

    Examples:
        >>> with measured_cost() as cost:
        ...     train()
        >>> cost["wall_s"], cost["cpu_s"]
    """
    cost: dict = {}
    clock = CostClock()
    yield cost
    cost.update(clock.read())


def memory_mb(field: str) -> float:
    """A memory field of this process's /proc/self/status (Linux), in MB.

    Args:
        field (str): "VmRSS" (resident now), "VmHWM" (peak resident since start or `reset_peak_memory`), ...

    Returns:
        (float): the field's value in MB (the kernel reports kB).
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise ValueError(f"/proc/self/status has no field {field!r}")


def reset_peak_memory() -> None:
    """Reset this process's peak resident memory (VmHWM) to its current resident memory (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
