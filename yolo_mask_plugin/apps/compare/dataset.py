"""The comparison's dataset: a COCO-format train/val pair, checked before anything trains.

Every model sees the same images: Detectron2 reads the COCO jsons (registered with its own
`register_coco_instances`), Ultralytics reads the YOLO-seg copy the project's converter writes from them,
and the one evaluator scores against the val json at the images' original resolution.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from ultralytics.data.utils import exif_size

from yolo_mask_plugin.core.errors import InputNotFoundError, InvalidInputError
from yolo_mask_plugin.d2.datasets import register_coco_dataset
from yolo_mask_plugin.data import coco_to_yolo_seg, write_yolo_data_yaml

COMPARE_TRAIN = "yolo_mask_compare_train"
COMPARE_VAL = "yolo_mask_compare_val"
MAX_LISTED = 5  # missing files / bad annotations named in an error message


@dataclass(frozen=True)
class CocoSplit:
    """One split: a COCO instances json and the folder its `file_name`s are relative to."""

    json_file: Path
    image_dir: Path


@dataclass(frozen=True)
class CompareDataset:
    """Both checked splits, their classes, and the YOLO-seg copy Ultralytics reads."""

    train: CocoSplit
    val: CocoSplit
    classes: tuple[str, ...]  # contiguous class index -> name (categories sorted by id, as D2 and the converter)
    category_ids: tuple[int, ...]  # contiguous class index -> the json's category id
    yolo_data_yaml: Path
    num_train_images: int
    num_val_images: int
    mask_format: str  # Detectron2's INPUT.MASK_FORMAT for these annotations: "bitmask" when any mask is RLE
    num_crowd: int  # crowd regions: not trained on (left out of YOLO-seg, dropped by Detectron2), ignored by COCOeval

    def describe(self) -> dict:
        """What results.json records of the dataset: paths, classes, image counts, mask format, crowd regions.

        Returns:
            (dict): JSON-ready description.
        """
        return {
            "train_json": str(self.train.json_file), "train_images": str(self.train.image_dir),
            "val_json": str(self.val.json_file), "val_images": str(self.val.image_dir),
            "classes": list(self.classes), "num_train_images": self.num_train_images,
            "num_val_images": self.num_val_images, "yolo_data_yaml": str(self.yolo_data_yaml),
            "mask_format": self.mask_format, "num_crowd": self.num_crowd,
        }


def _listed(items: list) -> str:
    more = f" (and {len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
    return ", ".join(str(i) for i in items[:MAX_LISTED]) + more


def load_checked_split(split: CocoSplit, role: str) -> dict:
    """The json of `split`, after the checks that would otherwise fail deep inside a trainer or evaluator.

    Args:
        split (CocoSplit): the split's json and image folder.
        role (str): "train" or "val", named in errors.

    Returns:
        (dict): the loaded COCO json.

    Raises:
        InputError: a missing or unreadable file, an image of another size than the json
            says, a json without segmentations, or (val) no images.
    """
    if not split.json_file.is_file():
        raise InputNotFoundError(f"{role} json {str(split.json_file)!r} does not exist")
    if not split.image_dir.is_dir():
        raise InputNotFoundError(f"{role} image folder {str(split.image_dir)!r} does not exist")
    try:
        data = json.loads(split.json_file.read_text())
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"{role} json {split.json_file} is not valid JSON: {e}") from e
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise InvalidInputError(f"{role} json {split.json_file} has no {key!r} list: not a COCO instances file")
    if not data["images"]:
        raise InvalidInputError(f"{role} split is empty: {split.json_file} lists no images")
    if not data["categories"]:
        raise InvalidInputError(f"{role} json {split.json_file} lists no categories")
    if not [a for a in data["annotations"] if not a.get("iscrowd", 0)]:
        raise InvalidInputError(f"{role} split has no instances: {split.json_file} has no (non-crowd) annotations")
    no_mask = [a.get("id") for a in data["annotations"] if not a.get("segmentation")]
    if no_mask:
        raise InvalidInputError(
            f"{role} json {split.json_file}: {len(no_mask)} of {len(data['annotations'])} annotations have no "
            f"'segmentation' (ids {_listed(no_mask)}); instance segmentation needs a mask for every instance"
        )
    missing = [img["file_name"] for img in data["images"] if not (split.image_dir / img["file_name"]).is_file()]
    if missing:
        raise InputNotFoundError(
            f"{role} json {split.json_file}: {len(missing)} of {len(data['images'])} listed images are not on disk "
            f"under {split.image_dir}: {_listed(missing)}"
        )
    bad = [problem for img in data["images"] if (problem := _image_problem(split.image_dir, img))]
    if bad:
        raise ValueError(f"{role} json {split.json_file}: {len(bad)} of {len(data['images'])} images: {_listed(bad)}")
    return data


def _image_problem(image_dir: Path, record: dict) -> str | None:
    """Why an image would fail inside a trainer (unreadable, or not the size the json says), else None.
    Reads the header only; the size is taken after EXIF rotation, as Detectron2 and Ultralytics load it."""
    try:
        with Image.open(image_dir / record["file_name"]) as im:
            width, height = exif_size(im)
    except (UnidentifiedImageError, OSError) as e:
        return f"{record['file_name']} cannot be read as an image ({e})"
    except ImportError:  # Ultralytics' patch of PIL tries an optional HEIF decoder on files PIL cannot identify
        return f"{record['file_name']} cannot be read as an image (not a format PIL can identify)"
    if (height, width) != (record.get("height"), record.get("width")):
        return (f"{record['file_name']} is {width}x{height} but the json says "
                f"{record.get('width')}x{record.get('height')}")
    return None


def _categories(data: dict) -> list[tuple[int, str]]:
    return sorted((c["id"], c["name"]) for c in data["categories"])


def prepare_dataset(train: CocoSplit, val: CocoSplit, work_dir: str | os.PathLike) -> CompareDataset:
    """Check both splits, register them in Detectron2 and write the YOLO-seg copy under `work_dir/yolo`.

    Picks Detectron2's mask format from the annotations (RLE -> "bitmask").

    Args:
        train (CocoSplit): the training split.
        val (CocoSplit): the validation split.
        work_dir (str | os.PathLike): where the YOLO-seg copy goes.

    Returns:
        (CompareDataset): both splits, their classes and category ids, the YOLO-seg data yaml, the mask format.

    Raises:
        InputError: before any training: missing or unreadable files, images of another
            size than the json says, a json without segmentations, an empty val split, or categories that differ
            between train and val (ids or names).
    """
    train = CocoSplit(Path(train.json_file).absolute(), Path(train.image_dir).absolute())
    val = CocoSplit(Path(val.json_file).absolute(), Path(val.image_dir).absolute())
    train_data, val_data = load_checked_split(train, "train"), load_checked_split(val, "val")
    train_cats, val_cats = _categories(train_data), _categories(val_data)
    if train_cats != val_cats:
        raise InvalidInputError(
            f"categories differ between train ({train.json_file}) and val ({val.json_file}): "
            f"train has (id, name) {train_cats}, val has {val_cats}; both splits must list the same categories"
        )
    yolo_root = Path(work_dir).absolute() / "yolo"
    converted = [coco_to_yolo_seg(split.json_file, split.image_dir, yolo_root, split=role)
                 for split, role in ((train, "train"), (val, "val"))]
    rle = any(isinstance(a["segmentation"], dict) for a in train_data["annotations"])
    classes = tuple(name for _, name in train_cats)
    yolo_yaml = write_yolo_data_yaml(yolo_root, classes)
    register_coco_dataset(COMPARE_TRAIN, train.json_file, train.image_dir)
    register_coco_dataset(COMPARE_VAL, val.json_file, val.image_dir)
    return CompareDataset(
        train=train, val=val, classes=classes, category_ids=tuple(i for i, _ in train_cats),
        yolo_data_yaml=yolo_yaml, num_train_images=len(train_data["images"]),
        num_val_images=len(val_data["images"]), mask_format="bitmask" if rle else "polygon",
        num_crowd=sum(c["num_crowd_skipped"] for c in converted),
    )
