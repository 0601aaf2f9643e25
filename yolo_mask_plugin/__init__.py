"""yolo-mask-plugin: YOLO boxes + an RoIAlign FCN mask head, for Detectron2 and Ultralytics.

Layers (imports point down only; `tests/test_layers.py` holds the rules):
  * `yolo_mask_plugin.core`: the framework-neutral mask branch (torch and torchvision only);
  * `yolo_mask_plugin.yolo`: the bridge, what both shells need of Ultralytics (load / split a YOLO, run its layers,
    its detection loss); `yolo_mask_plugin.data`: datasets, COCO <-> YOLO-seg conversion, mask <-> polygon;
  * the two sibling shells, neither importing the other: `yolo_mask_plugin.d2` (Detectron2; importing it registers
    the components and the embedded datasets) and `yolo_mask_plugin.adapters` (Ultralytics, `YOLOMask`; never
    imports Detectron2);
  * `yolo_mask_plugin.interop`: checkpoint conversion between the two shells;
  * `yolo_mask_plugin.apps`: the `yolo-mask` command line, demo, comparison.
Importing this package imports neither Detectron2 nor Ultralytics. The Detectron2 names below
(`add_yolo_mask_config`, the components) are loaded, and the components registered, on first use.
"""
from __future__ import annotations

import importlib
import sys

from yolo_mask_plugin.core.threads import fix_omp_threads_before_ultralytics

__version__ = "0.2.0"

fix_omp_threads_before_ultralytics()  # before anything imports Ultralytics (see core/threads.py)

# Module paths that checkpoints written by 0.1.0 pickled, before the core moved into `core/`: aliased, so
# `YOLOMask("best.pt")` and `torch.load` keep finding their classes.
_MOVED_MODULES = {
    "yolo_mask_plugin.fcn_head": "yolo_mask_plugin.core.fcn_head",
    "yolo_mask_plugin.mask_branch": "yolo_mask_plugin.core.mask_branch",
    "yolo_mask_plugin.roi_align": "yolo_mask_plugin.core.roi_align",
}
for _old, _new in _MOVED_MODULES.items():
    sys.modules.setdefault(_old, importlib.import_module(_new))

_DETECTRON2_NAMES = (
    "YOLOBackbone",
    "YOLOMaskFCNHead",
    "YOLOMaskROIHeads",
    "YOLOProposalGenerator",
    "add_yolo_mask_config",
    "build_yolo_backbone",
)


def __getattr__(name: str):
    """`from yolo_mask_plugin import add_yolo_mask_config` imports (and so registers) the Detectron2 shell."""
    if name in _DETECTRON2_NAMES:
        from yolo_mask_plugin import d2

        return getattr(d2, name)
    raise AttributeError(f"module 'yolo_mask_plugin' has no attribute {name!r}")


__all__ = [*_DETECTRON2_NAMES, "__version__"]
