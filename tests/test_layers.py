"""One core, two sibling shells that stand alone: imports point down only, and each layer runs without the ones above.

    apps, benchmarks        may import every package of the plugin
    interop                 checkpoint conversion between the shells: may import both shells
    d2 (+ configs) | adapters
                            the two shells, siblings: neither imports the other; adapters never imports detectron2;
                            configs (LazyConfig files) build Detectron2 models: what d2 may import
    yolo (bridge) | data    what both shells need of Ultralytics | datasets, conversion, mask <-> polygon
    core                    torch and torchvision only

The static check reads every file's imports (`ast`); the run-time checks use fresh interpreters in which what a
layer must not need is blocked (`sys.modules[name] = None` makes every import of it fail), so an import anywhere
on the way would show.
"""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

import yolo_mask_plugin
import yolo_mask_plugin.adapters
import yolo_mask_plugin.configs

from .numerics import float32_tolerance

PACKAGE = Path(yolo_mask_plugin.__file__).parent
ADAPTERS = Path(yolo_mask_plugin.adapters.__file__).parent
CONFIGS = Path(yolo_mask_plugin.configs.__file__).parent
BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
TEST_DATA = Path(__file__).parent / "data"
ANY = None  # a layer that may import any third-party package


class Layer(NamedTuple):
    """Where a layer's files are, its dotted package, and what it may import besides the standard library and numpy."""

    folder: Path
    package: str
    plugin: set[str]  # the plugin's packages it may import (its own included)
    third_party: set[str] | None  # top-level third-party packages it may import (ANY: all)


def _plugin(*names: str) -> set[str]:
    return {f"yolo_mask_plugin.{name}" for name in names}


EVERY_PACKAGE = _plugin("core", "yolo", "data", "d2", "adapters", "interop", "apps", "configs")
TORCH = {"torch", "torchvision"}
LAYERS = {
    "core": Layer(PACKAGE / "core", "yolo_mask_plugin.core", _plugin("core"), TORCH),
    "yolo": Layer(PACKAGE / "yolo", "yolo_mask_plugin.yolo", _plugin("core", "yolo"), TORCH | {"ultralytics"}),
    "data": Layer(
        PACKAGE / "data", "yolo_mask_plugin.data", _plugin("core", "data"),
        {"cv2", "PIL", "pycocotools", "yaml", "ultralytics"},  # ultralytics: its image formats and EXIF sizes
    ),
    "d2": Layer(
        PACKAGE / "d2", "yolo_mask_plugin.d2", _plugin("core", "yolo", "data", "d2", "configs"),
        TORCH | {"detectron2", "fvcore", "omegaconf", "ultralytics", "yaml"},  # yaml: yacs files; omegaconf: LazyConfig
    ),
    "adapters": Layer(
        ADAPTERS, "yolo_mask_plugin.adapters", _plugin("core", "yolo", "data", "adapters"),
        TORCH | {"ultralytics", "cv2"},
    ),
    "interop": Layer(
        PACKAGE / "interop", "yolo_mask_plugin.interop", _plugin("core", "yolo", "d2", "adapters", "interop"),
        TORCH | {"detectron2", "ultralytics"},
    ),
    # LazyConfig files build the Detectron2 shell's models: the same as d2, never the Ultralytics shell.
    "configs": Layer(
        CONFIGS, "yolo_mask_plugin.configs", _plugin("core", "yolo", "data", "d2", "configs"),
        TORCH | {"detectron2", "fvcore"},
    ),
    "apps": Layer(PACKAGE / "apps", "yolo_mask_plugin.apps", EVERY_PACKAGE, ANY),
    "benchmarks": Layer(BENCHMARKS, "benchmarks", EVERY_PACKAGE, ANY),  # scripts, not a package
    # The package's own __init__: aliases for moved modules (core) and the lazily imported Detectron2 names (d2).
    "root": Layer(PACKAGE / "__init__.py", "yolo_mask_plugin", _plugin("core", "d2"), set()),
}


def _files(layer: Layer) -> list[Path]:
    return [layer.folder] if layer.folder.is_file() else sorted(layer.folder.rglob("*.py"))


def _imports(path: Path, layer: Layer) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text())
    root = layer.folder.parent if layer.folder.is_file() else layer.folder
    package = ".".join([layer.package, *path.parent.relative_to(root).parts])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            names.add(".".join(filter(None, [base, node.module or ""])))
    return names


