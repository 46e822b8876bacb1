"""The generator's levels: the base network and the enhancers that double its size.

`BaseLevel` is the coarsest level: map and past-frame encoders, one shared
trunk, and decoders for the background image, the flow with its occlusion
mask, and the foreground (image and mask). `EnhancerLevel` l works at twice
the size of level l - 1: its own shallow encoders add their features to the
coarser level's, and its zero-initialised heads add residuals to the coarser
level's upsampled logits and flow, so a freshly grown level changes nothing.
`vid2vid.models.generator.Generator` stacks them and composes each level's
frame (its docstring has the whole design).
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from vid2vid.config import ModelConfig
from vid2vid.models.layers import ConvBlock, ResBlock, UpBlock, conv

__all__ = ["BaseLevel", "EnhancerLevel", "LevelOut", "N_MAP_FRAMES", "N_PREV_FRAMES"]

N_MAP_FRAMES = 3  # maps of t-2, t-1, t
N_PREV_FRAMES = 2  # previous outputs t-2, t-1 (Markov order L = 2)
MIN_ENHANCER_CHANNELS = 8  # floor for the finest levels' width (ngf / 2**l) in small presets


@dataclass
class LevelOut:
    """Pre-activation outputs and final features one level hands to the next."""

    image_logit: Tensor  # h_bg before tanh
    fg_image_logit: Tensor  # h_fg before tanh
    fg_logit: Tensor  # fg mask before sigmoid
    feat_image: Tensor
    feat_fg: Tensor
    flow: Optional[Tensor] = None  # pixels at this level's size
    mask_logit: Optional[Tensor] = None
    feat_flow: Optional[Tensor] = None


class _Encoder(nn.Module):
    """A stem conv at full size, then stride-2 blocks; returns every size's features."""

    def __init__(self, c_in: int, widths: Sequence[int], stem_kernel: int):
        super().__init__()
        self.stem = ConvBlock(c_in, widths[0], stem_kernel)
        self.down = nn.ModuleList(
            ConvBlock(widths[i], widths[i + 1], 3, stride=2) for i in range(len(widths) - 1)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = [self.stem(x)]
        for block in self.down:
            feats.append(block(feats[-1]))
        return feats


class _Decoder(nn.Module):
    """Up-blocks from widths[-1] back to widths[0], SPADE-conditioned on the map
    encoder's features of the same size."""

    def __init__(self, widths: Sequence[int]):
        super().__init__()
        self.ups = nn.ModuleList(
            UpBlock(widths[i + 1], widths[i], widths[i]) for i in reversed(range(len(widths) - 1))
        )

    def forward(self, x: Tensor, map_feats: Sequence[Tensor]) -> Tensor:
        for up, cond in zip(self.ups, reversed(map_feats[:-1])):
            x = up(x, cond)
        return x


class _Branch(nn.Module):
    """Enhancer branch: residual blocks at the coarse size, then one up-block."""

    def __init__(self, c_coarse: int, c_out: int, n_blocks: int):
        super().__init__()
        self.blocks = nn.Sequential(*[ResBlock(c_coarse) for _ in range(n_blocks)])
        self.up = UpBlock(c_coarse, c_out, c_out)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return self.up(self.blocks(x), cond)


def _map_inputs(cfg: ModelConfig, map_channels: int) -> int:
    """Input channels of a map encoder: three frames' maps, and the background plate."""
    return N_MAP_FRAMES * map_channels + (3 if cfg.background_plate else 0)


def _level_width(cfg: ModelConfig, index: int) -> int:
    if index == 0:
        return cfg.ngf
    return max(cfg.ngf // 2**index, MIN_ENHANCER_CHANNELS)


class BaseLevel(nn.Module):
    def __init__(self, cfg: ModelConfig, map_channels: int):
        super().__init__()
        widths = [min(cfg.ngf * 2**i, cfg.max_channels) for i in range(cfg.n_downsample + 1)]
        bottleneck = widths[-1]
        self.map_encoder = _Encoder(_map_inputs(cfg, map_channels), widths, 7)
        self.past_encoder = _Encoder(N_PREV_FRAMES * 3, widths, 7)
        # Image mode: stands for the past encoder's output (DESIGN's "zeros + a
        # flag", without running an encoder on zeros).
        self.no_past = nn.Parameter(torch.zeros(1, bottleneck, 1, 1))
        # One trunk shared by the image and flow decoders (the 2018 code had a
        # separate copy per branch; sharing halves the bottleneck cost).
        self.trunk = nn.Sequential(*[ResBlock(bottleneck) for _ in range(cfg.n_blocks)])
        self.fg_trunk = nn.Sequential(*[ResBlock(bottleneck) for _ in range(cfg.n_fg_blocks)])
        self.image_decoder = _Decoder(widths)
        self.flow_decoder = _Decoder(widths)
        self.fg_decoder = _Decoder(widths)
        self.image_head = conv(widths[0], 3)
        if cfg.plate_base:   # h_bg = the plate itself at the first step
            nn.init.zeros_(self.image_head.weight)
            nn.init.zeros_(self.image_head.bias)
        self.fg_head = conv(widths[0], 3 + 1)  # h_fg, fg mask
        if cfg.fg_prior != 0.5:   # fg starts near fg_prior everywhere (ModelConfig says why)
            with torch.no_grad():
                self.fg_head.bias[3].fill_(math.log(cfg.fg_prior / (1 - cfg.fg_prior)))
        self.flow_head = conv(widths[0], 2 + 1)  # flow x, y, occlusion mask
        self.flow_scale = cfg.flow_multiplier
        self.fg_past = cfg.fg_past

    def forward(
        self, maps: Tensor, past: Optional[Tensor], coarse: Optional[LevelOut]
    ) -> LevelOut:
        mf = self.map_encoder(maps)
        fx = self.past_encoder(past)[-1] if past is not None else self.no_past
        trunk = self.trunk(mf[-1] + fx)
        feat_image = self.image_decoder(trunk, mf)
        fg_in = mf[-1] + fx if self.fg_past else mf[-1]
        feat_fg = self.fg_decoder(self.fg_trunk(fg_in), mf)
        fg_image, fg_logit = self.fg_head(feat_fg).split([3, 1], dim=1)
        out = LevelOut(self.image_head(feat_image), fg_image, fg_logit, feat_image, feat_fg)
        if past is not None:
            out.feat_flow = self.flow_decoder(trunk, mf)
            flow, out.mask_logit = _fp32_head(self.flow_head, out.feat_flow).split([2, 1], dim=1)
            out.flow = flow * self.flow_scale
        return out


def _fp32_head(head: nn.Conv2d, feat: Tensor) -> Tensor:
    """A flow head run in fp32 even under autocast: in bf16 a flow of 32-128 px is
    off by 0.25-0.5 px, and the flow, its upsampling and the warp build on it."""
    with torch.autocast(feat.device.type, enabled=False):
        return head(feat.float())


class EnhancerLevel(nn.Module):
    def __init__(self, cfg: ModelConfig, map_channels: int, index: int):
        super().__init__()
        width, coarse = _level_width(cfg, index), _level_width(cfg, index - 1)
        self.map_encoder = _Encoder(_map_inputs(cfg, map_channels), [width, coarse], 3)
        self.past_encoder = _Encoder(N_PREV_FRAMES * 3, [width, coarse], 3)
        self.no_past = nn.Parameter(torch.zeros(1, coarse, 1, 1))
        n = cfg.n_enhancer_blocks
        self.image_branch = _Branch(coarse, width, n)
        self.flow_branch = _Branch(coarse, width, n)
        self.fg_branch = _Branch(coarse, width, n)
        self.image_head = conv(width, 3)
        self.fg_head = conv(width, 3 + 1)
        self.flow_head = conv(width, 2 + 1)
        for head in (self.image_head, self.fg_head, self.flow_head):
            # Zero residual at first: a freshly grown level outputs the
            # upsampled coarse prediction, so growing does not undo training.
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        # Same head value = same motion relative to the frame at every level.
        self.flow_scale = cfg.flow_multiplier * 2**index
        self.fg_past = cfg.fg_past

    def forward(
        self, maps: Tensor, past: Optional[Tensor], coarse: Optional[LevelOut]
    ) -> LevelOut:
        assert coarse is not None, "an enhancer level needs the coarser level's output"
        mf = self.map_encoder(maps)
        fx = self.past_encoder(past)[-1] if past is not None else self.no_past
        feat_image = self.image_branch(mf[1] + fx + coarse.feat_image, mf[0])
        fg_in = mf[1] + coarse.feat_fg + (fx if self.fg_past else 0)
        feat_fg = self.fg_branch(fg_in, mf[0])
        d_fg_image, d_fg = self.fg_head(feat_fg).split([3, 1], dim=1)
        out = LevelOut(
            image_logit=_up(coarse.image_logit) + self.image_head(feat_image),
            fg_image_logit=_up(coarse.fg_image_logit) + d_fg_image,
            fg_logit=_up(coarse.fg_logit) + d_fg,
            feat_image=feat_image,
            feat_fg=feat_fg,
        )
        if past is not None:
            assert coarse.flow is not None and coarse.mask_logit is not None
            assert coarse.feat_flow is not None
            out.feat_flow = self.flow_branch(mf[1] + fx + coarse.feat_flow, mf[0])
            d_flow, d_mask = _fp32_head(self.flow_head, out.feat_flow).split([2, 1], dim=1)
            out.flow = 2.0 * _up(coarse.flow) + d_flow * self.flow_scale
            out.mask_logit = _up(coarse.mask_logit) + d_mask
        return out


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
