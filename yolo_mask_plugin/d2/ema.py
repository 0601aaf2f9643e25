"""Ultralytics' model EMA inside Detectron2's training loop, as a hook."""
from __future__ import annotations

import os
from typing import Any

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager
from ultralytics.utils.torch_utils import ModelEMA

from yolo_mask_plugin.core.errors import InvalidInputError

EMA_WEIGHTS_FILE = "model_final_ema.pth"


class ModelEMAHook(HookBase):
    """Keep Ultralytics' exponential moving average of the model, updated after every optimizer step.

    Ultralytics' own `ModelEMA` does the arithmetic (decay `decay * (1 - exp(-updates / tau))`, every floating-point
    parameter and buffer averaged, integer buffers kept from the copy); this hook runs it inside Detectron2's loop:

    - the average starts from the model as loaded (`before_train`, i.e. after `resume_or_load`), as Ultralytics
      builds its EMA after loading weights;
    - its weights and update count are part of the trainer's `state_dict`, so the trainer's checkpointer saves them
      and `resume_or_load(resume=True)` continues them;
    - `model` is the averaged model: evaluate it (Ultralytics validates and saves the EMA). After training its
      weights are saved as `output_dir/model_final_ema.pth` (a checkpoint `MODEL.WEIGHTS` can load); the periodic
      checkpoints keep the trained weights under "model", so that resuming continues training exactly.

    Attributes:
        decay (float): Ultralytics' `decay`, the decay the ramp tends to.
        tau (float): Ultralytics' `tau`, in optimizer steps.
        output_dir (str | None): Where the final EMA weights go (None: not saved).
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.9999, tau: float = 2000.0, output_dir: str | None = None):
        """Average `model` (the trainer's model, DDP-wrapped or not) with Ultralytics' ramp `decay`, `tau`."""
        if not 0.0 < decay < 1.0 or tau <= 0:
            raise InvalidInputError(f"MODEL_EMA (train.model_ema): DECAY={decay} must lie in (0, 1) and TAU={tau} be > 0")
        self._model = model
        self.decay, self.tau, self.output_dir = decay, tau, output_dir
        self._ema: ModelEMA | None = None
        self._restored: dict[str, Any] | None = None  # state loaded before training started

    @property
    def model(self) -> torch.nn.Module:
        """The averaged model (in eval mode), what evaluation should see."""
        if self._ema is None:
            raise RuntimeError("ModelEMAHook.model exists once training has started (before_train)")
        return self._ema.ema

    @property
    def updates(self) -> int:
        """Optimizer steps averaged so far (Ultralytics' `ModelEMA.updates`)."""
        return self._ema.updates if self._ema is not None else (self._restored or {}).get("updates", 0)

    def before_train(self) -> None:
        """Copy the model as loaded, or continue the average a resumed checkpoint holds."""
        self._ema = ModelEMA(self._model, decay=self.decay, tau=self.tau)
        if self._restored is not None:
            self._load(self._restored)
            self._restored = None

    def after_step(self) -> None:
        """One Ultralytics EMA update per optimizer step (Detectron2 steps once per iteration)."""
        self._ema.update(self._model)

    def after_train(self) -> None:
        """Save the averaged weights when training reached its last iteration (main process only)."""
        if self.output_dir is None or self.trainer.iter + 1 < self.trainer.max_iter or not comm.is_main_process():
            return
        PathManager.mkdirs(self.output_dir)
        with PathManager.open(os.path.join(self.output_dir, EMA_WEIGHTS_FILE), "wb") as f:
            torch.save({"model": self.model.state_dict(), "iteration": self.trainer.iter, "ema_updates": self.updates}, f)

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights and update count, saved by the trainer's checkpointer."""
        if self._ema is None:
            return dict(self._restored or {})
        return {"model": self._ema.ema.state_dict(), "updates": self._ema.updates}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a checkpoint's average (kept until `before_train` when training has not started)."""
        if self._ema is None:
            self._restored = state_dict
        else:
            self._load(state_dict)

    def _load(self, state_dict: dict[str, Any]) -> None:
        self._ema.ema.load_state_dict(state_dict["model"])
        self._ema.updates = int(state_dict["updates"])
