"""Framework-neutral mask head: a fully convolutional net from a pooled KxK box feature to mask logits.

No FC layers: 3x3 convs keep the spatial layout of the RoIAlign grid, 2x deconvs upsample it, a 1x1
conv predicts one logit map per class (one map in total when class-agnostic, the seed's default).
Both the Detectron2 and the Ultralytics shells wrap this module, so a head trained in one loads in the other.
"""
from __future__ import annotations

import math

import torch
from torch import nn


NORMS = ("", "GN")


class FCNMaskHead(nn.Module):
    """The mask head proper: 3x3 convs, 2x deconvs, a 1x1 predictor; pooled KxK features in, mask logits out."""

    def __init__(
        self,
        in_channels: int,
        conv_dim: int = 256,
        num_conv: int = 4,
        pooler_resolution: int = 14,
        output_resolution: int = 28,
        num_classes: int = 1,
        norm: str = "",
    ):
        """
        Args:
            in_channels: channels of the pooled features.
            conv_dim: width of every conv and deconv.
            num_conv: number of 3x3 convs before upsampling.
            pooler_resolution: side K of the pooled grid.
            output_resolution: side of the mask logits; `pooler_resolution * 2**n`, n >= 0.
            num_classes: 1 for class-agnostic masks, else one logit map per class.
            norm: "" (none, as Mask R-CNN) or "GN" (GroupNorm of 32 groups after each 3x3 conv), which makes
                the head indifferent to the scale of its input features (YOLO's vary from model to model).
        """
        super().__init__()
        ratio = output_resolution / pooler_resolution
        num_up = round(math.log2(ratio)) if ratio >= 1 else -1
        if num_up < 0 or pooler_resolution * 2**num_up != output_resolution:
            raise ValueError(
                f"mask output resolution {output_resolution} must be the pooler resolution {pooler_resolution} "
                "times a power of two (e.g. 14 -> 28 or 56)"
            )
        if in_channels <= 0 or conv_dim <= 0 or num_classes <= 0 or num_conv < 0:
            raise ValueError(
                f"invalid mask head shape: in_channels={in_channels}, conv_dim={conv_dim}, "
                f"num_conv={num_conv}, num_classes={num_classes}"
            )
        self.pooler_resolution = pooler_resolution
        self.output_resolution = output_resolution
        self.num_classes = num_classes

        if norm not in NORMS:
            raise ValueError(f"mask head norm {norm!r}: expected one of {NORMS}")
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        channels = in_channels
        for _ in range(num_conv):
            self.convs.append(nn.Conv2d(channels, conv_dim, 3, padding=1, bias=not norm))
            self.norms.append(nn.GroupNorm(32, conv_dim) if norm == "GN" else nn.Identity())
            channels = conv_dim
        self.deconvs = nn.ModuleList()
        for _ in range(num_up):
            self.deconvs.append(nn.ConvTranspose2d(channels, conv_dim, 2, stride=2))
            channels = conv_dim
        self.predictor = nn.Conv2d(channels, num_classes, 1)

        for layer in [*self.convs, *self.deconvs]:  # Caffe2's "MSRAFill", as Detectron2's mask head
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        nn.init.normal_(self.predictor.weight, std=0.001)  # as Mask R-CNN: start near p=0.5 everywhere
        nn.init.constant_(self.predictor.bias, 0)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Predict mask logits from pooled box features.

        Args:
            pooled: (N, C, K, K) pooled features.

        Returns:
            (N, num_classes, R, R) mask logits, R = `output_resolution`.
        """
        x = pooled
        for conv, norm in zip(self.convs, self.norms):
            x = torch.relu(norm(conv(x)))
        for deconv in self.deconvs:
            x = torch.relu(deconv(x))
        return self.predictor(x)


class LevelLaterals(nn.Module):
    """1x1 convs that bring feature levels of different widths to one width, so one RoIAlign pooler serves all."""

    def __init__(self, in_channels: list[int], out_channels: int):
        """
        Args:
            in_channels: width of each level, finest first.
            out_channels: the one width every level is brought to.
        """
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        for conv in self.convs:  # Caffe2's "XavierFill", as Detectron2's FPN laterals
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Bring each level to `out_channels`.

        Args:
            features: one (B, C_l, H_l, W_l) map per level, in the order of `in_channels`.

        Returns:
            The maps as (B, out_channels, H_l, W_l), same order.
        """
        return [conv(x) for conv, x in zip(self.convs, features)]
