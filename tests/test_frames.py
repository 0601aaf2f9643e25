"""Box and image mapping between Detectron2's resized frame and YOLO's letterboxed input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torchvision.ops import box_iou
from ultralytics.data.augment import LetterBox

from yolo_mask_plugin.core.frames import Letterbox

from .numerics import float32_tolerance, network_tolerance

SHAPES = [(96, 128, 128), (128, 96, 128), (200, 333, 256), (257, 129, 160), (64, 64, 128), (480, 640, 320)]


@pytest.mark.parametrize("height,width,size", SHAPES)
def test_round_trip_d2_yolo_d2_is_identity(height, width, size):
    lb = Letterbox(height, width, size)
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=gen) * torch.tensor([width, height]) * 0.5
    boxes_d2 = torch.cat([xy, xy + torch.rand(50, 2, generator=gen) * torch.tensor([width, height]) * 0.5], dim=1)
    back = lb.boxes_yolo_input_to_d2(lb.boxes_d2_to_yolo_input(boxes_d2))
    # four roundings (scale, shift, unshift, unscale) of coordinates up to max(height, width) px
    torch.testing.assert_close(back, boxes_d2, atol=float32_tolerance(4, scale=max(height, width)), rtol=0)


@pytest.mark.numerics
@pytest.mark.parametrize("height,width,size", SHAPES)
def test_letterbox_matches_ultralytics(height, width, size):
    """Same placement and padding as Ultralytics' LetterBox(auto=False); a drawn rectangle lands on the mapped box."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = (40, 90, 160)
    x1, y1, x2, y2 = width // 5, height // 4, width * 3 // 4, height * 4 // 5
    image[y1:y2, x1:x2] = 250

    theirs = LetterBox(new_shape=(size, size), auto=False, scale_fill=False, scaleup=True, center=True)(image=image)
    ours = Letterbox(height, width, size).apply_image(torch.from_numpy(image).permute(2, 0, 1).float() / 255)
    ours = (ours.permute(1, 2, 0) * 255).round().numpy()

    assert theirs.shape == ours.shape == (size, size, 3)
    padding_theirs, padding_ours = np.all(theirs == 114, axis=2), np.all(ours == 114, axis=2)
    assert (padding_theirs == padding_ours).mean() > 0.999
    # Interpolation (cv2 on uint8 vs torch on float) may differ by a grey level or two at edges only.
    assert np.abs(theirs.astype(float) - ours).mean() < 1.0

    ys, xs = np.nonzero(np.all(theirs >= 200, axis=2))
    drawn = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)
    mapped = Letterbox(height, width, size).boxes_d2_to_yolo_input(torch.tensor([[x1, y1, x2, y2]], dtype=torch.float))
    # the drawn edge is where the interpolated grey level crosses 200, which OpenCV's rounding of the resized size
    # (half a pixel) and the bilinear ramp across an edge (one pixel) can move: not a float32 tolerance
    np.testing.assert_allclose(mapped[0].numpy(), drawn, atol=1.5)


def test_boxes_outside_the_image_are_clipped_back_into_it():
    lb = Letterbox(100, 200, 128)
    boxes_yolo_input = torch.tensor([[-20.0, -20.0, 300.0, 300.0]])
    assert lb.boxes_yolo_input_to_d2(boxes_yolo_input).tolist() == [[0.0, 0.0, 200.0, 100.0]]


def test_one_pixel_image_letterboxes():
    lb = Letterbox(1, 1, 64)
    out = lb.apply_image(torch.ones(3, 1, 1))
    assert out.shape == (3, 64, 64) and torch.all(out == 1)


def _nms(predictions: torch.Tensor, cfg) -> torch.Tensor:
    from ultralytics.utils.nms import non_max_suppression

    return non_max_suppression(predictions, conf_thres=cfg.MODEL.YOLO.CONF_THRESH_TEST,
                               iou_thres=cfg.MODEL.YOLO.NMS_THRESH, max_det=cfg.TEST.DETECTIONS_PER_IMAGE)[0]


