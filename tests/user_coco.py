"""A COCO dataset as users bring them, generated: RLE masks (compressed and not) next to polygons, masks with
holes, instances split in two by an occluder, crowd regions, category ids that are not 1..N, images of mixed
sizes saved as RGB, grayscale, RGBA and JPEG files. Deterministic from a seed."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image

CATEGORIES = [{"id": 3, "name": "ring"}, {"id": 7, "name": "blob"}, {"id": 12, "name": "bar"}]
SIZES = ((128, 128), (96, 128), (128, 96))  # (height, width)
IMAGE_KINDS = ("RGB", "L", "RGBA", "JPEG")


def _ring(rng, h, w) -> np.ndarray:
    """A disc with a hole (the hole's area far above rasterisation noise)."""
    mask = np.zeros((h, w), np.uint8)
    r = int(rng.integers(16, 30))
    c = (int(rng.integers(r, w - r)), int(rng.integers(r, h - r)))
    cv2.circle(mask, c, r, 1, -1)
    cv2.circle(mask, c, r // 2, 0, -1)
    return mask


def _blob(rng, h, w) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    c = (int(rng.integers(20, w - 20)), int(rng.integers(20, h - 20)))
    axes = (int(rng.integers(8, 20)), int(rng.integers(8, 20)))
    cv2.ellipse(mask, c, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask


def _split_bar(rng, h, w) -> np.ndarray:
    """A bar cut in two by an occluding stripe: one instance, two separate parts."""
    mask = np.zeros((h, w), np.uint8)
    y = int(rng.integers(10, h - 20))
    mask[y : y + int(rng.integers(8, 14)), 8 : w - 8] = 1
    gap = int(rng.integers(w // 3, w // 2))
    mask[:, gap : gap + int(rng.integers(6, 16))] = 0
    return mask


def _segmentation(mask: np.ndarray, style: str):
    rle = mask_utils.encode(np.asfortranarray(mask))
    if style == "rle":
        return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    if style == "uncompressed":  # COCO's crowd-style RLE: run lengths as a list, column-major
        flat = mask.flatten(order="F")
        changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
        return {"size": list(mask.shape), "counts": np.diff(np.concatenate([[0], changes])).tolist()}
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def write_user_coco(root: Path, split: str, num_images: int, seed: int, sizes=SIZES) -> tuple[Path, Path]:
    """Write `root/<split>/` images and `root/<split>.json`; returns (json, image folder)."""
    rng = np.random.default_rng(seed)
    image_dir = root / split
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        h, w = sizes[index % len(sizes)]
        pixels = rng.integers(0, 80, (h, w, 3)).astype(np.uint8)
        instances = [(3, _ring(rng, h, w)), (7, _blob(rng, h, w))]
        if index % 2 == 0:
            instances.append((12, _split_bar(rng, h, w)))
        for category_id, mask in instances:  # later instances occlude earlier ones
            pixels[mask > 0] = rng.integers(100, 256, 3)
        visible = []
        for k, (category_id, mask) in enumerate(instances):
            for _, later in instances[k + 1 :]:
                mask = mask & (1 - later)
            visible.append((category_id, mask))
        kind = IMAGE_KINDS[index % len(IMAGE_KINDS)]
        name = f"{index:04d}.jpg" if kind == "JPEG" else f"{index:04d}.png"
        image = Image.fromarray(pixels)
        image = image.convert(kind) if kind in ("L", "RGBA") else image
        image.save(image_dir / name, quality=95)
        images.append({"id": 100 + index, "file_name": name, "height": h, "width": w})
        styles = ("rle", "uncompressed", "polygon")
        for k, (category_id, mask) in enumerate(visible):
            if not mask.any():
                continue
            style = "rle" if category_id == 3 else styles[(index + k) % 3]  # holes need RLE
            rle = mask_utils.encode(np.asfortranarray(mask))
            annotations.append({
                "id": len(annotations) + 1, "image_id": 100 + index, "category_id": category_id,
                "segmentation": _segmentation(mask, style), "area": float(mask_utils.area(rle)),
                "bbox": mask_utils.toBbox(rle).tolist(), "iscrowd": 0,
            })
        if index % 3 == 0:  # a crowd region: a patch of small blobs in one RLE
            crowd = np.zeros((h, w), np.uint8)
            for _ in range(4):
                cv2.circle(crowd, (int(rng.integers(5, w - 5)), int(rng.integers(5, h - 5))), 3, 1, -1)
            rle = mask_utils.encode(np.asfortranarray(crowd))
            annotations.append({
                "id": len(annotations) + 1, "image_id": 100 + index, "category_id": 7,
                "segmentation": _segmentation(crowd, "uncompressed"), "area": float(mask_utils.area(rle)),
                "bbox": mask_utils.toBbox(rle).tolist(), "iscrowd": 1,
            })
    json_file = root / f"{split}.json"
    json_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return json_file, image_dir
