"""Accuracy against training compute: each model scored at several snapshots of its training, and the AP of each
at equal training minutes.

A model behind at the end of a budget may be worse or only slower to train: its curve (segm AP of the one
evaluator against the wall and CPU minutes spent to reach each snapshot) tells which, and where the curves cross.
Snapshots are evenly spread over the run (at most `CURVE_POINTS`, the last one the final weights, whose scores
are the main evaluation's); scores of a snapshot are kept next to it and reused by a rerun.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

CURVE_POINTS = 4
CURVE_CACHE = "curve.json"


def spread(snapshots: list[dict], points: int = CURVE_POINTS) -> list[dict]:
    """At most `points` snapshots, evenly spread, always including the last.

    Args:
        snapshots (list[dict]): the run's snapshots in training order.
        points (int): how many to keep at most.

    Returns:
        (list[dict]): the kept snapshots, in order.
    """
    if len(snapshots) <= points:
        return list(snapshots)
    picks = np.linspace(len(snapshots) - 1, 0, points).round().astype(int)[::-1]
    return [snapshots[i] for i in sorted(set(picks.tolist()))]


def curve(run_dir: Path, snapshots: list[dict], final_scores: dict, score: Callable[[str], dict], key: str) -> list[dict]:
    """Points {"at", "wall_min", "cpu_min", "segm_AP", "bbox_AP"} of a model's snapshots, in training order.

    The final snapshot takes `final_scores`; the others are scored by `score` and cached in `run_dir/curve.json`
    under `key`.

    Args:
        run_dir (Path): the model's run folder (holds the cache).
        snapshots (list[dict]): its snapshots {"weights", "wall_s", "cpu_s", "at"}.
        final_scores (dict): {"segm": AP, "bbox": AP} of the final weights.
        score (Callable[[str], dict]): weights -> {"segm": AP, "bbox": AP} (one predictor, the one evaluator).
        key (str): what the scores depend on beyond the weights (val json, score threshold).

    Returns:
        (list[dict]): the curve's points.
    """
    cache_file = run_dir / CURVE_CACHE
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    cached = cache.get(key, {})
    points = []
    chosen = spread(snapshots)
    for snapshot in chosen:
        weights = snapshot["weights"]
        if snapshot is chosen[-1]:
            scores = final_scores
        else:
            scores = cached.get(weights) or score(weights)
            cached[weights] = scores
        points.append({"at": snapshot["at"], "wall_min": snapshot["wall_s"] / 60, "cpu_min": snapshot["cpu_s"] / 60,
                       "segm_AP": scores["segm"], "bbox_AP": scores["bbox"]})
    if run_dir.is_dir():
        cache_file.write_text(json.dumps({**cache, key: cached}, indent=2))
    return points


def ap_at(points: list[dict], minutes: float, axis: str = "wall_min", metric: str = "segm_AP") -> float | None:
    """AP at `minutes` of training, linearly between the snapshots around it.

    Args:
        points (list[dict]): a curve (`curve`).
        minutes (float): training minutes.
        axis (str): "wall_min" or "cpu_min".
        metric (str): "segm_AP" or "bbox_AP".

    Returns:
        (float | None): the AP, or None before the first snapshot or after the last (a run that had stopped).
    """
    xs = [p[axis] for p in points]
    if not xs or minutes < xs[0] - 1e-9 or minutes > xs[-1] + 1e-9:
        return None
    return float(np.interp(minutes, xs, [p[metric] for p in points]))


def equal_minutes(curves: dict[str, list[dict]], axis: str) -> dict:
    """The AP of every model at the most minutes all of them reached (the shortest run's).

    Args:
        curves (dict[str, list[dict]]): model name -> its curve.
        axis (str): "wall_min" or "cpu_min".

    Returns:
        (dict): {"minutes": float | None, "segm_AP": {model: AP}, "bbox_AP": {model: AP}} (None and empty without
            curves).
    """
    ends = [points[-1][axis] for points in curves.values() if points]
    if not ends:
        return {"minutes": None, "segm_AP": {}, "bbox_AP": {}}
    minutes = min(ends)
    return {
        "minutes": minutes,
        "segm_AP": {name: ap_at(points, minutes, axis, "segm_AP") for name, points in curves.items()},
        "bbox_AP": {name: ap_at(points, minutes, axis, "bbox_AP") for name, points in curves.items()},
    }
