"""The framework-neutral FCN mask head: shapes, options and bad arguments."""
from __future__ import annotations

import pytest
import torch

from yolo_mask_plugin.core.fcn_head import FCNMaskHead


@pytest.mark.parametrize("output_resolution,num_classes,norm", [(28, 1, ""), (56, 1, "GN"), (14, 4, ""), (28, 3, "GN")])
def test_output_shape(output_resolution, num_classes, norm):
    head = FCNMaskHead(64, conv_dim=32, num_conv=2, pooler_resolution=14, output_resolution=output_resolution,
                       num_classes=num_classes, norm=norm)
    logits = head(torch.randn(5, 64, 14, 14))
    assert logits.shape == (5, num_classes, output_resolution, output_resolution)


def test_has_no_fully_connected_layer_and_starts_near_one_half():
    head = FCNMaskHead(16, conv_dim=32)
    assert not any(isinstance(m, torch.nn.Linear) for m in head.modules())
    probabilities = head(torch.randn(3, 16, 14, 14)).sigmoid()
    assert torch.allclose(probabilities, torch.full_like(probabilities, 0.5), atol=0.05)


def test_zero_boxes_give_zero_masks():
    assert FCNMaskHead(16)(torch.zeros(0, 16, 14, 14)).shape == (0, 1, 28, 28)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"output_resolution": 42}, "power of two"),
        ({"output_resolution": 7}, "power of two"),
        ({"num_classes": 0}, "invalid mask head shape"),
        ({"norm": "BN"}, "norm"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FCNMaskHead(16, **kwargs)
