"""Convert instance masks between COCO json (Detectron2's input) and Ultralytics YOLO-seg labels.

Users bring their own data in either format; the two sides of the plugin need both. COCO -> YOLO-seg writes
each mask, holes and separate parts included, as one polygon (`polygon_masks.py`), which the YOLO-mask
trainer rasterises back to exactly the COCO mask.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import yaml
from PIL import Image
from ultralytics.data.utils import IMG_FORMATS, exif_size

from yolo_mask_plugin.core.errors import InputNotFoundError, InvalidInputError
from yolo_mask_plugin.data.polygon_masks import boundary_rings, mask_to_yolo_polygon, yolo_polygon_to_mask

__all__ = ["annotation_mask", "coco_to_yolo_seg", "mask_to_polygons", "write_yolo_data_yaml", "yolo_seg_to_coco"]


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours of a binary mask as COCO polygons, largest first.

    COCO polygons cannot express holes (pycocotools unites them): masks with holes belong in RLE.

    Args:
        mask: (H, W) binary mask.

    Returns:
        COCO polygons: each a flat [x1, y1, x2, y2, ...] list in continuous pixel coordinates.
    """
    return [ring.ravel().tolist() for ring in boundary_rings(mask, holes=False) if len(ring) >= 3]


def annotation_mask(ann: dict, height: int, width: int, where: str) -> np.ndarray:
    """Decode one COCO annotation's mask (polygons or (un)compressed RLE) as COCOeval decodes it.

    Args:
        ann: the COCO annotation.
        height: the image's height.
        width: the image's width.
        where: what to name in an error (e.g. the json's path).

    Returns:
        The (H, W) uint8 mask.

    Raises:
        InvalidInputError: the annotation has no usable segmentation.
    """
    where = f"{where}: annotation id {ann.get('id')}"
    if "segmentation" not in ann:
        raise InvalidInputError(
            f"{where} has no 'segmentation': instance masks are required, boxes alone are not enough"
        )
    seg = ann["segmentation"]
    if isinstance(seg, dict):
        if list(seg.get("size", [])) != [height, width]:
            raise InvalidInputError(
                f"{where}: RLE size {seg.get('size')} does not match the image size [{height}, {width}]"
            )
        rle = mask_utils.frPyObjects(seg, height, width) if isinstance(seg.get("counts"), list) else seg
    elif isinstance(seg, list):
        if any(len(p) % 2 for p in seg):
            raise InvalidInputError(f"{where}: a polygon has an odd number of coordinates")
        polygons = [p for p in seg if len(p) >= 6]
        if not polygons:
            raise InvalidInputError(f"{where}: the mask is empty (no polygon with at least 3 points)")
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    else:
        raise InvalidInputError(
            f"{where}: 'segmentation' must be a list of polygons or an RLE dict, got {type(seg).__name__}"
        )
    mask = mask_utils.decode(rle)
    if not mask.any():
        raise InvalidInputError(f"{where}: the mask is empty")
    return mask


def _place_image(src: Path, dst: Path, copy: bool) -> None:
    """Put one image where Ultralytics expects it, replacing a stale copy or link from an earlier run."""
    if not src.is_file():
        raise InputNotFoundError(f"image {src} listed in the COCO json does not exist")
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    if copy:
        shutil.copy2(src, dst)
    else:
        os.symlink(src.resolve(), dst)


