"""The embedded default dataset: synthetic shapes with occlusion, in COCO and Ultralytics YOLO-seg format.

It lets the demo, the tests and both back-ends run offline with nothing to download. Colour says nothing
about the class and later shapes occlude earlier ones, so a model has to learn shape and visible extent.
Every image depends only on (seed, split, index), so a dataset is byte-identical across runs and machines
with the same OpenCV.
"""
from __future__ import annotations

import json
import os
import shutil
import zlib
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from .convert import coco_to_yolo_seg, mask_to_polygons, write_yolo_data_yaml

__all__ = ["SHAPES_CLASSES", "default_shapes_root", "generate_shapes_dataset"]

SHAPES_CLASSES = ("circle", "square", "triangle", "star")

_MARKER = ".complete.json"
_FORMAT_VERSION = 1  # bump when the drawing changes, so old folders are regenerated
_MIN_VISIBLE_FRACTION = 0.35
_MIN_VISIBLE_AREA = 80
_MIN_PART_AREA = 10  # px; smaller occlusion slivers are removed from the mask, not annotated
_PLACEMENT_TRIES = 20


def default_shapes_root() -> Path:
    """Where the shapes dataset lives by default, as Detectron2 finds its datasets under ``$DETECTRON2_DATASETS``.

    Returns:
        ``$YOLO_MASK_DATASETS/shapes``, else ``./datasets/shapes``.
    """
    return Path(os.path.expanduser(os.getenv("YOLO_MASK_DATASETS", "datasets"))) / "shapes"


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour noise, a linear gradient and a few lines, so the background is not a flat colour."""
    coarse = rng.uniform(40, 215, size=(rng.integers(3, 9), rng.integers(3, 9), 3)).astype(np.float32)
    image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * np.arange(size)[None, :] + np.sin(angle) * np.arange(size)[:, None]
    image += (ramp / size * rng.uniform(-60, 60))[..., None]
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(2, 6)):
        p1, p2 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        colour, thickness = rng.integers(0, 256, 3).tolist(), int(rng.integers(1, 4))
        cv2.line(image, tuple(map(int, p1)), tuple(map(int, p2)), colour, thickness)
    return image


def _shape_mask(rng: np.random.Generator, cls: int, size: int) -> np.ndarray:
    """Full (unoccluded) mask of one random shape of class ``cls``, entirely inside the image."""
    extent = rng.uniform(0.12, 0.40) * size  # diameter of the circumscribed circle
    radius = extent / 2
    cx, cy = rng.uniform(radius, size - radius, 2)
    theta = rng.uniform(0, 2 * np.pi)
    mask = np.zeros((size, size), np.uint8)
    if SHAPES_CLASSES[cls] == "circle":
        cv2.circle(mask, (round(cx), round(cy)), round(radius), 1, thickness=-1)
        return mask
    if SHAPES_CLASSES[cls] == "square":
        radii, corners = np.full(4, radius), 4
    elif SHAPES_CLASSES[cls] == "triangle":
        radii, corners = np.full(3, radius), 3
    else:  # star: alternate outer and inner radius
        radii, corners = np.tile([radius, radius * rng.uniform(0.38, 0.5)], 5), 10
    angles = theta + 2 * np.pi * np.arange(corners) / corners
    points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask


def _remove_slivers(mask: np.ndarray) -> np.ndarray:
    """Drop connected parts smaller than ``_MIN_PART_AREA`` so mask, polygons, area and bbox agree."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= _MIN_PART_AREA)
    return np.isin(labels, keep[keep > 0]).astype(np.uint8)


def _has_hole(mask: np.ndarray) -> bool:
    """COCO polygons cannot express holes, so a shape may not land inside another's visible region."""
    _, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return hierarchy is not None and bool((hierarchy[0, :, 3] >= 0).any())


def _render_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """One image and its (class index, visible mask) instances, painted back to front."""
    image = _background(rng, size)
    instances: list[tuple[int, np.ndarray, int]] = []  # class, visible mask, full area
    for _ in range(rng.integers(2, 8)):
        cls = int(rng.integers(len(SHAPES_CLASSES)))
        for _ in range(_PLACEMENT_TRIES):
            full = _shape_mask(rng, cls, size)
            occluded = [visible & (1 - full) for _, visible, _ in instances]
            if not any(_has_hole(m) for m in occluded):
                break
        else:
            continue
        instances = [(c, m, a) for (c, _, a), m in zip(instances, occluded)] + [(cls, full, int(full.sum()))]
        pixels = full.astype(bool)
        colour = rng.integers(0, 256, 3) + rng.normal(0, 8, (int(pixels.sum()), 1))  # textured, not a flat fill
        image[pixels] = np.clip(colour, 0, 255).astype(np.uint8)
    kept = []
    for cls, visible, full_area in instances:
        visible = _remove_slivers(visible)
        area = int(visible.sum())
        if area >= _MIN_VISIBLE_AREA and area >= _MIN_VISIBLE_FRACTION * full_area:
            kept.append((cls, visible))
    return image, kept


def _write_split(root: Path, split: str, num_images: int, image_size: int, seed: int) -> None:
    """Render one split's PNGs and its COCO instances json."""
    image_dir = root / "images" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.default_rng([seed, zlib.crc32(split.encode()), index])
        image, instances = _render_image(rng, image_size)
        file_name = f"{index:06d}.png"
        if not cv2.imwrite(str(image_dir / file_name), image):
            raise OSError(f"could not write {image_dir / file_name}")
        images.append({"id": index + 1, "file_name": file_name, "width": image_size, "height": image_size})
        for cls, visible in instances:
            rle = mask_utils.encode(np.asfortranarray(visible))
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": index + 1,
                "category_id": cls + 1,
                "segmentation": mask_to_polygons(visible),
                "area": int(mask_utils.area(rle)),
                "bbox": mask_utils.toBbox(rle).tolist(),
                "iscrowd": 0,
            })
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(SHAPES_CLASSES)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))


def generate_shapes_dataset(
    root: str | os.PathLike,
    num_train: int = 240,
    num_val: int = 60,
    image_size: int = 256,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Generate the shapes dataset under ``root`` in COCO and YOLO-seg form.

    A marker written last records the parameters: a complete folder with the same parameters is reused
    unless ``force``, anything else (other parameters, an interrupted run) is wiped and regenerated.

    Args:
        root: the dataset's folder.
        num_train: training images.
        num_val: validation images.
        image_size: side of the square images, in pixels.
        seed: the random seed; the same parameters give the same images.
        force: regenerate even a complete folder with the same parameters.

    Returns:
        ``root``, holding ``images/``, ``labels/``, ``annotations/instances_<split>.json`` and ``shapes-seg.yaml``.
    """
    root = Path(root)
    params = {"version": _FORMAT_VERSION, "num_train": num_train, "num_val": num_val, "image_size": image_size,
              "seed": seed}
    marker = root / _MARKER
    if not force and marker.is_file() and json.loads(marker.read_text()) == params:
        return root
    marker.unlink(missing_ok=True)
    for folder in ("images", "labels", "annotations"):  # stale files or Ultralytics *.cache would leak in
        shutil.rmtree(root / folder, ignore_errors=True)
    for split, num_images in (("train", num_train), ("val", num_val)):
        _write_split(root, split, num_images, image_size, seed)
        coco_to_yolo_seg(root / "annotations" / f"instances_{split}.json", root / "images" / split, root, split)
    write_yolo_data_yaml(root, SHAPES_CLASSES, yaml_name="shapes-seg.yaml")
    marker.write_text(json.dumps(params))
    return root