@pytest.mark.numerics
@pytest.mark.parametrize("yolo_size", [128, 160, 96])
def test_proposal_generator_image_mode_equals_ultralytics_own_pipeline(yolo_size, shapes_root, yolo_checkpoint, tmp_path):
    """"image" mode (two-branch): Detectron2-normalised BGR in, boxes out, against Ultralytics' YOLO -> NMS ->
    scale_boxes on the letterboxed image, with the letterbox scale 1 (Ultralytics' own LetterBox: the same pixels),
    up (1.25) and down (0.75). Scaled, the letterboxed image is the core's (torch bilinear): OpenCV's uint8 resize
    differs by a grey level at edges (test_letterbox_matches_ultralytics), which moves scores by more than rounding
    and by how much depends on the network, so it is compared there, not here. So every box NMS keeps (confidence 0:
    the weakly trained test YOLO is sure of nothing) has a twin within float32 rounding of the network
    (tests/numerics.py); one that lost a near tie in NMS would not have one, and is not expected on the same input."""
    from ultralytics.utils.ops import scale_boxes

    from tests.conftest import small_cfg
    from yolo_mask_plugin.yolo import load_yolo
    from yolo_mask_plugin.apps.train_net import Trainer

    cfg = small_cfg(
        "shapes/yolo_mask_two_branch_R_50_FPN.yaml", shapes_root, tmp_path, "MODEL.YOLO.WEIGHTS", str(yolo_checkpoint),
        "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "128", "MODEL.YOLO.CONF_THRESH_TEST", "0.0",
        "MODEL.YOLO.IMAGE_SIZE", str(yolo_size),
    )
    model = Trainer.build_model(cfg).eval()
    yolo = load_yolo(str(yolo_checkpoint))
    image_rgb = np.asarray(cv2.imread(str(shapes_root / "images" / "val" / "000001.png")))[16:112, :, ::-1].copy()
    assert image_rgb.shape == (96, 128, 3)
    with torch.no_grad():
        image_bgr = torch.from_numpy(image_rgb[:, :, ::-1].copy()).permute(2, 0, 1)
        ours = model.proposal_generator(model.preprocess_image([{"image": image_bgr}]), {})[0][0]
        if yolo_size == 128:  # no resize: Ultralytics' LetterBox only pads
            letterboxed = LetterBox(new_shape=(yolo_size, yolo_size), auto=False)(image=image_rgb)
            x = torch.from_numpy(letterboxed).permute(2, 0, 1)[None].float() / 255
        else:
            x = Letterbox(96, 128, yolo_size).apply_image(torch.from_numpy(image_rgb).permute(2, 0, 1).float() / 255)[None]
        theirs = _nms(yolo(x), cfg)
        theirs[:, :4] = scale_boxes((yolo_size, yolo_size), theirs[:, :4], (96, 128))

    assert len(theirs) > 0 and len(ours) == len(theirs)
    # boxes in pixels of the 96x128 image (scale 128), scores in [0, 1] (scale 1)
    torch.testing.assert_close(ours.proposal_boxes.tensor, theirs[:, :4], atol=network_tolerance(yolo, 128), rtol=0)
    torch.testing.assert_close(ours.scores, theirs[:, 4], atol=network_tolerance(yolo, 1), rtol=0)
    assert torch.equal(ours.pred_classes, theirs[:, 5].long())


@pytest.mark.numerics
def test_proposal_generator_features_mode_equals_ultralytics_on_the_same_input(shapes_root, yolo_checkpoint, tmp_path):
    """"features" mode (single pass): Detectron2 resizes (scale 1.25 here) and pads; the YOLO backbone + the detect
    head on its maps + NMS give what the whole Ultralytics model gives on that same input tensor, within float32
    rounding of the network (tests/numerics.py)."""
    from tests.conftest import small_cfg
    from yolo_mask_plugin.yolo import load_yolo
    from yolo_mask_plugin.apps.train_net import Trainer

    cfg = small_cfg(
        "shapes/yolo_mask_single_pass.yaml", shapes_root, tmp_path, "MODEL.YOLO.WEIGHTS", str(yolo_checkpoint),
        "INPUT.MIN_SIZE_TEST", "120", "INPUT.MAX_SIZE_TEST", "160", "MODEL.YOLO.CONF_THRESH_TEST", "0.001",
    )
    model = Trainer.build_model(cfg).eval()
    yolo = load_yolo(str(yolo_checkpoint))
    image_rgb = np.asarray(cv2.imread(str(shapes_root / "images" / "val" / "000001.png")))[16:112, :, ::-1].copy()
    resized = cv2.resize(image_rgb, (160, 120), interpolation=cv2.INTER_LINEAR)  # what Detectron2 scales to
    with torch.no_grad():
        inputs = [{"image": torch.from_numpy(resized.copy()).permute(2, 0, 1)}]  # RGB, as the config's INPUT.FORMAT
        images = model.preprocess_image(inputs)
        assert tuple(images.tensor.shape[-2:]) == (128, 160) and images.image_sizes[0] == (120, 160)  # padded
        ours = model.proposal_generator(images, model.backbone(images.tensor))[0][0]
        theirs = _nms(yolo(images.tensor / 255), cfg)  # PIXEL_STD 255, mean 0

    assert len(theirs) > 0 and len(ours) == len(theirs)
    clipped = theirs[:, :4].clamp(min=0).clamp(max=torch.tensor([160, 120, 160, 120]))
    torch.testing.assert_close(ours.proposal_boxes.tensor, clipped, atol=network_tolerance(yolo, 160), rtol=0)
    torch.testing.assert_close(ours.scores, theirs[:, 4], atol=network_tolerance(yolo, 1), rtol=0)


def test_yolo_image_size_must_be_a_multiple_of_its_stride(shapes_root, yolo_checkpoint, tmp_path):
    from detectron2.modeling import build_model

    from tests.conftest import small_cfg
    from yolo_mask_plugin.core.errors import InvalidInputError

    cfg = small_cfg("shapes/yolo_mask_two_branch_R_50_FPN.yaml", shapes_root, tmp_path, "MODEL.YOLO.WEIGHTS",
                    str(yolo_checkpoint), "MODEL.YOLO.IMAGE_SIZE", "112")
    with pytest.raises(InvalidInputError, match=r"MODEL.YOLO.IMAGE_SIZE=112: .* multiple of its largest stride 32, e.g. 128"):
        build_model(cfg)