def coco_to_yolo_seg(
    coco_json: str | os.PathLike,
    image_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    split: str = "train",
    copy_images: bool = False,
) -> dict:
    """Write ``output_dir/labels/<split>/*.txt`` (and link or copy the images) from a COCO instances json.

    Class indices follow the json's categories sorted by id (any ids, contiguous or not). Every mask, polygons
    or RLE, is decoded as COCOeval decodes it and written with `mask_to_yolo_polygon`, holes and separate parts
    included. Crowd annotations are left out: Ultralytics has no ignore regions, and Detectron2 drops them
    from training too (COCOeval ignores detections on them). Images without instances get an empty label
    file, Ultralytics' convention for background images.

    Args:
        coco_json: the COCO instances json.
        image_dir: the folder of its images.
        output_dir: the YOLO-seg root (``images/<split>``, ``labels/<split>`` under it).
        split: the split's folder name.
        copy_images: copy the images instead of linking them.

    Returns:
        The class names and the counts written (images, instances, crowds left out).

    Examples:
        >>> info = coco_to_yolo_seg("instances_train.json", "images/train", "yolo_data", split="train")
        >>> write_yolo_data_yaml("yolo_data", info["names"])  # then YOLOMask(...).train(data="yolo_data/data.yaml")
    """
    coco_json, image_dir, output_dir = Path(coco_json), Path(image_dir), Path(output_dir)
    if not coco_json.is_file():
        raise InputNotFoundError(f"COCO json {coco_json} does not exist")
    data = json.loads(coco_json.read_text())
    if not data.get("categories"):
        raise InvalidInputError(f"{coco_json} lists no categories")
    categories = sorted(data["categories"], key=lambda c: c["id"])
    class_index = {c["id"]: i for i, c in enumerate(categories)}

    anns_by_image: dict[int, list[dict]] = {img["id"]: [] for img in data.get("images", [])}
    for ann in data.get("annotations", []):
        if ann["image_id"] not in anns_by_image:
            raise InvalidInputError(
                f"{coco_json}: annotation id {ann.get('id')} refers to unknown image id {ann['image_id']}"
            )
        if ann["category_id"] not in class_index:
            raise InvalidInputError(
                f"{coco_json}: annotation id {ann.get('id')} has unknown category id {ann['category_id']}"
            )
        anns_by_image[ann["image_id"]].append(ann)

    image_out = output_dir / "images" / split
    label_out = output_dir / "labels" / split
    in_place = image_out.resolve() == image_dir.resolve()
    image_out.mkdir(parents=True, exist_ok=True)
    label_out.mkdir(parents=True, exist_ok=True)

    seen: dict[str, str] = {}
    num_instances = num_crowd = 0
    for img in data.get("images", []):
        name = Path(img["file_name"]).name
        if name in seen:  # flat Ultralytics folders cannot hold two images of one name
            raise InvalidInputError(
                f"{coco_json}: images '{seen[name]}' and '{img['file_name']}' share the file name {name}"
            )
        seen[name] = img["file_name"]
        src = image_dir / img["file_name"]
        if in_place:
            if not src.is_file():
                raise InputNotFoundError(f"image {src} listed in {coco_json} does not exist")
        else:
            _place_image(src, image_out / name, copy_images)

        h, w = img["height"], img["width"]
        lines = []
        for ann in anns_by_image[img["id"]]:
            if ann.get("iscrowd", 0):
                num_crowd += 1
                continue
            points = mask_to_yolo_polygon(annotation_mask(ann, h, w, str(coco_json)))
            points = np.clip(points / np.array([w, h]), 0.0, 1.0)
            lines.append(" ".join([str(class_index[ann["category_id"]]), *(f"{v:.7g}" for v in points.ravel())]))
        (label_out / f"{Path(name).stem}.txt").write_text("".join(f"{line}\n" for line in lines))
        num_instances += len(lines)
    return {
        "names": [c["name"] for c in categories], "num_images": len(seen), "num_instances": num_instances,
        "num_crowd_skipped": num_crowd,
    }


