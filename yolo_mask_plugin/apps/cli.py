"""`yolo-mask`: data | train | eval | predict | convert | export | demo | compare | segment.

`segment MODE key=value ...` is Ultralytics' `yolo` command line on the YOLO-mask model (`adapters/cli.py`).
`train` and `eval` take exactly the arguments of Detectron2's `tools/train_net.py` (they are built from
`default_argument_parser`) and run through `launch`, so `--num-gpus`, `--resume`, `--eval-only` and
trailing overrides behave as Detectron2 users expect: `KEY VALUE` pairs for a yacs `.yaml` config, `key=value`
for a LazyConfig `.py` (as `tools/lazyconfig_train_net.py`).

Exit status: 0 when done, 1 when `predict` skipped unreadable images, 2 for bad input (one line on stderr naming
it; `--debug` or YOLO_MASK_DEBUG=1 shows the traceback instead).
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

# Deprecation notices that importing Detectron2 and loading a LazyConfig raise in torch and setuptools on every
# run: nothing a user can act on, and they would bury a one-line error.
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

import torch  # noqa: E402
import yaml  # noqa: E402
from detectron2.engine import default_argument_parser, launch  # noqa: E402

from yolo_mask_plugin.apps import train_net  # noqa: E402
from yolo_mask_plugin.core.errors import InputError, InvalidInputError  # noqa: E402
from yolo_mask_plugin.d2.config import build_cfg  # noqa: E402

DEFAULT_CONFIG = "shapes/yolo_mask_single_pass.yaml"
DEBUG_VARIABLE = "YOLO_MASK_DEBUG"  # set (not 0): an input error shows its traceback, as --debug


def _data(args: argparse.Namespace) -> None:
    from yolo_mask_plugin.data import default_shapes_root, generate_shapes_dataset

    root = args.root or default_shapes_root()
    print(f"[yolo-mask data] writing the shapes dataset to {root} ...", flush=True)
    generate_shapes_dataset(root, num_train=args.num_train, num_val=args.num_val, seed=args.seed, force=args.force)
    print(f"[yolo-mask data] done: COCO json in {root}/annotations, Ultralytics yaml {root}/shapes-seg.yaml")


def _check_num_gpus(num_gpus: int) -> None:
    """Fail before `launch` spawns one process per GPU that are not there; each would fail inside DDP."""
    found = torch.cuda.device_count()
    if num_gpus > 1 and num_gpus > found:
        raise InvalidInputError(
            f"--num-gpus {num_gpus}: {found} GPU(s) found on this machine, give at most --num-gpus {max(found, 1)}; "
            "training on the CPU is one process (--num-gpus 1 with MODEL.DEVICE cpu, or train.device=cpu for a "
            "LazyConfig .py)"
        )


def _train(args: argparse.Namespace) -> None:
    _check_num_gpus(args.num_gpus)
    print(f"[yolo-mask {args.command}] {args.config_file} on {args.num_gpus} GPU(s) x {args.num_machines} machine(s)")
    launch(
        train_net.main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


def _predict(args: argparse.Namespace) -> int:
    """Exit status 1 when some images could not be read (skipped, and listed at the end), else 0."""
    from yolo_mask_plugin.apps.predict import predict_images
    from yolo_mask_plugin.interop.checkpoint import as_detectron2_weights
    from yolo_mask_plugin.d2.datasets import register_coco_dataset

    for name, json_file, image_dir in args.register_coco:  # for DATASETS.TEST's class names and ids
        register_coco_dataset(name, json_file, image_dir)
    weights = as_detectron2_weights(args.weights, args.output, key="--weights")
    opts = ["MODEL.WEIGHTS", weights, "MODEL.YOLO.CONF_THRESH_TEST", str(args.confidence_threshold), *args.opts]
    if args.cpu:
        opts += ["MODEL.DEVICE", "cpu"]
    cfg = build_cfg(args.config_file, opts)
    cfg.freeze()
    json_path, skipped = predict_images(cfg, args.input, args.output)
    print(f"[yolo-mask predict] overlays and {json_path.name} written to {json_path.parent}")
    if not skipped:
        return 0
    print(f"[yolo-mask predict] skipped {len(skipped)} unreadable image(s):", file=sys.stderr)
    for reason in skipped.values():
        print(f"  {reason}", file=sys.stderr)
    return 1


def _convert(args: argparse.Namespace) -> None:
    from yolo_mask_plugin.interop.checkpoint import convert_ultralytics_checkpoint, converted_metadata, mask_head_opts

    if args.from_detectron2:
        _export_to_ultralytics(args)
        return
    if args.opts:
        raise InvalidInputError(f"config overrides {args.opts} given without --from-detectron2 CONFIG")
    output = convert_ultralytics_checkpoint(args.weights, args.output)
    metadata = converted_metadata(output)
    print(f"[yolo-mask convert] {args.weights} -> {output} (Detectron2 MODEL.WEIGHTS / train.init_checkpoint)")
    if metadata["mask_head"] is not None:
        opts = mask_head_opts(metadata["mask_head"], metadata["head_maps"])
        print("[yolo-mask convert] its mask head, as config opts: " + " ".join(opts))


def _export_to_ultralytics(args: argparse.Namespace) -> None:
    """A Detectron2 checkpoint of a single-pass config (its model built on the CPU) -> an Ultralytics YOLO-mask .pt."""
    from pathlib import Path

    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import instantiate
    from detectron2.modeling import build_model

    from yolo_mask_plugin.core.errors import InputNotFoundError
    from yolo_mask_plugin.interop.checkpoint import export_ultralytics_checkpoint
    from yolo_mask_plugin.d2.config import get_config_file

    if not Path(args.weights).is_file():
        raise InputNotFoundError(f"Detectron2 checkpoint {args.weights!r} does not exist")
    config_file = get_config_file(args.from_detectron2)
    if train_net.is_lazy_config(config_file):
        cfg = train_net.load_lazy_config(config_file, [*args.opts, "train.device=cpu"])
        model, imgsz = instantiate(cfg.model), None
    else:
        cfg = build_cfg(config_file, [*args.opts, "MODEL.DEVICE", "cpu"])
        model, imgsz = build_model(cfg), cfg.INPUT.MAX_SIZE_TEST
    DetectionCheckpointer(model).load(args.weights)
    output = export_ultralytics_checkpoint(model.eval(), args.output, imgsz=imgsz)
    print(f"[yolo-mask convert] {args.weights} ({config_file}) -> {output} (Ultralytics: YOLOMask({str(output)!r}))")


def _export(args: argparse.Namespace) -> None:
    """Detectron2's `tools/deploy/export_model.py --export-method tracing` on a yacs config (`apps/d2_export.py`)."""
    from yolo_mask_plugin.apps.d2_export import export_model
    from yolo_mask_plugin.interop.checkpoint import as_detectron2_weights

    if train_net.is_lazy_config(args.config_file):
        raise InvalidInputError(f"{args.config_file}: export takes a yacs .yaml config, as export_model.py does")
    opts = list(args.opts)
    if args.weights:
        opts = ["MODEL.WEIGHTS", as_detectron2_weights(args.weights, args.output, key="--weights"), *opts]
    cfg = build_cfg(args.config_file, opts)
    cfg.freeze()
    for fmt, path in export_model(cfg, args.sample_image, args.output, tuple(args.format)).items():
        print(f"[yolo-mask export] {fmt}: {path}")


