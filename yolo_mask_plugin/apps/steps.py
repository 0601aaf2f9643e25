"""Numbered progress lines for the long jobs (`demo`, `compare`), keeping each step's wall time."""
from __future__ import annotations

import time


class Steps:
    """Numbered progress lines of a job: `begin` prints "[<job> i/n | elapsed] what" and closes the step before;
    `done` returns the seconds of each.

    Args:
        job (str): the job's name on each line.
        total (int): how many steps it has.

    Examples:
        >>> steps = Steps("demo", total=2)
        >>> steps.begin("data", "generate the dataset")
        >>> steps.begin("train", "train")
        >>> steps.done()  # {"data": s, "train": s, "total": s}
    """

    def __init__(self, job: str, total: int):
        self.job, self.total, self.index, self.start = job, total, 0, time.perf_counter()
        self.seconds: dict[str, float] = {}
        self._name, self._t0 = None, None

    def begin(self, name: str, what: str) -> None:
        """Close the running step and start step `name`, printing its line with `what` it does."""
        self._finish()
        self.index += 1
        self._name, self._t0 = name, time.perf_counter()
        print(f"\n[{self.job} {self.index}/{self.total} | {self._t0 - self.start:6.0f}s] {what}", flush=True)

    def _finish(self) -> None:
        if self._name is not None:
            self.seconds[self._name] = round(time.perf_counter() - self._t0, 1)
        self._name = None

    def done(self) -> dict[str, float]:
        """Close the running step.

        Returns:
            (dict[str, float]): step name -> wall seconds, and "total".
        """
        self._finish()
        self.seconds["total"] = round(time.perf_counter() - self.start, 1)
        return self.seconds
