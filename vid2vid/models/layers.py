"""Building blocks shared by the generator levels.

Normalisation is instance normalisation written as `GroupNorm(C, C)` (one
channel per group, the same statistics): unlike `nn.InstanceNorm2d` it keeps
`channels_last` tensors in `channels_last` on CPU, and it has no running
statistics, so train and eval behave the same (the 2018 code's BatchNorm
without `eval()` acted as instance norm anyway).
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ["conv", "instance_norm", "ConvBlock", "ResBlock", "SPADE", "UpBlock"]


def conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    """Same-size (or stride-halved) convolution with zero padding."""
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2)


def instance_norm(channels: int, affine: bool = True) -> nn.GroupNorm:
    return nn.GroupNorm(channels, channels, affine=affine)


def activation() -> nn.Module:
    # LeakyReLU as in imaginaire: no dead units in the narrow tiny/small models.
    return nn.LeakyReLU(0.2)


class ConvBlock(nn.Sequential):
    """conv -> instance norm -> LeakyReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1):
        super().__init__(conv(c_in, c_out, kernel, stride), instance_norm(c_out), activation())


class ResBlock(nn.Module):
    """x + (conv-norm-act-conv-norm)(x), at constant width and size."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels), instance_norm(channels), activation(),
            conv(channels, channels), instance_norm(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: norm(x) * (1 + gamma(c)) + beta(c).

    The condition `c` is a feature map of the semantic maps at the same size as
    `x`; gamma and beta come from one 1x1 convolution of it (imaginaire's
    "num_filters: 0" form), so each SPADE costs 2 * C_cond * C parameters.

    Shape:
        - x: [B, C, H, W]
        - cond: [B, C_cond, H, W]
        - output: [B, C, H, W]
    """

    def __init__(self, channels: int, cond_channels: int):
        super().__init__()
        self.norm = instance_norm(channels, affine=False)
        self.to_gamma_beta = nn.Conv2d(cond_channels, 2 * channels, 1)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        gamma, beta = self.to_gamma_beta(cond).chunk(2, dim=1)
        return self.norm(x) * (1 + gamma) + beta


class UpBlock(nn.Module):
    """Nearest 2x upsampling -> 3x3 conv -> SPADE(cond) -> LeakyReLU.

    Nearest + conv instead of a transposed convolution avoids checkerboard
    artefacts (the 2018 code used ConvTranspose2d).

    Shape:
        - x: [B, C_in, H, W]
        - cond: [B, C_cond, 2H, 2W]
        - output: [B, C_out, 2H, 2W]
    """

    def __init__(self, c_in: int, c_out: int, cond_channels: int):
        super().__init__()
        self.conv = conv(c_in, c_out)
        self.spade = SPADE(c_out, cond_channels)
        self.act = activation()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        x = self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return self.act(self.spade(x, cond))