def write_yolo_data_yaml(
    output_dir: str | os.PathLike,
    names: list[str] | tuple[str, ...],
    train: str = "images/train",
    val: str = "images/val",
    yaml_name: str = "data.yaml",
) -> Path:
    """Write an Ultralytics dataset yaml; its ``path:`` is absolute, so it works from any cwd.

    Args:
        output_dir: the dataset root, where the yaml is written.
        names: the class names, in class-index order.
        train: the training images, relative to the root.
        val: the validation images, relative to the root.
        yaml_name: the yaml's file name.

    Returns:
        The path of the yaml.
    """
    output_dir = Path(output_dir)
    content = {"path": str(output_dir.resolve()), "train": train, "val": val, "names": dict(enumerate(names))}
    path = output_dir / yaml_name
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def _read_label_file(label_file: Path, num_classes: int) -> list[tuple[int, np.ndarray]]:
    """Parse one YOLO-seg label file into (class index, normalised polygon) pairs, rejecting malformed lines."""
    instances = []
    for line_no, line in enumerate(label_file.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{label_file}, line {line_no}"
        try:
            cls, coords = int(fields[0]), np.array(fields[1:], dtype=np.float64)
        except ValueError as e:
            raise InvalidInputError(f"{where}: expected 'class x1 y1 x2 y2 ...' with an integer class ({e})") from None
        if not 0 <= cls < num_classes:
            raise InvalidInputError(f"{where}: class index {cls} is out of range for {num_classes} names")
        if len(coords) % 2:
            raise InvalidInputError(f"{where}: odd number of polygon coordinates ({len(coords)})")
        if len(coords) < 6:
            raise InvalidInputError(
                f"{where}: a segment needs at least 3 points, got {len(coords) // 2} (box-only label?)"
            )
        instances.append((cls, coords.reshape(-1, 2)))
    return instances


def yolo_seg_to_coco(
    image_dir: str | os.PathLike,
    label_dir: str | os.PathLike,
    names: list[str] | tuple[str, ...],
    output_json: str | os.PathLike,
) -> Path:
    """Write a COCO instances json (bbox and area from pycocotools) for a YOLO-seg image/label folder pair.

    A simple polygon stays a COCO polygon; one with bridges (holes or separate parts, as `coco_to_yolo_seg` and
    Ultralytics' `merge_multi_segment` write them) is rasterised as the YOLO-mask trainer rasterises it and stored
    as RLE, since COCO polygons cannot hold holes. A missing label file means a background image, as in
    Ultralytics. Category ids are class index + 1.

    Args:
        image_dir: the images of one split.
        label_dir: their YOLO-seg label files (``<image stem>.txt``).
        names: the class names, in class-index order.
        output_json: where to write the json.

    Returns:
        `output_json`.

    Raises:
        InputNotFoundError: `image_dir` does not exist.
        InvalidInputError: a label line is malformed (the error names file and line).
    """
    image_dir, label_dir, output_json = Path(image_dir), Path(label_dir), Path(output_json)
    if not image_dir.is_dir():
        raise InputNotFoundError(f"image folder {image_dir} does not exist")
    images, annotations = [], []
    image_files = sorted(p for p in image_dir.iterdir() if p.suffix[1:].lower() in IMG_FORMATS)
    for image_id, image_file in enumerate(image_files, start=1):
        with Image.open(image_file) as im:
            w, h = exif_size(im)
        images.append({"id": image_id, "file_name": image_file.name, "width": w, "height": h})
        label_file = label_dir / f"{image_file.stem}.txt"
        for cls, points in _read_label_file(label_file, len(names)) if label_file.is_file() else []:
            points = points * np.array([w, h])
            if len(np.unique(points, axis=0)) == len(points):  # a simple ring
                segmentation = [points.ravel().tolist()]
                rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))
            else:
                rle = mask_utils.encode(np.asfortranarray(yolo_polygon_to_mask(points, (h, w))))
                segmentation = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": cls + 1,
                "segmentation": segmentation,
                "area": float(mask_utils.area(rle)),
                "bbox": mask_utils.toBbox(rle).tolist(),
                "iscrowd": 0,
            })
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(names)]
    output_json.parent.mkdir(parents=True, exist_ok=True)
    output_json.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return output_json
