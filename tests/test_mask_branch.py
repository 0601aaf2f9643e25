"""The framework-neutral mask branch computes what Detectron2 computes, so one head serves both shells."""
from __future__ import annotations

import pytest
import torch
from detectron2.modeling.poolers import ROIPooler
from detectron2.structures import BitMasks, Boxes

from yolo_mask_plugin.core.mask_branch import MASK_HEAD_DEFAULTS, RoIMaskBranch
from yolo_mask_plugin.core.mask_loss import crop_mask_targets, crop_mask_targets_from_crops, mask_bce_loss
from yolo_mask_plugin.core.roi_align import MultiLevelRoIAlign


def _random_boxes(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * size * 0.7
    wh = 2 + torch.rand(n, 2, generator=generator) * size * 0.6  # 2 px to most of the image: every level
    return torch.cat([xy, xy + wh], dim=1)


def test_multilevel_roialign_equals_detectron2_roipooler_v2():
    g = torch.Generator().manual_seed(0)
    size, strides = 256, [8, 16, 32]
    features = [torch.randn(2, 16, size // s, size // s, generator=g) for s in strides]
    boxes = [_random_boxes(40, size, g), _random_boxes(25, size, g)]
    ours = MultiLevelRoIAlign(strides, 14)(features, boxes)
    d2 = ROIPooler(14, tuple(1.0 / s for s in strides), 0, "ROIAlignV2")(features, [Boxes(b) for b in boxes])
    assert ours.shape == (65, 16, 14, 14)
    torch.testing.assert_close(ours, d2)  # one torchvision roi_align kernel on both sides: float32 defaults (~11 eps)


def test_mask_targets_equal_detectron2_crop_and_resize():
    g = torch.Generator().manual_seed(1)
    masks = torch.rand(5, 64, 80, generator=g) > 0.5
    boxes = _random_boxes(12, 64, g)
    index = torch.randint(0, 5, (12,), generator=g)
    ours = crop_mask_targets(masks.to(torch.uint8), index, boxes, 28)
    d2 = torch.stack([BitMasks(masks[i : i + 1]).crop_and_resize(b[None], 28)[0] for i, b in zip(index, boxes)])
    assert torch.equal(ours.bool(), d2)


def test_targets_from_mask_crops_equal_targets_from_full_masks():
    """Masks that are blobs (some touching the image border), cropped to their extent plus a zero margin clipped to
    the image, as `InstanceMaskCropFormat` crops them; RoIs of every size, some beyond the image border."""
    g = torch.Generator().manual_seed(2)
    height, width = 64, 80
    masks = torch.zeros(6, height, width, dtype=torch.uint8)
    for m, (y, x, h, w) in enumerate([(0, 0, 20, 30), (10, 50, 54, 30), (30, 10, 10, 12), (5, 5, 3, 3),
                                      (40, 0, 24, 80), (20, 30, 25, 20)]):
        masks[m, y : y + h, x : x + w] = (torch.rand(h, w, generator=g) > 0.3).to(torch.uint8)
    crops, origins = [], []
    for mask in masks:
        ys, xs = torch.nonzero(mask, as_tuple=True)
        x0, y0 = max(int(xs.min()) - 1, 0), max(int(ys.min()) - 1, 0)
        x1, y1 = min(int(xs.max()) + 2, width), min(int(ys.max()) + 2, height)
        crops.append(mask[y0:y1, x0:x1])
        origins.append((x0, y0))
    boxes = torch.cat([_random_boxes(40, 64, g), torch.tensor([[-10.0, -6.0, 30.0, 25.0], [60.0, 50.0, 95.0, 70.0]])])
    index = torch.randint(0, 6, (len(boxes),), generator=g)
    full = crop_mask_targets(masks, index, boxes, 28)
    assert full.sum() > 0
    assert torch.equal(crop_mask_targets_from_crops(crops, torch.tensor(origins), index, boxes, 28), full)


def test_class_specific_masks_use_each_box_class_map():
    logits = torch.zeros(3, 4, 2, 2)
    logits[torch.arange(3), torch.tensor([2, 0, 3])] = 5.0  # the right map is confident, the others unsure
    targets = torch.ones(3, 2, 2)
    right = mask_bce_loss(logits, targets, torch.tensor([2, 0, 3]))
    wrong = mask_bce_loss(logits, targets, torch.tensor([1, 1, 1]))
    assert right < 0.01 < wrong


def test_branch_refuses_unknown_spec_keys():
    with pytest.raises(ValueError, match="unknown mask_head keys.*conv_width"):
        RoIMaskBranch([64, 128, 256], [8, 16, 32], num_classes=4, conv_width=32)


def test_branch_gives_per_image_probabilities():
    branch = RoIMaskBranch([8, 16, 32], [8, 16, 32], num_classes=3, class_agnostic=False, conv_dim=32,
                           lateral_channels=32)
    features = [torch.randn(2, c, 64 // s, 64 // s) for c, s in zip([8, 16, 32], [8, 16, 32])]
    boxes = [torch.tensor([[0.0, 0, 30, 30], [10, 10, 60, 50]]), torch.zeros(0, 4)]
    probs = branch.mask_probs(features, boxes, [torch.tensor([0, 2]), torch.zeros(0)])
    r = MASK_HEAD_DEFAULTS["output_resolution"]
    assert [p.shape for p in probs] == [(2, r, r), (0, r, r)]
    logits = branch(features, boxes)  # (2, 3 classes, r, r): each box gets its own class's map
    torch.testing.assert_close(probs[0], logits[torch.arange(2), torch.tensor([0, 2])].sigmoid())
    assert not torch.allclose(probs[0][1], logits[1, 1].sigmoid())


def test_every_parameter_gets_a_gradient_when_levels_or_images_have_no_boxes():
    """DDP without find_unused_parameters (Detectron2's setting) stops at the step after one in which a trainable
    parameter got no gradient: every level is pooled, with or without boxes, so every lateral gets one."""
    branch = RoIMaskBranch([8, 16, 32], [8, 16, 32], num_classes=3, conv_dim=32, lateral_channels=32)
    features = [torch.randn(2, c, 128 // s, 128 // s) for c, s in zip([8, 16, 32], [8, 16, 32])]
    small = torch.tensor([[10.0, 12, 42, 40], [64, 58, 100, 90]])  # under 112 px: the finest level only
    assert branch.pooler.level_of([small]).eq(0).all()
    for boxes in ([small, torch.zeros(0, 4)], [torch.zeros(0, 4), torch.zeros(0, 4)]):
        branch.zero_grad(set_to_none=True)
        logits = branch(features, boxes)
        mask_bce_loss(logits, torch.ones(len(logits), 28, 28), torch.zeros(len(logits), dtype=torch.long)).backward()
        assert [n for n, p in branch.named_parameters() if p.grad is None] == []


def test_pooler_traced_with_one_box_on_a_level_takes_any_number_of_boxes():
    pooler = MultiLevelRoIAlign([4, 8], output_size=7)
    features = [torch.rand(1, 8, 32, 32), torch.rand(1, 8, 16, 16)]
    one_small = [torch.tensor([[2.0, 2.0, 30.0, 30.0]])]  # one box on the finest level at trace time
    traced = torch.jit.trace(lambda f0, f1, b: pooler([f0, f1], [b]), (*features, one_small[0]))
    boxes = torch.tensor([[2.0, 2.0, 30.0, 30.0], [1.0, 1.0, 20.0, 9.0], [0.0, 0.0, 127.0, 127.0]])
    torch.testing.assert_close(traced(*features, boxes), pooler(features, [boxes]))  # same kernels: float32 defaults
