"""`yolo-mask demo` (what `make demo` runs) over seeds: segm / bbox AP and wall time of each run, their mean and
spread, against the demo's target (segm AP >= 35 in <= 15 min, every seed).

Each seed is the demo command itself, in a fresh interpreter, into its own folder (`--seed` seeds Ultralytics'
trainer and Detectron2's SEED); the result file is rewritten after every seed, so a killed benchmark keeps the
seeds it finished, and a rerun into the same folder reuses what the demo itself reuses (a finished YOLO run of the
same settings and code).

    python benchmarks/demo_seeds.py --seeds 0 1 2
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from yolo_mask_plugin.apps.benchmark import (
    add_code_files, benchmark_parser, new_result, run_recording_code_files, write_result,
)
from yolo_mask_plugin.apps.seed_stats import seed_spread

TARGET = {"segm_AP_at_least": 35.0, "wall_s_at_most": 15 * 60}


def run_seed(seed: int, output_dir: Path) -> tuple[dict, dict[str, str]]:
    """One `yolo-mask demo --seed <seed>` run in a fresh interpreter.

    Args:
        seed (int): the demo's `--seed`.
        output_dir (Path): the demo's `--output-dir`.

    Returns:
        (tuple[dict, dict[str, str]]): what its metrics.json says, reduced to the numbers reported, and the code
            files the demo's process used (`apps.provenance.code_files`).
    """
    used = run_recording_code_files("yolo_mask_plugin.apps.cli", [
        "demo", "--seed", str(seed), "--output-dir", str(output_dir)], output_dir / "code_files.json")
    metrics = json.loads((output_dir / "metrics.json").read_text())
    with open(output_dir / "yolo" / "results.csv") as f:  # Ultralytics' own log of the YOLO run, last epoch last
        last_epoch = {k.strip(): v for k, v in list(csv.DictReader(f))[-1].items()}
    return {
        "seed": seed,
        "segm_AP": metrics["segm"].get("AP"),
        "bbox_AP": metrics["bbox"].get("AP"),
        "segm_AP50": metrics["segm"].get("AP50"),
        "segm_AP75": metrics["segm"].get("AP75"),
        "wall_s": metrics["wall_time_s"],
        "yolo_train_args": metrics["yolo_train_args"],
        "yolo_val_box_mAP50_95": float(last_epoch["metrics/mAP50-95(B)"]),
    }, used


def summary(runs: list[dict]) -> dict:
    """Mean and sample standard deviation over seeds, and whether every seed met the target.

    Args:
        runs (list[dict]): `run_seed`'s numbers of each seed.

    Returns:
        (dict): `seed_spread` of segm_AP, bbox_AP and wall_s (total), and target_met_by_every_seed.
    """
    out = {key: seed_spread(values) for key, values in (
        ("segm_AP", [r["segm_AP"] for r in runs]), ("bbox_AP", [r["bbox_AP"] for r in runs]),
        ("wall_s", [r["wall_s"]["total"] for r in runs]))}
    out["target_met_by_every_seed"] = all(
        r["segm_AP"] is not None and r["segm_AP"] >= TARGET["segm_AP_at_least"]
        and r["wall_s"]["total"] <= TARGET["wall_s_at_most"] for r in runs
    )
    return out


def readme_table(result: dict) -> str:
    """The README's table of this result (tests/test_readme_numbers.py checks the README holds it verbatim).

    Args:
        result (dict): the result JSON, as written by `main`.

    Returns:
        (str): the markdown table.
    """
    rows = ["| seed | bbox AP | segm AP | segm AP50 | segm AP75 | YOLO stage (s) | mask stage + eval (s) | total (s) |",
            "|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        wall = r["wall_s"]
        rows.append(f"| {r['seed']} | {r['bbox_AP']:.1f} | {r['segm_AP']:.1f} | {r['segm_AP50']:.1f} | "
                    f"{r['segm_AP75']:.1f} | {wall['yolo_train']:.0f} | {wall['mask_train_and_eval']:.0f} | "
                    f"{wall['total']:.0f} |")
    s = result["summary"]
    rows.append(f"| mean ± std | {s['bbox_AP']['mean']:.1f} ± {s['bbox_AP']['std']:.1f} | "
                f"{s['segm_AP']['mean']:.1f} ± {s['segm_AP']['std']:.1f} | | | | | "
                f"{s['wall_s']['mean']:.0f} ± {s['wall_s']['std']:.0f} |")
    verdict = "met by every seed" if s["target_met_by_every_seed"] else "not met by every seed"
    rows.append("")
    target, made = result["target"], result["provenance"]
    rows.append(f"Target (segm AP >= {target['segm_AP_at_least']:.0f} in <= {target['wall_s_at_most'] / 60:.0f} min): "
                f"{verdict}. Commit {made['commit'][:12]}, `{made['command']}`, {made['machine']['description']}.")
    return "\n".join(rows)


def main() -> None:
    """Run the demo at every seed; the result file is rewritten after each."""
    parser = benchmark_parser(__doc__, result="benchmarks/results/demo_seeds.json", seeds=[0, 1, 2],
                              output_dir="output/bench_demo_seeds")
    args = parser.parse_args()
    result = new_result(args.seeds, target=TARGET, runs=[])
    for seed in args.seeds:
        run, used = run_seed(seed, Path(args.output_dir).absolute() / f"seed{seed}")
        result["runs"].append(run)
        result["summary"] = summary(result["runs"])
        add_code_files(result, used)
        write_result(args.result, result)  # after every seed: nothing finished is lost
        print(json.dumps(result["runs"][-1]), flush=True)
    print(readme_table(result))


if __name__ == "__main__":
    main()
