"""Instance masks as YOLO-seg polygons, holes and separate parts included, and back (plain cv2 + numpy).

A YOLO-seg label holds one polygon per instance. `mask_to_yolo_polygon` writes a whole mask as one: every
boundary ring (outer contours and hole contours, traced a quarter pixel inside the pixel edges) joined by
zero-width bridges, each walked there and back. Under the even-odd rule the doubled bridges cancel and the
hole rings cut their holes, so `yolo_polygon_to_mask` (fill on a 4x finer grid, keep the pixels at least half
covered: the 1-px bridge lines cover at most a third of any pixel) gives back exactly the mask. Ultralytics'
own `polygon2mask` fills the holes right too but draws the bridges between separate parts as 1-pixel lines,
as it does for its own `merge_multi_segment` labels.
"""
from __future__ import annotations

import cv2
import numpy as np

SUPERSAMPLE = 4
_FIXED_POINT_BITS = 8  # sub-pixel precision of the vertices given to cv2.fillPoly


def boundary_rings(mask: np.ndarray, holes: bool = True) -> list[np.ndarray]:
    """Contours of a binary mask as (K, 2) rings in continuous pixel coordinates, largest first.

    Traced on the 2x nearest-upsampled mask, so they run a quarter pixel inside the pixel edges: rasterisers that
    fill pixel centres (pycocotools, `polygon2mask`) give back exactly the mask, whereas contours through pixel
    centres lose half a pixel all round and sit on rasterisation ties.

    Args:
        mask: (H, W) binary mask.
        holes: also the contours of holes; False: outer contours only.

    Returns:
        (K, 2) rings of (x, y) vertices.
    """
    upsampled = cv2.resize(mask.astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(upsampled, cv2.RETR_CCOMP if holes else cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contours = sorted(contours, key=lambda c: -cv2.contourArea(c))
    return [(c.reshape(-1, 2) + 0.5) / 2 for c in contours]


def mask_to_yolo_polygon(mask: np.ndarray) -> np.ndarray:
    """Write a binary mask as one YOLO-seg polygon that `yolo_polygon_to_mask` turns back into exactly the mask.

    The mask's rings are joined nearest first, each at its closest pair of vertices, by a bridge walked there
    and back.

    Args:
        mask: (H, W) binary mask.

    Returns:
        The (K, 2) polygon in pixel coordinates; (0, 2) for an empty mask.
    """
    rings = boundary_rings(mask)
    if not rings:
        return np.zeros((0, 2))
    polygon, rest = rings[0], rings[1:]
    while rest:
        distances = [((polygon[:, None] - ring[None]) ** 2).sum(-1) for ring in rest]
        k = int(np.argmin([d.min() for d in distances]))
        i, j = np.unravel_index(distances[k].argmin(), distances[k].shape)
        ring = rest.pop(k)
        polygon = np.concatenate([polygon[: i + 1], ring[j:], ring[: j + 1], polygon[i:]])
    return polygon


def yolo_polygon_to_mask_crop(polygon: np.ndarray, image_hw: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Rasterise a polygon inside its box grown by one pixel (clipped to the image); zero everywhere outside.

    Filled on a grid `SUPERSAMPLE` times finer with the even-odd rule, bridges dropped (module docstring): each pixel
    keeps whether at least half of it is covered.

    Args:
        polygon: (K, 2) vertices in pixel coordinates.
        image_hw: (H, W) of the image.

    Returns:
        The uint8 mask of the crop, and the crop's top-left (x0, y0) in the image.
    """
    height, width = image_hw
    if len(polygon) < 3:
        return np.zeros((0, 0), np.uint8), (0, 0)
    x0, y0 = (max(int(np.floor(v)) - 1, 0) for v in polygon.min(0))
    x1, y1 = min(int(np.ceil(polygon[:, 0].max())) + 1, width), min(int(np.ceil(polygon[:, 1].max())) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), np.uint8), (0, 0)
    canvas = np.zeros(((y1 - y0) * SUPERSAMPLE, (x1 - x0) * SUPERSAMPLE), np.uint8)
    # a fine pixel's integer index is its centre: continuous x maps to x * SUPERSAMPLE - 0.5
    fine = ((polygon - (x0, y0)) * SUPERSAMPLE - 0.5) * (1 << _FIXED_POINT_BITS)
    cv2.fillPoly(canvas, [np.round(fine).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=_FIXED_POINT_BITS)
    coverage = canvas.reshape(y1 - y0, SUPERSAMPLE, x1 - x0, SUPERSAMPLE).mean(axis=(1, 3))
    return (coverage >= 0.5).astype(np.uint8), (x0, y0)


def yolo_polygon_to_mask(polygon: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Rasterise a polygon in the whole image (`yolo_polygon_to_mask_crop` pasted at its place).

    Args:
        polygon: (K, 2) vertices in pixel coordinates.
        image_hw: (H, W) of the image.

    Returns:
        The (H, W) uint8 mask.
    """
    mask = np.zeros(image_hw, np.uint8)
    crop, (x0, y0) = yolo_polygon_to_mask_crop(polygon, image_hw)
    mask[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
    return mask
