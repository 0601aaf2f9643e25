"""`yolo-mask`: data | train | eval | predict | demo.

`train` and `eval` take exactly the arguments of Detectron2's `tools/train_net.py` (they are built from
`default_argument_parser`) and run through `launch`, so `--num-gpus`, `--resume`, `--eval-only` and
trailing `KEY VALUE` overrides behave as Detectron2 users expect.
"""
from __future__ import annotations

import argparse
import sys

from detectron2.engine import default_argument_parser, launch

from yolo_mask_plugin import engine

DEFAULT_CONFIG = "shapes/yolo_mask_single_pass.yaml"


def _data(args: argparse.Namespace) -> None:
    from yolo_mask_plugin.data import default_shapes_root, generate_shapes_dataset

    root = args.root or default_shapes_root()
    print(f"[yolo-mask data] writing the shapes dataset to {root} ...", flush=True)
    generate_shapes_dataset(root, num_train=args.num_train, num_val=args.num_val, seed=args.seed, force=args.force)
    print(f"[yolo-mask data] done: COCO json in {root}/annotations, Ultralytics yaml {root}/shapes-seg.yaml")


def _train(args: argparse.Namespace) -> None:
    print(f"[yolo-mask {args.command}] {args.config_file} on {args.num_gpus} GPU(s) x {args.num_machines} machine(s)")
    launch(
        engine.main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


def _predict(args: argparse.Namespace) -> None:
    from yolo_mask_plugin.predict import predict_images

    opts = ["MODEL.WEIGHTS", args.weights, "MODEL.YOLO.CONF_THRESH_TEST", str(args.confidence_threshold), *args.opts]
    if args.cpu:
        opts += ["MODEL.DEVICE", "cpu"]
    cfg = engine.build_cfg(args.config_file, opts)
    cfg.freeze()
    json_path = predict_images(cfg, args.input, args.output)
    print(f"[yolo-mask predict] overlays and {json_path.name} written to {json_path.parent}")


def _demo(args: argparse.Namespace) -> None:
    from yolo_mask_plugin.demo import run_demo

    run_demo(args.output_dir, data_root=args.data_root, yolo_epochs=args.yolo_epochs, opts=args.opts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yolo-mask", description=__doc__.splitlines()[0])
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

    predict = commands.add_parser("predict", help="images -> overlay PNGs (Visualizer) + COCO-format JSON")
    predict.add_argument("--config-file", default=DEFAULT_CONFIG, metavar="FILE")
    predict.add_argument("--weights", required=True, help="a Detectron2 checkpoint of the model (model_final.pth)")
    predict.add_argument("--input", nargs="+", required=True, help="image files and/or folders of images")
    predict.add_argument("--output", required=True, help="folder for the overlays and predictions.json")
    predict.add_argument("--confidence-threshold", type=float, default=0.6, help="YOLO confidence (paper: 0.6)")
    predict.add_argument("--cpu", action="store_true", help="run on CPU even if a GPU is available")
    predict.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="config KEY VALUE pairs")

    demo = commands.add_parser("demo", help="the main job: data, YOLO (Ultralytics), mask head (Detectron2), eval")
    demo.add_argument("--output-dir", default="output/demo")
    demo.add_argument("--data-root", help="shapes dataset folder (default: as for `yolo-mask data`)")
    demo.add_argument("--yolo-epochs", type=int, default=None, help="Ultralytics epochs (default: the demo's)")
    demo.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="Detectron2 config KEY VALUE pairs")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "eval":
        args.eval_only = True
    {"data": _data, "train": _train, "eval": _train, "predict": _predict, "demo": _demo}[args.command](args)


if __name__ == "__main__":
    main(sys.argv[1:])
