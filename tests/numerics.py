"""Tolerances for comparing float32 results computed by two runtimes, frameworks, releases or CPU kernels.

Two float32 evaluations of one quantity differ by rounding: which vectorised kernel ran (SSE, AVX2, AVX-512, AMX),
whether it fused multiply-adds, the order a reduction summed in (oneDNN, ONNX Runtime, OpenVINO each choose).
Every rounding is within eps/2 of the exact result (eps = 2**-23 = 1.19e-7 for float32). A sum of n terms of
magnitude `scale`, rounded in some order, is off by about sqrt(n) * eps * scale when the roundings are independent
(a random walk; n * eps * scale is the worst case), so two orders differ by about that much. A network chains such
reductions: `depth` of them add independent errors, like one sum of depth * n terms (no layer amplifies them here:
activations are O(1) after BatchNorm), and K standard deviations cover the tail over the thousands of outputs a
test compares.

So a tolerance is `K * sqrt(depth * n) * eps * scale`, with n the longest reduction, depth the reductions chained
along the longest path (at most the number of layers), and scale the compared values' magnitude: never one run's
difference on one CPU.
Tests that use it are marked `numerics` (pytest.ini) and run again under other kernels in CI (`make test-numerics`).
"""
from __future__ import annotations

import math

import torch

EPS_FLOAT32 = torch.finfo(torch.float32).eps  # 2**-23
K = 8  # standard deviations of the random-walk rounding estimate: its tail over thousands of compared outputs


def float32_tolerance(reduction_length: int, scale: float = 1.0, depth: int = 1) -> float:
    """Largest |a - b| expected between two float32 evaluations of the same quantity of magnitude `scale`, each a
    chain of `depth` reductions of at most `reduction_length` terms, that round differently (module docstring)."""
    if reduction_length < 1 or depth < 1 or not scale >= 0:
        raise ValueError(f"reduction_length={reduction_length}, depth={depth}, scale={scale}: need >= 1, >= 1, >= 0")
    return K * math.sqrt(depth * reduction_length) * EPS_FLOAT32 * scale


def scaled_by_rows(tensor: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """`tensor` divided by the largest |value| of `reference` in each row (last dimension), so that quantities of
    different scales sharing one tensor (YOLO's box coordinates in pixels and its class scores) each get a tolerance
    relative to their own scale."""
    return tensor / reference.abs().amax(-1, keepdim=True).clamp(min=torch.finfo(reference.dtype).tiny)


def decided_beyond(values: torch.Tensor, threshold: float, tolerance: float) -> torch.Tensor:
    """Which `values` are on the same side of `threshold` in any runtime: farther from it than `tolerance`. A
    detection kept or dropped by a value within the tolerance of a threshold is a near tie, decided by rounding."""
    return (values - threshold).abs() > tolerance


def network_tolerance(model: torch.nn.Module, scale: float = 1.0) -> float:
    """`float32_tolerance` of a network's outputs of magnitude `scale`: its longest reduction (the terms one output
    of a convolution or linear layer sums) and, as depth, its number of such layers (at least as many as any path
    chains)."""
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no convolution or linear layer to derive a tolerance from")
    longest = max(m.in_features if isinstance(m, torch.nn.Linear)
                  else m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3] for m in layers)
    return float32_tolerance(longest, scale, depth=len(layers))