def _demo(args: argparse.Namespace) -> None:
    from yolo_mask_plugin.apps.demo import run_demo

    run_demo(args.output_dir, data_root=args.data_root, yolo_epochs=args.yolo_epochs, opts=args.opts, seed=args.seed)


def _compare(args: argparse.Namespace) -> None:
    from yolo_mask_plugin.apps.compare import CocoSplit, CompareBudget, run_compare

    splits = [args.train_json, args.train_images, args.val_json, args.val_images]
    if any(splits) and not all(splits):
        raise InvalidInputError("give all of --train-json --train-images --val-json --val-images, or none")
    train = CocoSplit(args.train_json, args.train_images) if all(splits) else None
    val = CocoSplit(args.val_json, args.val_images) if all(splits) else None
    budget = CompareBudget(
        imgsz=args.imgsz, yolo_epochs=args.yolo_epochs, yolo_batch=args.yolo_batch, d2_iters=args.iters,
        d2_batch=args.d2_batch, seed=args.seed, workers=args.workers, minutes=args.minutes,
    )
    run_compare(
        args.output_dir, train, val, budget, yolo=args.yolo, yolo_weights=args.yolo_weights,
        mask_rcnn_weights=args.mask_rcnn_weights, models=args.models.split(","),
        weights=_key_values(args.weights, "--weights"), d2_opts=args.d2_opts,
        yolo_args={k: yaml.safe_load(v) for k, v in _key_values(args.yolo_args, "--yolo-args").items()},
        score_threshold=args.score_threshold, speed_images=args.speed_images, warmup_images=args.warmup_images,
        grid_images=args.grid_images,
    )


def _key_values(items: list[str], flag: str) -> dict[str, str]:
    """`key=value` items as a dict; anything else is an input error naming the flag."""
    bad = [item for item in items if "=" not in item or not item.split("=", 1)[0]]
    if bad:
        raise InvalidInputError(f"{flag} takes key=value items, got {bad}")
    return dict(item.split("=", 1) for item in items)