def _forbidden_imports(layer: Layer) -> dict[str, list[str]]:
    """The imports, per file, that `layer` may not make."""
    stdlib = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    wrong = {}
    for path in _files(layer):
        for name in sorted(_imports(path, layer)):
            top = name.split(".")[0]
            if top == "yolo_mask_plugin":
                allowed = name == "yolo_mask_plugin" or any(name == o or name.startswith(o + ".") for o in layer.plugin)
            else:
                allowed = top in stdlib or layer.third_party is ANY or top in layer.third_party
            if not allowed:
                wrong.setdefault(path.name if path == layer.folder else str(path.relative_to(layer.folder)), []).append(name)
    return wrong


@pytest.mark.parametrize("name", list(LAYERS))
def test_imports_point_down_only(name):
    wrong = _forbidden_imports(LAYERS[name])
    assert not wrong, f"{name} imports what its layer may not: {wrong}"


def test_neither_shell_imports_the_other():
    assert "yolo_mask_plugin.adapters" not in LAYERS["d2"].plugin
    assert "yolo_mask_plugin.d2" not in LAYERS["adapters"].plugin
    assert "detectron2" not in LAYERS["adapters"].third_party
    for below in ("core", "yolo", "data"):
        assert not LAYERS[below].plugin & _plugin("d2", "adapters", "interop", "apps"), below


def test_every_package_has_a_layer():
    """A new package (or one moved) must be given its rule here before it can land."""
    covered = {layer.folder for layer in LAYERS.values()}
    packages = {p.parent for p in PACKAGE.glob("*/__init__.py")} | {ADAPTERS, CONFIGS}
    assert not packages - covered, f"packages without a rule in LAYERS: {sorted(map(str, packages - covered))}"


def _run_isolated(code: str, blocked: list[str], cwd: Path) -> str:
    prelude = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    check = (
        "\nloaded = sorted(m for m in sys.modules if sys.modules[m] is not None\n"
        "                and any(m == b or m.startswith(b + '.') for b in %r))\n"
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


def test_bridge_and_data_run_without_detectron2_or_either_shell(tmp_path):
    _run_isolated(
        f"""
        import numpy as np
        import torch
        from yolo_mask_plugin.data.polygon_masks import mask_to_yolo_polygon, yolo_polygon_to_mask
        from yolo_mask_plugin.yolo import DETECTION_LOSS_GAINS, detection_loss, load_yolo, run_layers, split_yolo
        parts = split_yolo(load_yolo({str(TEST_DATA / "yolo11-tiny.yaml")!r}, num_classes=3))
        maps = run_layers(parts.layers, parts.save, parts.head_inputs, torch.zeros(1, 3, 64, 64))
        assert [tuple(m.shape[-2:]) for m in maps] == [(8, 8), (4, 4), (2, 2)], [m.shape for m in maps]
        assert detection_loss(parts.head, DETECTION_LOSS_GAINS).hyp.box == DETECTION_LOSS_GAINS["box"]
        mask = np.zeros((20, 24), np.uint8)
        mask[2:15, 3:18] = 1
        mask[6:9, 7:12] = 0
        assert (yolo_polygon_to_mask(mask_to_yolo_polygon(mask), mask.shape) == mask).all()
        """,
        blocked=["detectron2", "yolo_mask_plugin.d2", "yolo_mask_plugin.adapters", "yolo_mask_plugin.interop"],
        cwd=tmp_path,
    )


def test_detectron2_shell_builds_and_predicts_without_the_ultralytics_shell(tmp_path):
    _run_isolated(
        f"""
        import torch
        from detectron2.modeling import build_model
        from yolo_mask_plugin.d2.config import build_cfg
        cfg = build_cfg("shapes/yolo_mask_single_pass.yaml", [
            "MODEL.YOLO.WEIGHTS", {str(TEST_DATA / "yolo11-tiny.yaml")!r}, "MODEL.DEVICE", "cpu",
            "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "64", "MODEL.YOLO.CONF_THRESH_TEST", "0.0"])
        model = build_model(cfg).eval()
        with torch.no_grad():
            instances = model([{{"image": torch.zeros(3, 64, 64), "height": 64, "width": 64}}])[0]["instances"]
        assert len(instances) > 0 and instances.pred_masks.shape[1:] == (64, 64), instances
        """,
        blocked=["yolo_mask_plugin.adapters", "yolo_mask_plugin.interop"], cwd=tmp_path,
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
