"""One number over seeds, and a paired difference between two models over seeds: the statistics the benchmarks
report and the table cells that show them."""
from __future__ import annotations

import statistics


def seed_spread(values: list[float]) -> dict:
    """What a benchmark reports of one number over seeds.

    Args:
        values (list[float]): the number at each seed.

    Returns:
        (dict): mean, std (sample standard deviation, None for one seed), min, max and n.
    """
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values), "n": len(values)}


def exceeds_spread(differences: list[float]) -> bool:
    """Whether paired differences over seeds (model A - model B, seed by seed) say more than the seed noise.

    Args:
        differences (list[float]): A - B at each seed.

    Returns:
        (bool): True for at least 3 seeds, the same sign at every seed, and |mean| > 2 sample standard deviations.
    """
    if len(differences) < 3:
        return False
    same_sign = min(differences) > 0 or max(differences) < 0
    return same_sign and abs(statistics.fmean(differences)) > 2 * statistics.stdev(differences)


def paired_difference(differences: list[float]) -> dict:
    """What a benchmark reports of paired differences over seeds.

    Returns:
        (dict): their `seed_spread` and "exceeds_spread" (`exceeds_spread`).
    """
    return {**seed_spread(differences), "exceeds_spread": exceeds_spread(differences)}


def spread_cell(spread: dict) -> str:
    """A `seed_spread` as a table cell: "mean ± std" (the mean alone for one seed), one decimal."""
    return f"{spread['mean']:.1f}" + (f" ± {spread['std']:.1f}" if spread["std"] is not None else "")


def difference_cell(difference: dict) -> str:
    """A `paired_difference` as a table cell: "+mean ± std", marked "(within spread)" unless it exceeds the spread.

    Examples:
        >>> difference_cell(paired_difference([1.0, 2.0, 3.0]))
        '+2.0 ± 1.0 (within spread)'
    """
    signed = f"{difference['mean']:+.1f}" + (f" ± {difference['std']:.1f}" if difference["std"] is not None else "")
    return signed + ("" if difference["exceeds_spread"] else " (within spread)")