def _segment(args: argparse.Namespace) -> None:
    from yolo_mask_plugin.adapters.cli import run_yolo_cli

    run_yolo_cli(args.mode, args.args)


def _add_register_coco(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--register-coco", nargs=3, action="append", metavar=("NAME", "JSON", "IMAGE_DIR"), default=[],
        help="register a COCO instances json and its image folder as a Detectron2 dataset NAME (repeatable), "
             "for DATASETS.TRAIN / DATASETS.TEST or dataloader.*.dataset.names",
    )


def build_parser() -> argparse.ArgumentParser:
    """The `yolo-mask` argument parser, one sub-command per job."""
    parser = argparse.ArgumentParser(prog="yolo-mask", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an input error instead of one line (or set {DEBUG_VARIABLE}=1)")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="generate the embedded shapes dataset (COCO json + YOLO-seg)")
    data.add_argument("--root", help="output folder (default: $YOLO_MASK_DATASETS/shapes or datasets/shapes)")
    data.add_argument("--num-train", type=int, default=240)
    data.add_argument("--num-val", type=int, default=60)
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--force", action="store_true", help="regenerate even if a complete dataset is there")

    train_net = default_argument_parser()
    for name, help_text in (("train", "train with Detectron2's DefaultTrainer"), ("eval", "evaluate with COCOEvaluator")):
        sub = commands.add_parser(name, parents=[train_net], add_help=False, help=help_text, epilog=train_net.epilog)
        sub.set_defaults(config_file=DEFAULT_CONFIG)
        _add_register_coco(sub)

    predict = commands.add_parser("predict", help="images -> overlay PNGs (Visualizer) + COCO-format JSON")
    predict.add_argument("--config-file", default=DEFAULT_CONFIG, metavar="FILE")
    predict.add_argument("--weights", required=True,
                         help="a Detectron2 checkpoint of the model (model_final.pth), or a YOLO-mask .pt")
    predict.add_argument("--input", nargs="+", required=True, help="image files and/or folders of images")
    predict.add_argument("--output", required=True, help="folder for the overlays and predictions.json")
    predict.add_argument("--confidence-threshold", type=float, default=0.6, help="YOLO confidence (paper: 0.6)")
    predict.add_argument("--cpu", action="store_true", help="run on CPU even if a GPU is available")
    _add_register_coco(predict)
    predict.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="config KEY VALUE pairs")

    convert = commands.add_parser(
        "convert", help="an Ultralytics YOLO(-mask) .pt -> a Detectron2 checkpoint of the single-pass model, or back "
                        "with --from-detectron2",
    )
    convert.add_argument("weights", help="Ultralytics checkpoint (best.pt of YOLOMask or of a YOLO detector), or with "
                                         "--from-detectron2 a Detectron2 checkpoint (model_final.pth)")
    convert.add_argument("output", help="the Detectron2 .pth to write, or with --from-detectron2 the Ultralytics .pt")
    convert.add_argument("--from-detectron2", metavar="CONFIG",
                         help="WEIGHTS is a Detectron2 checkpoint of this single-pass config (.yaml or .py): write it "
                              "as an Ultralytics YOLO-mask .pt that YOLOMask(OUTPUT) loads")
    convert.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                         help="with --from-detectron2: config overrides (KEY VALUE for a .yaml, key=value for a .py)")

    from yolo_mask_plugin.apps.d2_export import FORMATS

    export = commands.add_parser(
        "export", help="a Detectron2 model -> TorchScript / ONNX through Detectron2's TracingAdapter, as its "
                       "tools/deploy/export_model.py --export-method tracing (YOLOMask .pt files: `segment export`)",
    )
    export.add_argument("--config-file", default=DEFAULT_CONFIG, metavar="FILE", help="a yacs .yaml config")
    export.add_argument("--weights", help="a Detectron2 checkpoint of the model, or a YOLO-mask .pt (default: the "
                                          "config's MODEL.WEIGHTS)")
    export.add_argument("--sample-image", required=True,
                        help="the image to trace on; the exported graph takes images of its size after resizing")
    export.add_argument("--output", required=True, help="folder for model.ts / model.onnx")
    export.add_argument("--format", nargs="+", choices=FORMATS, default=list(FORMATS))
    export.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="config KEY VALUE pairs")

    demo = commands.add_parser("demo", help="the main job: data, YOLO (Ultralytics), mask head (Detectron2), eval")
    demo.add_argument("--output-dir", default="output/demo")
    demo.add_argument("--data-root", help="shapes dataset folder (default: as for `yolo-mask data`)")
    demo.add_argument("--yolo-epochs", type=int, default=None, help="Ultralytics epochs (default: the demo's)")
    demo.add_argument("--seed", type=int, default=0, help="seed of both trainers (Ultralytics seed, Detectron2 SEED)")
    demo.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="Detectron2 config KEY VALUE pairs")

    from yolo_mask_plugin.apps.compare.models import MODEL_LABELS, CompareBudget
    from yolo_mask_plugin.apps.compare.predictors import SCORE_THRESHOLD

    defaults = CompareBudget()
    compare = commands.add_parser(
        "compare", help="Mask R-CNN vs YOLO-mask vs YOLO-seg on one dataset: one evaluator, curves, one report",
    )
    compare.add_argument("--output-dir", default="output/compare", help="runs, report.md, results.json, PNGs")
    compare.add_argument("--train-json", help="COCO instances json of the train split (default: embedded shapes)")
    compare.add_argument("--train-images", help="folder the train json's file_names are relative to")
    compare.add_argument("--val-json", help="COCO instances json of the val split")
    compare.add_argument("--val-images", help="folder the val json's file_names are relative to")
    compare.add_argument("--imgsz", type=int, default=defaults.imgsz, help="input size (long side) of every model")
    compare.add_argument("--yolo-epochs", type=int, default=defaults.yolo_epochs, help="Ultralytics epochs")
    compare.add_argument("--yolo-batch", type=int, default=defaults.yolo_batch)
    compare.add_argument("--iters", type=int, default=defaults.d2_iters, help="Detectron2 iterations")
    compare.add_argument("--d2-batch", type=int, default=defaults.d2_batch, help="Detectron2 images per iteration")
    compare.add_argument("--seed", type=int, default=defaults.seed)
    compare.add_argument("--workers", type=int, default=defaults.workers, help="data-loader workers")
    compare.add_argument("--yolo", default="yolo11n", help="YOLO size: <yolo>.yaml and <yolo>-seg.yaml")
    compare.add_argument("--yolo-weights", help="pretrained YOLO .pt both YOLO models start from")
    compare.add_argument("--mask-rcnn-weights", help="pretrained Detectron2 weights (.pkl/.pth) both ResNets start from")
    compare.add_argument("--models", default=",".join(MODEL_LABELS),
                         help=f"comma-separated subset of {','.join(MODEL_LABELS)}")
    compare.add_argument("--weights", nargs="+", default=[], metavar="MODEL=PATH",
                         help="finished weights of a model, scored without training (e.g. yolo_mask=best.pt)")
    compare.add_argument("--minutes", type=float, help="also stop each model after this many minutes of training")
    compare.add_argument("--d2-opts", nargs="+", default=[], metavar="KEY VALUE",
                         help="Detectron2 config overrides for every Detectron2 model, after the comparison's own")
    compare.add_argument("--yolo-args", nargs="+", default=[], metavar="KEY=VALUE",
                         help="Ultralytics train arguments for both Ultralytics models, after the recipe")
    compare.add_argument("--score-threshold", type=float, default=SCORE_THRESHOLD,
                         help="detections scored by the evaluator: score at least this (Detectron2's default 0.05)")
    compare.add_argument("--speed-images", type=int, default=20, help="val images timed per model")
    compare.add_argument("--warmup-images", type=int, default=3)
    compare.add_argument("--grid-images", type=int, default=4, help="rows of the side-by-side image grid")

    from yolo_mask_plugin.adapters.cli import MODES

    segment = commands.add_parser(
        "segment", help="Ultralytics' command line on YOLO-mask: `yolo segment MODE key=value ...` with YOLOMask",
    )
    segment.add_argument("mode", choices=MODES)
    segment.add_argument("args", nargs=argparse.REMAINDER, metavar="key=value",
                         help="Ultralytics' arguments: model=, data=, source=, imgsz=, format=, ... (train: mask=)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `yolo-mask`; returns the exit status (1 when `predict` skipped images).

    An InputError (the plugin's mark for bad user input) ends it with `yolo-mask <command>: error: <message>`
    on stderr and status 2, argparse's convention; any other exception is a bug and keeps its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "eval":
        args.eval_only = True
    commands = {
        "data": _data, "train": _train, "eval": _train, "predict": _predict, "convert": _convert, "export": _export,
        "demo": _demo, "compare": _compare, "segment": _segment,
    }
    try:
        return commands[args.command](args) or 0
    except InputError as e:
        if args.debug or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
            raise
        parser.exit(2, f"yolo-mask {args.command}: error: {' '.join(str(e).split())}\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
