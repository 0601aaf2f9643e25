"""Register the embedded shapes dataset in Detectron2's catalogs, lazily like D2's builtin datasets.

Configs can then name ``shapes_train`` / ``shapes_val`` in ``DATASETS.TRAIN`` / ``DATASETS.TEST``; nothing
is read from disk until a loader asks for the dicts.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances

from yolo_mask_plugin.core.errors import InputNotFoundError
from yolo_mask_plugin.data.shapes import SHAPES_CLASSES, default_shapes_root

__all__ = ["SHAPES_TRAIN", "SHAPES_VAL", "mask_format_of", "register_coco_dataset", "register_shapes_dataset"]

SHAPES_TRAIN = "shapes_train"
SHAPES_VAL = "shapes_val"


def _load_generated(load: Callable[[], list[dict]], json_file: Path, root: Path) -> list[dict]:
    """Run D2's COCO loader, but first explain how to create a dataset that is not there yet."""
    if not json_file.is_file():
        raise InputNotFoundError(
            f"{json_file} does not exist: the shapes dataset has not been generated under {root}. "
            f"Run `yolo-mask data`, or call yolo_mask_plugin.data.generate_shapes_dataset('{root}')."
        )
    return load()


def register_shapes_dataset(root: str | os.PathLike | None = None) -> None:
    """Register ``shapes_train`` and ``shapes_val`` under ``root`` (default: :func:`default_shapes_root`).

    Safe to call repeatedly: the same root is a no-op, another root replaces the earlier registration
    instead of tripping D2's "already registered" assertion.

    Args:
        root: the shapes dataset's folder, as `generate_shapes_dataset` (or `yolo-mask data`) writes it.
    """
    root = Path(root if root is not None else default_shapes_root()).expanduser().absolute()
    for name, split in ((SHAPES_TRAIN, "train"), (SHAPES_VAL, "val")):
        json_file = root / "annotations" / f"instances_{split}.json"
        if name in DatasetCatalog.list():
            if MetadataCatalog.get(name).get("json_file") == str(json_file):
                continue
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        metadata = {"thing_classes": list(SHAPES_CLASSES), "yolo_data_yaml": str(root / "shapes-seg.yaml")}
        register_coco_instances(name, metadata, str(json_file), str(root / "images" / split))
        load = DatasetCatalog.pop(name)  # D2's lazy COCO loader, wrapped with the friendlier missing-data error
        DatasetCatalog.register(name, functools.partial(_load_generated, load, json_file, root))


def mask_format_of(dataset_names: list[str] | tuple[str, ...]) -> str:
    """The INPUT.MASK_FORMAT registered datasets need.

    Args:
        dataset_names: names in Detectron2's DatasetCatalog.

    Returns:
        "bitmask" when any annotation stores its mask as RLE (which Detectron2's default "polygon" refuses deep
        in its data loader), else "polygon".
    """
    for name in dataset_names:
        for record in DatasetCatalog.get(name):
            if any(isinstance(a.get("segmentation"), dict) for a in record.get("annotations", [])):
                return "bitmask"
    return "polygon"


def register_coco_dataset(name: str, json_file: str | os.PathLike, image_dir: str | os.PathLike) -> None:
    """Register a COCO instances dataset as Detectron2's `register_coco_instances`, replacing one of that name.

    Missing files are an input error here, not a failure inside a data loader later.

    Args:
        name: the dataset's name in DatasetCatalog / MetadataCatalog.
        json_file: the COCO instances json.
        image_dir: the folder of its images.

    Raises:
        InputNotFoundError: `json_file` or `image_dir` does not exist.
    """
    for path, what in ((json_file, "COCO json"), (image_dir, "image folder")):
        if not Path(path).exists():
            raise InputNotFoundError(f"{what} {str(path)!r} of dataset {name!r} does not exist")
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_coco_instances(name, {}, str(json_file), str(image_dir))
