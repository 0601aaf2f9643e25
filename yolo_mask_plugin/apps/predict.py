"""Images in, overlay PNGs (Detectron2's Visualizer) and one COCO-format JSON out.

The model runs through Detectron2's DefaultPredictor, so resizing, the YOLO boxes, the mask head and
mask pasting are exactly what evaluation measures. An image that cannot be read is skipped, not fatal.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.data.detection_utils import read_image
from detectron2.engine import DefaultPredictor
from detectron2.evaluation.coco_evaluation import instances_to_coco_json
from detectron2.utils.visualizer import ColorMode, Visualizer
from PIL import UnidentifiedImageError

from yolo_mask_plugin.core.errors import InputNotFoundError, InvalidInputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def list_images(inputs: Iterable[str]) -> list[Path]:
    """Files as given, and the images inside any directory, sorted.

    Args:
        inputs (Iterable[str]): image files and folders.

    Returns:
        (list[Path]): the images.

    Raises:
        InputNotFoundError: a path that is neither a file nor a folder.
        InvalidInputError: no images at all.
    """
    inputs = list(inputs)
    images: list[Path] = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            images += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            images.append(path)
        else:
            raise InputNotFoundError(f"input {name!r} is neither an image file nor a directory")
    if not images:
        raise InvalidInputError(f"no images found in {inputs}")
    return images


def load_image_bgr(path: Path) -> np.ndarray:
    """Any PIL-readable image as HxWx3 BGR uint8: grayscale is replicated, alpha dropped, EXIF applied.

    Args:
        path (Path): the image file.

    Returns:
        (np.ndarray): (H, W, 3) uint8, BGR.

    Raises:
        InvalidInputError: it cannot be read as an image (or does not exist).
    """
    try:
        return read_image(str(path), format="BGR")
    except (UnidentifiedImageError, OSError, ImportError) as e:
        # Ultralytics' PIL patch answers a file PIL cannot identify by importing pi_heif: report PIL's reason
        reason = e.__context__ if isinstance(e, ImportError) and e.__context__ is not None else e
        raise InvalidInputError(f"image {str(path)!r} cannot be read as an image: {reason}") from e


class Predictor:
    """DefaultPredictor plus the two outputs `yolo-mask predict` writes (overlays, COCO annotations).

    Args:
        cfg (CfgNode): the model's config, MODEL.WEIGHTS included; DATASETS.TEST[0] names the classes if registered.

    Attributes:
        categories (list[dict]): COCO categories {"id", "name"}.
        category_ids (dict[int, int]): contiguous class index -> dataset category id.
    """

    def __init__(self, cfg: CfgNode):
        self.predictor = DefaultPredictor(cfg)
        dataset = cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else "__unused"
        self.metadata = MetadataCatalog.get(dataset)
        classes = self.metadata.get("thing_classes") or [str(i) for i in range(cfg.MODEL.ROI_HEADS.NUM_CLASSES)]
        id_map = self.metadata.get("thing_dataset_id_to_contiguous_id")
        contiguous_to_id = {v: k for k, v in id_map.items()} if id_map else {i: i + 1 for i in range(len(classes))}
        self.categories = [{"id": contiguous_to_id[i], "name": name} for i, name in enumerate(classes)]
        self.category_ids = contiguous_to_id

    def __call__(self, image_bgr: np.ndarray):
        """Detectron2 `Instances` (on CPU) for one BGR image in its original size."""
        return self.predictor(image_bgr)["instances"].to("cpu")

    def overlay(self, image_bgr: np.ndarray, instances) -> np.ndarray:
        """Masks, boxes, classes and scores drawn by Detectron2's Visualizer.

        Args:
            image_bgr (np.ndarray): the image, (H, W, 3) BGR.
            instances (Instances): its predictions.

        Returns:
            (np.ndarray): the drawing, (H, W, 3) RGB.
        """
        visualizer = Visualizer(image_bgr[:, :, ::-1], self.metadata, instance_mode=ColorMode.IMAGE)
        return visualizer.draw_instance_predictions(instances).get_image()


def coco_results(instances, image_id: int, category_ids: Mapping[int, int] | Sequence[int]) -> list[dict]:
    """One image's predictions as COCO results (Detectron2's own conversion: XYWH boxes, RLE masks, scores), with
    the dataset's category ids.

    Args:
        instances (Instances): Detectron2 predictions on the CPU (pred_boxes, scores, pred_classes, pred_masks).
        image_id (int): the image's id in the COCO json.
        category_ids (Mapping[int, int] | Sequence[int]): contiguous class index -> the json's category id.

    Returns:
        (list[dict]): one COCO result per instance.
    """
    results = instances_to_coco_json(instances, image_id)
    for r in results:
        r["category_id"] = category_ids[r["category_id"]]
    return results


class Predictions(NamedTuple):
    """What `predict_images` wrote, and the images it skipped, each with the reason."""

    json_path: Path
    skipped: dict[Path, str]


def predict_images(cfg: CfgNode, inputs: Iterable[str], output_dir: str | os.PathLike, log=print) -> Predictions:
    """Write `<name>.png` overlays and `predictions.json` (COCO: images, annotations with scores, categories).

    An image that cannot be read (corrupt, empty, not an image) is skipped with a warning through `log` and
    returned in `skipped`; the others are predicted. `predictions.json` is written however the loop ends, so an
    error on one image loses none of the results before it; it lists the predicted images only (ids 1, 2, ...),
    and is written with no images when every image was skipped, so a caller always finds one.

    Args:
        cfg (CfgNode): the model's config, MODEL.WEIGHTS included.
        inputs (Iterable[str]): image files and folders.
        output_dir (str | os.PathLike): where the overlays and predictions.json go.
        log (Callable): where warnings go.

    Returns:
        (Predictions): predictions.json's path and the skipped images with their reasons.
    """
    images = list_images(inputs)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    predictor = Predictor(cfg)
    coco = {"images": [], "annotations": [], "categories": predictor.categories}
    skipped: dict[Path, str] = {}
    json_path = output_dir / "predictions.json"
    try:
        for number, path in enumerate(images, start=1):
            try:
                image_bgr = load_image_bgr(path)
            except InvalidInputError as e:
                skipped[path] = str(e)
                log(f"[{number}/{len(images)}] warning: skipped, {e}")
                continue
            instances = predictor(image_bgr)
            cv2.imwrite(str(output_dir / f"{path.stem}.png"), predictor.overlay(image_bgr, instances)[:, :, ::-1])
            height, width = image_bgr.shape[:2]
            image_id = len(coco["images"]) + 1
            coco["images"].append({"id": image_id, "file_name": str(path), "height": height, "width": width})
            for annotation in coco_results(instances, image_id, predictor.category_ids):
                annotation["id"] = len(coco["annotations"]) + 1
                coco["annotations"].append(annotation)
            log(f"[{number}/{len(images)}] {path.name}: {len(instances)} instances")
    finally:
        json_path.write_text(json.dumps(coco))
    return Predictions(json_path, skipped)
