"""README numbers come from committed benchmark results.

Every benchmark with a README table has a `readme_table(result)` that renders its committed JSON
(`benchmarks/update_readme.py` writes them between `<!-- benchmark: NAME -->` markers); the README must hold that
table verbatim, so a number edited by hand, or a result file rerun without updating the README, fails here. Every
result file records how it was made (commit, command, seeds, torch threads).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.update_readme import MARKED, ROOT, result_file, table

BENCHMARKS = (
    "yolo_mask_vs_yolo_seg", "mask_head_cost", "training_cost", "inference_latency", "demo_seeds", "mask_resolution",
    "compare_shapes", "d2_vs_ultralytics_yolo_mask",
)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_readme_table_is_the_committed_result(name):
    result = json.loads(result_file(name).read_text())
    provenance = result["provenance"]
    assert {"commit", "command", "seeds", "torch_threads", "machine"} <= set(provenance)
    assert provenance["commit"] and not provenance["commit"].startswith("unknown"), provenance["commit"]
    readme = (ROOT / "README.md").read_text()
    shown = {m.group(2): m.group(0) for m in MARKED.finditer(readme)}
    assert name in shown, f"README.md has no <!-- benchmark: {name} --> table"
    assert table(name) in shown[name], f"README.md does not show {name}.json as it is: run benchmarks/update_readme.py"


def test_accuracy_claims_rest_on_three_seeds_with_training_times():
    result = json.loads((ROOT / "benchmarks" / "results" / "yolo_mask_vs_yolo_seg.json").read_text())
    seeds = result["provenance"]["seeds"]
    assert len(seeds) >= 3 and sorted(map(int, result["per_seed"])) == sorted(seeds)
    for per_seed in result["per_seed"].values():
        for model in ("yolo_mask", "yolo_seg"):
            assert per_seed["train_cost"][model]["wall_s"] > 0 and per_seed["train_cost"][model]["cpu_s"] > 0


def test_demo_numbers_rest_on_three_seeds_of_the_demo_command():
    result = json.loads((ROOT / "benchmarks" / "results" / "demo_seeds.json").read_text())
    runs = result["runs"]
    assert len(runs) >= 3 and [r["seed"] for r in runs] == result["provenance"]["seeds"]
    for run in runs:
        assert run["wall_s"]["yolo_train"] > 0 and run["wall_s"]["mask_train_and_eval"] > 0
        assert run["yolo_train_args"]["seed"] == run["seed"]  # each seed trained its own YOLO


def test_mask_resolution_rests_on_three_seeds_with_one_detector_per_seed():
    result = json.loads((ROOT / "benchmarks" / "results" / "mask_resolution.json").read_text())
    seeds = result["provenance"]["seeds"]
    assert len(seeds) >= 3
    for runs in result["runs"].values():
        assert [r["seed"] for r in runs] == seeds and all(r["train_wall_min"] > 0 for r in runs)
    for seed in seeds:  # the variants of a seed share the frozen detector, hence the boxes
        same_seed = [r for runs in result["runs"].values() for r in runs if r["seed"] == seed]
        assert len({r["detector"] for r in same_seed}) == 1 and len({r["bbox_AP"] for r in same_seed}) == 1


def test_d2_vs_ultralytics_pairs_every_model_with_the_recipe_at_the_same_seeds_and_images_seen():
    result = json.loads(result_file("d2_vs_ultralytics_yolo_mask").read_text())
    seeds = result["provenance"]["seeds"]
    assert len(seeds) >= 3
    models = result["models"]
    assert {"detectron2", "ultralytics_recipe"} <= set(models)
    for name, model in models.items():
        assert [r["seed"] for r in model["runs"]] == seeds, name
        assert all(r["train_wall_min"] > 0 and r["train_cpu_min"] > 0 for r in model["runs"]), name
        assert model["images_seen"] == models["ultralytics_recipe"]["images_seen"], name
