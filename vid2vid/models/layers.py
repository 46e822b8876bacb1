"""Building blocks shared by the generator levels.

Normalisation is instance normalisation (`InstanceNorm`): no running
statistics, so train and eval behave the same (the 2018 code's BatchNorm
without `eval()` acted as instance norm anyway).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ["conv", "InstanceNorm", "instance_norm", "ConvBlock", "ResBlock", "SPADE", "UpBlock"]


def conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    """Same-size (or stride-halved) convolution with zero padding."""
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2)


class InstanceNorm(nn.Module):
    """Per-sample, per-channel normalisation over H and W, with an optional affine.

    On CUDA it is written out rather than `nn.GroupNorm(C, C)` (the same
    statistics), which there copies a channels_last input to NCHW and which
    autocast runs in fp32, so under bf16 every normalised activation was fp32:
    `normalize` keeps fp32 statistics and returns the input's dtype and memory
    layout. On CPU group norm's fused kernel already keeps channels_last and
    was 15-30 % faster (`vid2vid bench`, RESULTS.md), so it is used there. The
    parameters are named as GroupNorm's, so older checkpoints load.

    Shape:
        - x: [B, C, H, W]
        - output: [B, C, H, W], x's dtype and layout
    """

    def __init__(self, channels: int, affine: bool = True, eps: float = 1e-5):
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(channels)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type == "cpu":
            with torch.autocast("cpu", enabled=False):
                return F.group_norm(x, self.channels, _cast(self.weight, x), _cast(self.bias, x),
                                    self.eps)
        return self.normalize(x)

    def normalize(self, x: Tensor) -> Tensor:
        """The written-out form: fp32 statistics, one multiply-add in x's dtype."""
        var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
        scale = torch.rsqrt(var + self.eps)
        shift = -mean * scale
        if self.weight is not None:
            w = self.weight.float().view(1, -1, 1, 1)
            scale, shift = scale * w, shift * w + self.bias.float().view(1, -1, 1, 1)
        # Elementwise ops keep x's memory format.
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


def _cast(p: Tensor | None, x: Tensor) -> Tensor | None:
    return None if p is None else p.to(x.dtype)


def instance_norm(channels: int, affine: bool = True) -> InstanceNorm:
    return InstanceNorm(channels, affine=affine)


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
