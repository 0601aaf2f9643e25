"""Box and image mapping between the frames the plugin crosses, in one place.

Frames:
  * `d2`: the image as Detectron2's model sees it (after its resize, before batch padding);
  * `yolo_input`: that image letterboxed to a square of side `size`, as YOLO sees it.
The letterbox geometry is Ultralytics' (`LetterBox(auto=False)`: each side rounded, centred padding, value 114)
and the inverse is the arithmetic of Ultralytics' `scale_boxes`, written here because the core imports only torch;
`tests/test_frames.py` holds both equal to Ultralytics' own.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

LETTERBOX_FILL = 114 / 255.0


@dataclass(frozen=True)
class Letterbox:
    """Where an (h, w) image lands inside a `size` x `size` letterboxed square."""

    height: int
    width: int
    size: int

    @property
    def resized_hw(self) -> tuple[int, int]:
        """(h, w) of the image once resized to fit the square, before padding."""
        gain = min(self.size / self.height, self.size / self.width)
        return max(round(self.height * gain), 1), max(round(self.width * gain), 1)

    @property
    def pad_top_left(self) -> tuple[int, int]:
        """(top, left) padding before the resized image inside the square."""
        new_h, new_w = self.resized_hw
        # Same rounding as Ultralytics' LetterBox(center=True) and scale_boxes.
        return round((self.size - new_h) / 2 - 0.1), round((self.size - new_w) / 2 - 0.1)

    def apply_image(self, image: torch.Tensor) -> torch.Tensor:
        """Letterbox an image as Ultralytics' `LetterBox(auto=False)` does.

        Args:
            image: (3, h, w) float image in [0, 1].

        Returns:
            (3, size, size) letterboxed image, padded with 114 / 255.
        """
        new_h, new_w = self.resized_hw
        top, left = self.pad_top_left
        resized = F.interpolate(image[None], size=(new_h, new_w), mode="bilinear", align_corners=False)[0]
        out = image.new_full((image.shape[0], self.size, self.size), LETTERBOX_FILL)
        out[:, top : top + new_h, left : left + new_w] = resized
        return out

    def boxes_d2_to_yolo_input(self, boxes_d2: torch.Tensor) -> torch.Tensor:
        """Map boxes from the d2 frame to the letterboxed frame.

        Args:
            boxes_d2: (N, 4) xyxy boxes in the d2 frame.

        Returns:
            (N, 4) xyxy boxes in the yolo_input frame.
        """
        new_h, new_w = self.resized_hw
        top, left = self.pad_top_left
        scale = boxes_d2.new_tensor([new_w / self.width, new_h / self.height] * 2)
        shift = boxes_d2.new_tensor([left, top] * 2)
        return boxes_d2 * scale + shift

    def boxes_yolo_input_to_d2(self, boxes_yolo_input: torch.Tensor) -> torch.Tensor:
        """Map boxes from the letterboxed frame to the d2 frame, clipped to the image, as Ultralytics' `scale_boxes`.

        Args:
            boxes_yolo_input: (N, 4) xyxy boxes in the yolo_input frame.

        Returns:
            (N, 4) xyxy boxes in the d2 frame.

        Examples:
            >>> Letterbox(48, 64, 64).boxes_yolo_input_to_d2(torch.tensor([[0.0, 8.0, 64.0, 56.0]]))
            tensor([[ 0.,  0., 64., 48.]])
        """
        new_h, new_w = self.resized_hw
        top, left = self.pad_top_left
        boxes = boxes_yolo_input.clone()
        boxes[:, 0::2] = ((boxes[:, 0::2] - left) / (new_w / self.width)).clamp(0, self.width)
        boxes[:, 1::2] = ((boxes[:, 1::2] - top) / (new_h / self.height)).clamp(0, self.height)
        return boxes
