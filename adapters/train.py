"""`YOLOMaskTrainer`: Ultralytics' segmentation trainer, training a `YOLOMaskModel`.

Subclassing `SegmentationTrainer` keeps its loader (images with instance masks), its metrics (Box and Mask
columns) and everything else of Ultralytics' training loop. What differs:
  * the model is `YOLOMaskModel`; a detection checkpoint (`yolo11n.pt`, `best.pt` of a detect run) initialises
    the detector and the mask head starts fresh; `freeze=` names YOLO layers (`model.<i>.`), so the mask head always trains;
  * ground-truth masks come one per instance at input resolution: `overlap_mask=False` (the default overlap map
    keeps only the visible part of each instance) and `mask_ratio=1` instead of 4 (the mask head crops each
    box at up to 28 px, finer than a 1/4-resolution map), so the targets are the same Detectron2 builds; each
    is rasterised from its polygon with holes and separate parts as annotated (`adapters/data.py`);
  * on the CPU it trains with all the threads torch had, not Ultralytics' cpu_count - 1;
  * one more train argument, `mask` (mask loss gain, see `args.py`), next to `box`/`cls`/`dfl`, kept in the
    finished checkpoints' `train_args` too (Ultralytics' `strip_optimizer` keeps only its own `default.yaml` keys).
"""
from __future__ import annotations

from copy import copy

from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK

from yolo_mask_plugin.adapters.args import MASK_GAIN_ARG, with_mask_args
from yolo_mask_plugin.adapters.data import with_instance_masks
from yolo_mask_plugin.adapters.mask_model import YOLOMaskModel
from yolo_mask_plugin.adapters.val import YOLOMaskValidator
from yolo_mask_plugin.core.threads import kept_torch_threads
from yolo_mask_plugin.yolo.compat import add_train_args

GT_MASK_ARGS = {"overlap_mask": False, "mask_ratio": 1}


class _AllThreads:
    """On the CPU, keep every thread torch had through an Ultralytics trainer's set-up (which leaves cpu_count - 1:
    half the cores of a 2-core machine)."""

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict | None = None, _callbacks: dict | None = None):
        with kept_torch_threads():
            super().__init__(cfg, overrides, _callbacks)


class AllThreadsDetectionTrainer(_AllThreads, DetectionTrainer):
    """Ultralytics' DetectionTrainer with every torch thread: the demo's YOLO, so that it trains as YOLO-mask does."""


class AllThreadsSegmentationTrainer(_AllThreads, SegmentationTrainer):
    """Ultralytics' SegmentationTrainer with every torch thread. `yolo-mask compare` trains stock YOLO-seg with it,
    so both YOLO shells train alike."""


class YOLOMaskTrainer(AllThreadsSegmentationTrainer):
    """Ultralytics' segmentation trainer for `YOLOMaskModel`; `YOLOMask(...).train` uses it.

    Example::

        from ultralytics import YOLO
        YOLO("yolo11n.pt").train(data="coco8-seg.yaml", trainer=YOLOMaskTrainer, epochs=10, mask=2.5)
    """

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict | None = None, _callbacks: dict | None = None):
        overrides = dict(overrides or {})
        for key, value in GT_MASK_ARGS.items():
            if key in overrides and overrides[key] != value:
                LOGGER.warning(f"YOLO-mask trains on per-instance masks: {key}={overrides[key]} ignored, using {value}")
            overrides[key] = value
        super().__init__(with_mask_args(cfg), overrides, _callbacks)

    def get_model(self, cfg: str | dict | None = None, weights=None, verbose: bool = True) -> YOLOMaskModel:
        """A `YOLOMaskModel` of `cfg` for the dataset's classes, loading what matches of `weights`."""
        model = self.set_model_names_for_load(
            YOLOMaskModel(cfg, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose and RANK == -1)
        )
        if weights:
            model.load(weights)  # detector (and mask head, from a YOLO-mask checkpoint) by matching names/shapes
        return model

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None):
        """Ultralytics' YOLO-seg dataset, with masks rasterised as annotated (holes, separate parts): crops for
        training, full masks for validation (Ultralytics' mask metrics)."""
        return with_instance_masks(super().build_dataset(img_path, mode, batch), crops=mode == "train")

    def get_validator(self) -> YOLOMaskValidator:
        """The `YOLOMaskValidator` run after each epoch."""
        return YOLOMaskValidator(
            self.test_loader, save_dir=self.save_dir, args=copy(self.args), _callbacks=self.callbacks
        )

    def final_eval(self) -> None:
        """Ultralytics' final evaluation, which strips `last.pt` / `best.pt` down to `default.yaml`'s train args;
        then the `mask` gain goes back into them, so a finished checkpoint records how it was trained."""
        super().final_eval()
        if RANK in {-1, 0}:
            for weights in (self.last, self.best):
                if weights.exists():
                    add_train_args(weights, {MASK_GAIN_ARG: getattr(self.args, MASK_GAIN_ARG)})
