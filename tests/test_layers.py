"""One core, two shells that stand alone: imports point down only, and each layer runs without the ones above.

The run-time checks use fresh interpreters in which the frameworks a layer must not need are blocked
(`sys.modules[name] = None` makes every import of them fail), so an import anywhere on the way would show.
"""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import yolo_mask_plugin
import yolo_mask_plugin.adapters

from .numerics import float32_tolerance

PACKAGE = Path(yolo_mask_plugin.__file__).parent
ADAPTERS = Path(yolo_mask_plugin.adapters.__file__).parent
TEST_DATA = Path(__file__).parent / "data"

# What each layer may import from the plugin and from third parties (besides the standard library and numpy).
LAYERS = {
    "core": (PACKAGE / "core", {"yolo_mask_plugin.core"}, {"torch", "torchvision"}),
    "adapters": (
        ADAPTERS, {"yolo_mask_plugin.core", "yolo_mask_plugin.adapters"}, {"torch", "torchvision", "ultralytics", "cv2"}
    ),
    "d2": (
        PACKAGE / "d2",
        {"yolo_mask_plugin.core", "yolo_mask_plugin.d2", "yolo_mask_plugin.data", "yolo_mask_plugin.adapters",
         "yolo_mask_plugin.configs"},
        {"torch", "torchvision", "ultralytics", "detectron2", "fvcore", "yaml"},  # yaml: yacs config files
    ),
}


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text())
    package = ".".join(["yolo_mask_plugin", *path.parent.relative_to(PACKAGE).parts]) if PACKAGE in path.parents else "yolo_mask_plugin.adapters"
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            names.add(".".join(filter(None, [base, node.module or ""])))
    return names


@pytest.mark.parametrize("layer", list(LAYERS))
def test_imports_point_down_only(layer):
    folder, own, third_party = LAYERS[layer]
    stdlib = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    wrong = {}
    for path in sorted(folder.rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "yolo_mask_plugin":
                allowed = any(name == o or name.startswith(o + ".") for o in own)
            else:
                allowed = top in stdlib or top in third_party
            if not allowed:
                wrong.setdefault(str(path.relative_to(folder.parent)), []).append(name)
    assert not wrong, f"{layer} imports what its layer may not: {wrong}"


def _run_isolated(code: str, blocked: list[str], cwd: Path) -> str:
    prelude = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    check = (
        "\nloaded = sorted(m for m in sys.modules if m.split('.')[0] in %r and sys.modules[m] is not None)\n"
        "assert not loaded, loaded\nprint('ISOLATED-OK')\n" % (blocked,)
    )
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code) + check], capture_output=True, text=True, cwd=cwd,
        timeout=900,
    )
    assert result.returncode == 0 and "ISOLATED-OK" in result.stdout, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


def test_core_runs_without_detectron2_or_ultralytics(tmp_path):
    _run_isolated(
        """
        import torch
        from yolo_mask_plugin.core import Letterbox, RoIMaskBranch, detection_mask_probs, paste_masks
        branch = RoIMaskBranch([16, 32, 64], [8, 16, 32], num_classes=3).eval()
        features = [torch.rand(1, c, 64 // s, 64 // s) for c, s in ((16, 8), (32, 16), (64, 32))]
        rows = torch.tensor([[4.0, 6.0, 40.0, 30.0, 0.9, 1.0], [-5.0, 20.0, 70.0, 62.0, 0.8, 2.0]])
        with torch.no_grad():
            probs = detection_mask_probs(branch, features, [rows[:, :4]], [rows[:, 5]], (64, 64))[0]
        masks = paste_masks(probs, rows[:, :4], (64, 64))
        assert probs.shape == (2, 28, 28) and masks.shape == (2, 64, 64) and rows[1, 0] == 0 and rows[1, 2] == 64
        assert Letterbox(48, 64, 64).boxes_yolo_input_to_d2(torch.tensor([[0.0, 8.0, 64.0, 56.0]])).tolist() == [[0, 0, 64, 48]]
        """,
        blocked=["detectron2", "ultralytics"], cwd=tmp_path,
    )


def test_ultralytics_shell_trains_validates_predicts_and_reloads_without_detectron2(tmp_path):
    out = _run_isolated(
        f"""
        from pathlib import Path
        from yolo_mask_plugin.adapters import YOLOMask
        from yolo_mask_plugin.data import generate_shapes_dataset
        root = generate_shapes_dataset(Path("shapes"), num_train=8, num_val=4, image_size=64)
        model = YOLOMask({str(TEST_DATA / "yolo11-tiny.yaml")!r})
        model.train(data=str(root / "shapes-seg.yaml"), epochs=1, imgsz=64, batch=4, workers=0, device="cpu",
                    plots=False, project=str(Path("runs").absolute()), name="tiny", exist_ok=True, seed=0)
        best = Path("runs/tiny/weights/best.pt")
        reloaded = YOLOMask(str(best))
        metrics = reloaded.val(data=str(root / "shapes-seg.yaml"), imgsz=64, batch=4, device="cpu", plots=False,
                               project=str(Path("runs").absolute()), name="val", conf=0.0)
        assert "metrics/mAP50-95(M)" in metrics.results_dict
        result = reloaded.predict(str(root / "images" / "val" / "000000.png"), imgsz=64, conf=0.0, device="cpu",
                                  verbose=False)[0]
        assert result.masks is not None and len(result.masks) == len(result.boxes) > 0
        print("MASKS", tuple(result.masks.data.shape))
        """,
        blocked=["detectron2"], cwd=tmp_path,
    )
    assert "MASKS (" in out


@pytest.mark.numerics
def test_checkpoint_written_by_0_1_0_loads_and_computes_what_it_did(tmp_path):
    """Written before the core moved (tests/data/README.md): the pickled module paths still resolve, without
    Detectron2, and the model gives exactly the outputs recorded then."""
    expected = torch.load(TEST_DATA / "yolo_mask_v0.1.0_tiny_expected.pt")
    torch.save(expected, tmp_path / "expected.pt")
    _run_isolated(
        f"""
        import torch
        from yolo_mask_plugin.adapters import YOLOMask
        model = YOLOMask({str(TEST_DATA / "yolo_mask_v0.1.0_tiny.pt")!r}).model.float().eval()
        expected = torch.load("expected.pt")
        with torch.no_grad():
            outputs, raw = model(expected["image"])
            probs = model.mask_probs(raw, [expected["boxes"]], [expected["classes"]])[0]
        torch.testing.assert_close(outputs / expected["outputs"].abs().amax(-1, keepdim=True), expected["outputs"] / expected["outputs"].abs().amax(-1, keepdim=True), rtol=0, atol={float32_tolerance(1152, scale=10, depth=96)!r})  # each row (box px, class scores) relative to its max; 96 convs of <= 1152 terms; x10: a score's relative error is its logit's absolute error, |logit| < 8.6 here (tests/numerics.py)
        torch.testing.assert_close(probs, expected["mask_probs"], rtol=0, atol={float32_tolerance(1152, scale=1, depth=96)!r})  # probabilities (scale 1) from the same chain of convs (tests/numerics.py)
        assert type(model.mask_head).__module__ == "yolo_mask_plugin.core.mask_branch"
        """,
        blocked=["detectron2"], cwd=tmp_path,
    )
