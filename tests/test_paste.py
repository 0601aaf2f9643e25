"""The core's mask paste is Detectron2's: equal to `paste_masks_in_image` on random, border-crossing and empty sets."""
from __future__ import annotations

import pytest
import torch
from detectron2.layers.mask_ops import paste_masks_in_image

from yolo_mask_plugin.core.paste import paste_masks


def _random_boxes(n: int, height: int, width: int, generator: torch.Generator, spill: float) -> torch.Tensor:
    """xyxy boxes of 1 px up to the image size, reaching up to `spill` of the image beyond its border."""
    size = torch.rand(n, 2, generator=generator) * torch.tensor([width, height]) + 1
    low = torch.tensor([-spill * width, -spill * height])
    high = torch.tensor([width * (1 + spill), height * (1 + spill)]) - size
    corner = low + torch.rand(n, 2, generator=generator) * (high - low)
    boxes = torch.cat([corner, corner + size], dim=1)
    # Detectron2's paste raises on a box entirely outside the image (an empty `arange`), so compare the boxes
    # that touch it; ours pastes nothing for the others (next test)
    touching = (boxes[:, 2] > 0) & (boxes[:, 3] > 0) & (boxes[:, 0] < width) & (boxes[:, 1] < height)
    return boxes[touching]


@pytest.mark.parametrize("height,width,spill", [(64, 80, 0.0), (37, 121, 0.3), (200, 150, 0.6)])
@pytest.mark.parametrize("resolution", [28, 56])
def test_equal_to_detectron2_paste(height, width, spill, resolution):
    generator = torch.Generator().manual_seed(height * width + resolution)
    boxes = _random_boxes(60, height, width, generator, spill)
    probs = torch.rand(len(boxes), resolution, resolution, generator=generator)
    probs[::3] = (probs[::3] > 0.5).float()  # some hard masks: ties at the threshold
    ours = paste_masks(probs, boxes, (height, width))
    theirs = paste_masks_in_image(probs, boxes, (height, width), threshold=0.5)
    assert len(boxes) >= 30 and ours.dtype == torch.bool and ours.shape == (len(boxes), height, width)
    assert torch.equal(ours, theirs)
    assert ours.any()  # a test that compares empty masks would prove nothing


def test_boxes_entirely_outside_paste_nothing():
    boxes = torch.tensor([[-50.0, -40.0, -10.0, -5.0], [70.0, 10.0, 90.0, 30.0], [5.0, 5.0, 20.0, 20.0]])
    probs = torch.ones(3, 28, 28)
    ours = paste_masks(probs, boxes, (32, 64))
    assert not ours[0].any() and not ours[1].any() and ours[2].sum() == 15 * 15
    with pytest.raises(RuntimeError):  # why the comparison above keeps to boxes that touch the image
        paste_masks_in_image(probs[:1], boxes[:1], (32, 64))


def test_empty_set_and_bad_shapes():
    empty = paste_masks(torch.zeros(0, 28, 28), torch.zeros(0, 4), (20, 30))
    assert empty.shape == (0, 20, 30) and empty.dtype == torch.bool
    assert paste_masks_in_image(torch.zeros(0, 28, 28), torch.zeros(0, 4), (20, 30)).shape == empty.shape
    with pytest.raises(ValueError, match="square probabilities"):
        paste_masks(torch.zeros(2, 28, 14), torch.zeros(2, 4), (20, 30))
    with pytest.raises(ValueError, match=r"\(N, 4\) boxes"):
        paste_masks(torch.zeros(2, 28, 28), torch.zeros(3, 4), (20, 30))
