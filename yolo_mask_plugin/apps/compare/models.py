"""The compared models: what each is, how it trains (or which finished weights stand in for it), and how it
predicts.

Models (names used on the command line and in results.json):
  mask_rcnn             Detectron2's Mask R-CNN R50-FPN, its own config;
  yolo_mask_two_branch  YOLO boxes + a ResNet-50-FPN + the FCN mask head (the seed's design, Detectron2);
  yolo_mask             the shared single-pass YOLO-mask trained by Ultralytics' trainer (YOLOMaskTrainer);
  yolo_mask_d2          the same single-pass model trained whole by Detectron2's DefaultTrainer, with Mask R-CNN's
                        loader, augmentation and schedule (YOLO learns on its detection losses, as RPN does);
  yolo_seg              stock Ultralytics YOLO-seg of the same YOLO size.
The two-branch model uses the single-pass model's YOLO as its box source (frozen), so it needs no detector of its
own and the two differ only in what the mask head pools: choosing it brings `yolo_mask` along.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch
from ultralytics.cfg import DEFAULT_CFG_DICT, check_dict_alignment

from yolo_mask_plugin.adapters.args import with_mask_args
from yolo_mask_plugin.apps.compare.dataset import COMPARE_TRAIN, COMPARE_VAL, CompareDataset
from yolo_mask_plugin.apps.compare.predictors import MAX_DETECTIONS
from yolo_mask_plugin.apps.compare.training import train_detectron2, train_ultralytics_model
from yolo_mask_plugin.apps.demo import YOLO_TRAIN_ARGS
from yolo_mask_plugin.apps.machine import default_device
from yolo_mask_plugin.core.errors import InputNotFoundError, InvalidInputError
from yolo_mask_plugin.interop.checkpoint import as_detectron2_weights, convert_ultralytics_checkpoint
from yolo_mask_plugin.d2.config import build_cfg

MODEL_LABELS = {
    "mask_rcnn": "Mask R-CNN R50-FPN (Detectron2)",
    "yolo_mask_two_branch": "YOLO-mask two-branch, YOLO + R50-FPN (Detectron2)",
    "yolo_mask": "YOLO-mask single-pass (Ultralytics)",
    "yolo_mask_d2": "YOLO-mask single-pass (Detectron2)",
    "yolo_seg": "YOLO-seg (Ultralytics)",
}
ULTRALYTICS_MODELS = ("yolo_mask", "yolo_seg")
TRAINING_ORDER = ("yolo_mask", "yolo_seg", "mask_rcnn", "yolo_mask_two_branch", "yolo_mask_d2")  # dependencies first
MASK_RCNN_CONFIG = "detectron2/mask_rcnn_R_50_FPN_3x.yaml"  # Detectron2's file, as in its model zoo
TWO_BRANCH_CONFIG = "yolo_mask_two_branch_R_50_FPN.yaml"
SINGLE_PASS_CONFIG = "yolo_mask_ultralytics.yaml"  # yolo_mask's model (64-wide mask head on P2-P5) in Detectron2
D2_CONFIGS = {"mask_rcnn": MASK_RCNN_CONFIG, "yolo_mask_two_branch": TWO_BRANCH_CONFIG, "yolo_mask_d2": SINGLE_PASS_CONFIG}
# No ImageNet weights can be downloaded here: without --mask-rcnn-weights both ResNets start from scratch with
# Detectron2's own scratch recipe (configs/Misc/scratch_mask_rcnn_R_50_FPN_3x_gn.yaml: GN, nothing frozen).
SCRATCH_OPTS = [
    "MODEL.WEIGHTS", "", "MODEL.BACKBONE.FREEZE_AT", "0", "MODEL.RESNETS.NORM", "GN",
    "MODEL.RESNETS.STRIDE_IN_1X1", "False", "MODEL.FPN.NORM", "GN",
]
D2_REFERENCE_BATCH = 16  # Detectron2's configs give BASE_LR for 16 images per batch; scaled linearly
MASK_RCNN_BASE_LR = 0.02  # mask_rcnn_R_50_FPN_3x's BASE_LR (Base-RCNN-FPN.yaml), for 16 images per batch
# The demo's YOLO optimiser settings, with Detectron2's default augmentation family (resize + horizontal flip)
# instead of Ultralytics' colour / translate / scale jitter, so every model sees the same kind of images.
YOLO_RECIPE = {
    **{k: YOLO_TRAIN_ARGS[k] for k in ("optimizer", "lr0", "warmup_epochs", "mosaic", "val")},
    "hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0, "translate": 0.0, "scale": 0.0, "fliplr": 0.5,
}


@dataclass(frozen=True)
class CompareBudget:
    """What every model may spend. The default fits the embedded dataset in 30 minutes on 2 CPU cores.
    `minutes`: also stop each model after this many minutes of training (wall clock)."""

    imgsz: int = 192
    yolo_epochs: int = 8
    yolo_batch: int = 8
    d2_iters: int = 40
    d2_batch: int = 4
    seed: int = 0
    workers: int = 2
    minutes: float | None = None


@dataclass
class ModelChoice:
    """Which models to compare, how they start, and what the user passes through to the frameworks."""

    models: tuple[str, ...] = tuple(MODEL_LABELS)
    yolo: str = "yolo11n"  # YOLO size: <yolo>.yaml and <yolo>-seg.yaml
    yolo_weights: str | None = None  # a YOLO .pt both YOLO models start from
    mask_rcnn_weights: str | None = None  # Detectron2 weights both ResNets start from
    weights: dict[str, str] = field(default_factory=dict)  # finished weights per model: scored, not trained
    d2_opts: tuple[str, ...] = ()  # KEY VALUE pairs for every Detectron2 model, after the comparison's own
    yolo_args: dict = field(default_factory=dict)  # key=value for both Ultralytics models, after the recipe

    def selected(self) -> list[str]:
        """The chosen models in training order, with `yolo_mask` brought along by the two-branch model.

        Returns:
            (list[str]): model names (keys of `MODEL_LABELS`).
        """
        unknown = sorted(set(self.models) - set(MODEL_LABELS))
        if unknown or not self.models:
            raise InvalidInputError(f"--models {','.join(self.models)}: choose among {', '.join(MODEL_LABELS)}")
        wanted = set(self.models) | ({"yolo_mask"} if "yolo_mask_two_branch" in self.models else set())
        return [name for name in TRAINING_ORDER if name in wanted]

    def check(self) -> None:
        """Refuse bad input before anything trains.

        Raises:
            InputNotFoundError: a weights path that does not exist.
            InvalidInputError: weights for models not compared, or `yolo_args` keys Ultralytics does not know.
        """
        for path, flag in ((self.yolo_weights, "--yolo-weights"), (self.mask_rcnn_weights, "--mask-rcnn-weights"),
                           *((p, f"--weights {n}=") for n, p in self.weights.items())):
            if path and not Path(path).is_file():
                raise InputNotFoundError(f"{flag} {path!r} does not exist")
        strangers = sorted(set(self.weights) - set(self.selected()))
        if strangers:
            raise InvalidInputError(f"--weights names models that are not compared: {strangers}")
        try:
            check_dict_alignment(with_mask_args(DEFAULT_CFG_DICT), self.yolo_args)
        except SyntaxError as e:
            raise InvalidInputError(f"--yolo-args: {e}") from None


def d2_schedule_opts(budget: CompareBudget, dataset: CompareDataset) -> list[str]:
    """Dataset, input size, schedule and batch of every Detectron2 model (Mask R-CNN's 3x shape, scaled down).

    Args:
        budget (CompareBudget): iterations, batch, input size, seed and workers.
        dataset (CompareDataset): the prepared dataset (classes, mask format).

    Returns:
        (list[str]): Detectron2 opts (KEY VALUE ...).
    """
    iters = budget.d2_iters
    steps = sorted({s for s in (iters * 2 // 3, iters * 8 // 9) if 0 < s < iters})  # 3x's (2/3, 8/9) decays
    return [
        "DATASETS.TRAIN", f"('{COMPARE_TRAIN}',)", "DATASETS.TEST", "()",
        "MODEL.ROI_HEADS.NUM_CLASSES", str(len(dataset.classes)), "MODEL.DEVICE", default_device(),
        "INPUT.MASK_FORMAT", dataset.mask_format,
        "INPUT.MIN_SIZE_TRAIN", f"({budget.imgsz},)", "INPUT.MAX_SIZE_TRAIN", str(budget.imgsz),
        "INPUT.MIN_SIZE_TEST", str(budget.imgsz), "INPUT.MAX_SIZE_TEST", str(budget.imgsz),
        "SOLVER.MAX_ITER", str(iters), "SOLVER.IMS_PER_BATCH", str(budget.d2_batch),
        "SOLVER.BASE_LR", f"{MASK_RCNN_BASE_LR * budget.d2_batch / D2_REFERENCE_BATCH:g}",
        "SOLVER.STEPS", str(tuple(steps)), "SOLVER.WARMUP_ITERS", str(max(iters // 10, 1)),
        "SOLVER.CHECKPOINT_PERIOD", str(max(iters // 4, 1)), "SEED", str(budget.seed),
        "DATALOADER.NUM_WORKERS", str(budget.workers), "TEST.DETECTIONS_PER_IMAGE", str(MAX_DETECTIONS),
        "TEST.EVAL_PERIOD", "0",
    ]


def predict_spec(entry: dict, weights: str, score_threshold: float) -> dict:
    """The predictor spec (`predictors.build_predictor`) of a model's `weights` (its final ones, or a snapshot).

    Args:
        entry (dict): the model's entry of `train_models` (framework, config or family, opts, input size).
        weights (str): the weights to load.
        score_threshold (float): the score threshold of its predictions.

    Returns:
        (dict): {"framework": "detectron2", "config_file", "opts"} or {"framework": "ultralytics", "weights", "family",
            "imgsz", "device", "score_threshold"}.
    """
    if entry["framework"] == "ultralytics":
        return {"framework": "ultralytics", "weights": weights, "family": entry["family"], "imgsz": entry["imgsz"],
                "device": default_device(), "score_threshold": score_threshold}
    thresholds = ["MODEL.ROI_HEADS.SCORE_THRESH_TEST", str(score_threshold),
                  "MODEL.YOLO.CONF_THRESH_TEST", str(score_threshold)]
    return {"framework": "detectron2", "config_file": entry["config_file"],
            "opts": [*entry["opts"], *thresholds, "MODEL.WEIGHTS", weights, "DATASETS.TEST", f"('{COMPARE_VAL}',)"]}


class _Plans:
    """Each model's training: framework, config or model file, options, budget text and recipe text."""

    def __init__(self, dataset: CompareDataset, budget: CompareBudget, choice: ModelChoice, models_dir: Path):
        self.dataset, self.budget, self.choice, self.models_dir = dataset, budget, choice, models_dir
        self.yolo_init = str(Path(choice.yolo_weights).absolute()) if choice.yolo_weights else None
        self.yolo_text = f"initialised from {self.yolo_init}" if self.yolo_init else "from scratch"
        init = ["MODEL.WEIGHTS", str(Path(choice.mask_rcnn_weights).absolute())] if choice.mask_rcnn_weights \
            else SCRATCH_OPTS
        self.resnet_text = f"initialised from {choice.mask_rcnn_weights}" if choice.mask_rcnn_weights \
            else "ResNet from scratch (GN recipe)"
        self.schedule = d2_schedule_opts(budget, dataset)
        self.resnet_opts = [*init, *self.schedule]
        self.iters_text = f"{budget.d2_iters} iterations x {budget.d2_batch} images" + _minutes_text(budget)
        self.epochs_text = (f"{budget.yolo_epochs} epochs x {dataset.num_train_images} images, batch {budget.yolo_batch}"
                            + _minutes_text(budget))
        self.yolo_args = {
            **YOLO_RECIPE, "epochs": budget.yolo_epochs, "imgsz": budget.imgsz, "batch": budget.yolo_batch,
            "workers": budget.workers, "seed": budget.seed, "device": default_device(), **choice.yolo_args,
        }

    def ultralytics(self, name: str) -> dict:
        model_file = f"{self.choice.yolo}.yaml" if name == "yolo_mask" else f"{self.choice.yolo}-seg.yaml"
        what = (f"{model_file} + RoIAlign FCN mask head (64-wide, P2-P5), YOLOMaskTrainer" if name == "yolo_mask"
                else f"{model_file}, Ultralytics' SegmentationTrainer")
        return {"framework": "ultralytics", "family": name, "model_file": model_file, "args": self.yolo_args,
                "imgsz": self.budget.imgsz, "budget": self.epochs_text,
                "recipe": f"{what}, {self.yolo_text}; Ultralytics args {self.yolo_args}"}

    def detectron2(self, name: str, yolo_mask_weights: str | None, given: str | None = None) -> dict:
        """`given`: finished weights of this model; a ResNet model is then built with the norm layers they hold
        (FrozenBN from a pretrained start, GN from the scratch recipe), whatever --mask-rcnn-weights says."""
        extra = list(self.choice.d2_opts)
        resnet_opts, resnet_text = self.resnet_opts, self.resnet_text
        if given and name != "yolo_mask_d2" and not _has_frozen_bn(given):
            resnet_opts, resnet_text = [*SCRATCH_OPTS, *self.schedule], "ResNet with GN (as its weights hold)"
        elif given and name != "yolo_mask_d2":
            resnet_opts, resnet_text = self.schedule, "ResNet with FrozenBN (as its weights hold)"
        if name == "mask_rcnn":
            opts, recipe = resnet_opts, f"configs/{MASK_RCNN_CONFIG} (Detectron2's file), {resnet_text}"
        elif name == "yolo_mask_two_branch":
            opts = [*resnet_opts, "MODEL.YOLO.WEIGHTS", yolo_mask_weights, "MODEL.YOLO.IMAGE_SIZE",
                    str(self.budget.imgsz)]
            recipe = (f"configs/{TWO_BRANCH_CONFIG}, {resnet_text}, YOLO boxes from yolo_mask's checkpoint "
                      "(frozen)")
        else:  # yolo_mask_d2: YOLO from its yaml for the dataset's classes; given YOLO weights load as Detectron2
            # loads a checkpoint with another head (every tensor of the same name and shape), converted first
            init = ["MODEL.WEIGHTS", ""]
            if self.yolo_init:
                init[1] = str(convert_ultralytics_checkpoint(self.yolo_init, self.models_dir / "yolo_weights_d2.pth"))
            opts = [*init, *self.schedule, "MODEL.YOLO.WEIGHTS", f"{self.choice.yolo}.yaml", "MODEL.YOLO.FREEZE",
                    "False"]
            recipe = (f"configs/{SINGLE_PASS_CONFIG}: yolo_mask's model ({self.choice.yolo}.yaml + the 64-wide P2-P5 "
                      "mask head), trained whole by Detectron2 with Mask R-CNN's schedule, YOLO on its detection losses "
                      f"(MODEL.YOLO.FREEZE False), {self.yolo_text}")
        opts = [*opts, *extra]
        budget = self.iters_text + (" (+ the yolo_mask YOLO)" if name == "yolo_mask_two_branch" else "")
        return {"framework": "detectron2", "config_file": D2_CONFIGS[name], "opts": opts, "budget": budget,
                "recipe": f"{recipe}; opts {' '.join(opts)}"}


def _has_frozen_bn(weights: str) -> bool:
    """Whether a Detectron2 ResNet checkpoint (`.pth`, or a model-zoo `.pkl`) holds BN statistics in its stem
    (a pretrained-recipe model) rather than GN's affine parameters only (the scratch recipe)."""
    if weights.endswith(".pkl"):
        with open(weights, "rb") as f:
            state = pickle.load(f, encoding="latin1")
    else:  # as fvcore's Checkpointer loads it
        state = torch.load(weights, map_location="cpu")
    return any(k.endswith("stem.conv1.norm.running_var") for k in state.get("model", state))


def _minutes_text(budget: CompareBudget) -> str:
    return f", at most {budget.minutes:g} min" if budget.minutes is not None else ""


def train_models(dataset: CompareDataset, budget: CompareBudget, models_dir: Path, choice: ModelChoice) -> dict:
    """Train, reuse or take the given weights of every chosen model.

    Every Detectron2 config is built once first, so a bad `--d2-opts` key fails before anything trains.

    Args:
        dataset (CompareDataset): the prepared dataset.
        budget (CompareBudget): what every model may spend.
        models_dir (Path): one run folder per model goes here.
        choice (ModelChoice): the models, their starting weights and pass-through settings.

    Returns:
        (dict): model name -> its plan (framework, config or model file, opts, budget and recipe texts) and its run
            record (weights, cost, snapshots).
    """
    choice.check()
    plans = _Plans(dataset, budget, choice, models_dir)
    names = choice.selected()
    for name in names:
        if name in D2_CONFIGS and name not in choice.weights:
            build_cfg(D2_CONFIGS[name], plans.detectron2(name, "yolo11n.yaml")["opts"])  # a YOLO stands in for yolo_mask's
    entries: dict[str, dict] = {}
    for name in names:
        yolo_mask_weights = entries["yolo_mask"]["record"]["weights"] if "yolo_mask" in entries else None
        given = choice.weights.get(name)
        plan = plans.ultralytics(name) if name in ULTRALYTICS_MODELS else plans.detectron2(name, yolo_mask_weights, given)
        if name in choice.weights:
            entries[name] = {**plan, "record": _given(name, choice.weights[name], models_dir),
                             "budget": "given weights (not trained here)",
                             "recipe": f"finished weights {choice.weights[name]} (not trained here); as trained: "
                                       f"{plan['recipe']}"}
            continue
        print(f"[compare] training {MODEL_LABELS[name]} ({plan['budget']})", flush=True)
        run_dir = models_dir / name
        if plan["framework"] == "ultralytics":
            record = train_ultralytics_model(run_dir, name, plan["model_file"], plans.yolo_init,
                                             dataset.yolo_data_yaml, plan["args"], budget.minutes)
        else:
            record = train_detectron2(run_dir, plan["config_file"], plan["opts"], budget.minutes)
        entries[name] = {**plan, "record": record}
    return entries


def _given(name: str, weights: str, models_dir: Path) -> dict:
    """A run record for finished weights: no training cost, no snapshots; Ultralytics weights for a Detectron2
    model are converted as `yolo-mask train/eval` converts them."""
    path = str(Path(weights).absolute())
    if name in D2_CONFIGS:
        path = as_detectron2_weights(path, models_dir / name, key=f"--weights {name}=")
    return {"weights": path, "cost": None, "snapshots": []}
