"""`make compare` on the embedded dataset, kept as a benchmark: its report is committed in
`benchmarks/results/compare_shapes/` (report.md, results.json, the charts), and the README shows its tables.
The comparison writes results.json through the benchmarks' skeleton (`apps.benchmark.write_result`: provenance
with the code files it used).

    make compare
    cp output/compare/{report.md,results.json,*.png} benchmarks/results/compare_shapes/
    python benchmarks/update_readme.py
"""
from __future__ import annotations

from yolo_mask_plugin.apps.compare.report import boundary_table, results_table


def readme_table(result: dict) -> str:
    """The README's tables of a comparison's results.json: how it ran (commit, threads, minutes per stage),
    accuracy, speed and size per model, then Boundary AP.

    Args:
        result (dict): `yolo-mask compare`'s results.json.

    Returns:
        (str): the markdown.
    """
    p, wall = result["provenance"], result["wall_time_s"]
    stages = ", ".join(f"{stage} {wall[stage] / 60:.1f}" for stage in ("train", "evaluate", "curves", "speed", "size"))
    ran = (f"Commit {p['commit'][:12]}, `{p['command']}`, {p['torch_threads']} torch threads, "
           f"{p['machine']['description']}: **{wall['total'] / 60:.1f} min in all** ({stages}).")
    return "\n".join([ran, "", *results_table(result), "", "Boundary AP (Boundary IoU, dilation 2% of the diagonal, "
                      "faster-coco-eval) next to mask AP:", "", *boundary_table(result)])
