"""What the mask branch costs next to the YOLO it rides on: fvcore FLOPs (deterministic, any machine).

The branch (1x1 laterals, multi-level RoIAlign, FCN head) for N detections on a 640x640 input, at the default
64-wide head and at Mask R-CNN's 256 width, against yolo11n itself on the same input. FLOPs count
multiply-adds once, as fvcore does.

    python benchmarks/mask_head_cost.py          # -> benchmarks/results/mask_head_cost.json
"""
from __future__ import annotations

import torch
from fvcore.nn import FlopCountAnalysis
from ultralytics.nn.tasks import yaml_model_load

from yolo_mask_plugin.adapters import YOLOMaskModel
from yolo_mask_plugin.apps.benchmark import benchmark_parser, new_result, write_result
from yolo_mask_plugin.core.mask_branch import MASK_HEAD_DEFAULTS

SIZE = 640


class _Branch(torch.nn.Module):
    """The mask branch alone on given maps and boxes, as one module fvcore can trace."""

    def __init__(self, model: YOLOMaskModel, boxes: torch.Tensor):
        super().__init__()
        self.branch, self.boxes = model.mask_head, boxes

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        return self.branch(list(features), [self.boxes])


def _quiet_total(analysis: FlopCountAnalysis) -> int:
    """fvcore's total FLOPs, without its warnings about unsupported ops and uncalled modules."""
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    return int(analysis.total())


def branch_flops(width: int, detections: int) -> tuple[int, int]:
    """FLOPs of yolo11n at 640 with a `width`-wide mask head, and of its mask branch for `detections` boxes.

    Args:
        width (int): lateral and conv channels of the mask head.
        detections (int): boxes the branch runs on.

    Returns:
        (tuple[int, int]): (mask branch FLOPs, detector FLOPs), multiply-adds counted once.
    """
    spec = {"lateral_channels": width, "conv_dim": width}
    model = YOLOMaskModel({**yaml_model_load("yolo11n.yaml"), "mask_head": spec}, nc=80, verbose=False).eval()
    x = torch.zeros(1, 3, SIZE, SIZE)
    with torch.no_grad():
        _, raw = model(x)
        detector = _quiet_total(FlopCountAnalysis(model, x))
        g = torch.Generator().manual_seed(0)
        xy = torch.rand(detections, 2, generator=g) * SIZE * 0.8
        boxes = torch.cat([xy, xy + 16 + torch.rand(detections, 2, generator=g) * SIZE * 0.2], dim=1)
        branch = _quiet_total(FlopCountAnalysis(_Branch(model, boxes), tuple(model.mask_features(raw))))
    return branch, detector


def readme_table(result: dict) -> str:
    """The README's table of this result (tests/test_readme_numbers.py checks the README holds it verbatim).

    Args:
        result (dict): the result JSON, as written by `main`.

    Returns:
        (str): the markdown table.
    """
    widths = sorted({r["head_width"] for r in result["rows"]})
    counts = sorted({r["detections"] for r in result["rows"]})
    ratio = {(r["head_width"], r["detections"]): r["branch_over_detector"] for r in result["rows"]}
    rows = ["| mask branch FLOPs / yolo11n FLOPs | " + " | ".join(f"{n} detections" for n in counts) + " |",
            "|---|" + "---|" * len(counts)]
    for width in widths:
        rows.append(f"| {width}-wide head | " + " | ".join(f"{ratio[width, n]:.3f}x" for n in counts) + " |")
    return "\n".join(rows)


def main() -> None:
    """Count the FLOPs of every head width and detection count; write the result once all are counted."""
    args = benchmark_parser(__doc__, result="benchmarks/results/mask_head_cost.json").parse_args()
    result = new_result(input=f"{SIZE}x{SIZE}", yolo="yolo11n", rows=[])
    rows = result["rows"]
    for width in (MASK_HEAD_DEFAULTS["conv_dim"], 256):
        for detections in (1, 10, 30, 100):
            branch, detector = branch_flops(width, detections)
            rows.append({"head_width": width, "detections": detections, "branch_gflops": branch / 1e9,
                         "detector_gflops": detector / 1e9, "branch_over_detector": branch / detector})
            print(rows[-1], flush=True)
    write_result(args.result, result)
    print(readme_table(result))


if __name__ == "__main__":
    main()
