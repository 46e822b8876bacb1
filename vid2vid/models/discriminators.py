"""The vid2vid discriminators: multi-scale image D, temporal D, face D.

All are PatchGANs (a grid of logits, one per receptive field) built from the
same `PatchDiscriminator`: stride-2 4x4 convs (no norm on the first layer),
one stride-1 3x3 conv, a 3x3 conv to one logit channel, LeakyReLU(0.2), and
spectral norm on every conv when `cfg.spectral_norm` (imaginaire's dancing
setting; it replaces the 2018 code's BatchNorm, which had no `eval()`). Every
D returns a `DiscriminatorOutput` with the logits and the intermediate
features of each scale, for the GAN and feature-matching losses.
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
from vid2vid.models.warp import compose_flows

__all__ = [
    "DiscriminatorOutput",
    "PatchDiscriminator",
    "MultiScaleDiscriminator",
    "ImageDiscriminator",
    "TemporalDiscriminator",
    "FaceDiscriminator",
    "temporal_shift",
]

MAX_D_CHANNELS = 512
# Flows enter the temporal D in units of 1/8 of the frame's longer side, so the
# same motion gives the same input at every resolution of progressive training.
FLOW_INPUT_UNITS = 8.0


@dataclass
class DiscriminatorOutput:
    """Logits and features of every spatial scale (finest first).

    Attributes:
        logits: one [N, 1, h_s, w_s] patch-logit map per scale.
        features: per scale, the output of every layer before the last conv
            (for feature matching).
    """

    logits: list[Tensor]
    features: list[list[Tensor]]


def _sn(module: nn.Conv2d, enabled: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if enabled else module


def temporal_shift(x: Tensor, frames: int, fold_div: int = 8) -> Tensor:
    """Temporal shift module (TSM, as StyleSV uses in its D).

    In a batch of clips laid out frame-major inside each clip, 1/fold_div of
    the channels of frame k are taken from frame k+1 and another 1/fold_div
    from frame k-1; frames past the clip ends give zeros. The rest is kept.

    Shape:
        - x: [N * frames, C, H, W] (clip n, frame k at row n * frames + k)
        - output: same
    """
    if x.shape[0] % frames:
        raise ValueError(f"temporal_shift: batch {x.shape[0]} is not a multiple of {frames} frames")
    v = x.unflatten(0, (-1, frames))
    fold = x.shape[1] // fold_div
    zero = torch.zeros_like(v[:, :1, :fold])
    from_next = torch.cat([v[:, 1:, :fold], zero], dim=1)
    from_prev = torch.cat([zero, v[:, :-1, fold : 2 * fold]], dim=1)
    out = torch.cat([from_next, from_prev, v[:, :, 2 * fold :]], dim=2).flatten(0, 1)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        out = out.contiguous(memory_format=torch.channels_last)
    return out


class PatchDiscriminator(nn.Module):
    """One PatchGAN scale.

    Args:
        in_channels: input channels.
        ndf: width of the first layer, doubled per layer up to 512.
        n_layers: stride-2 layers (the receptive field grows with it).
        spectral_norm: spectral norm on every conv.
        shift_frames: if > 0, inputs are clips of this many frames laid out
            frame-major and a temporal shift precedes every layer but the first.
        cond_dim: if > 0, a [N, cond_dim] vector is projected and added to the
            first layer's output (the gap-conditioned temporal D).

    Shape:
        - x: [N, in_channels, H, W]; H, W >= 2**n_layers
        - cond: [N, cond_dim] or None
        - output: logits [N, 1, H / 2**n_layers, W / 2**n_layers] and the
          list of n_layers + 1 features
    """

    def __init__(self, in_channels: int, ndf: int, n_layers: int, spectral_norm: bool,
                 shift_frames: int = 0, cond_dim: int = 0):
        super().__init__()
        widths = [min(ndf * 2**i, MAX_D_CHANNELS) for i in range(n_layers + 1)]
        blocks = []
        c_in = in_channels
        for i, c in enumerate(widths):
            last = i == n_layers  # the stride-1 layer after the stride-2 ones
            conv = nn.Conv2d(c_in, c, 3 if last else 4, stride=1 if last else 2, padding=1)
            blocks.append(nn.Sequential(_sn(conv, spectral_norm), nn.LeakyReLU(0.2)))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.out = _sn(nn.Conv2d(c_in, 1, 3, padding=1), spectral_norm)
        self.shift_frames = shift_frames
        self.cond = nn.Linear(cond_dim, widths[0]) if cond_dim > 0 else None

    def forward(self, x: Tensor, cond: Optional[Tensor] = None) -> tuple[Tensor, list[Tensor]]:
        feats = []
        for i, block in enumerate(self.blocks):
            if self.shift_frames and i > 0:
                x = temporal_shift(x, self.shift_frames)
            x = block(x)
            if i == 0 and self.cond is not None:
                if cond is None:
                    raise ValueError("PatchDiscriminator: this D is conditioned; pass cond")
                x = x + self.cond(cond).to(x.dtype)[:, :, None, None]
            feats.append(x)
        return self.out(x), feats


class MultiScaleDiscriminator(nn.Module):
    """`n_scales` PatchGANs, scale s seeing the input average-pooled s times.

    Shape:
        - x: [N, in_channels, H, W]; H, W >= 2**(n_layers + n_scales - 1)
        - cond: [N, cond_dim] or None
    """

    def __init__(self, in_channels: int, ndf: int, n_layers: int, n_scales: int,
                 spectral_norm: bool, shift_frames: int = 0, cond_dim: int = 0):
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels, ndf, n_layers, spectral_norm, shift_frames, cond_dim)
            for _ in range(n_scales)
        )
        self.min_size = 2 ** (n_layers + n_scales - 1)

    def forward(self, x: Tensor, cond: Optional[Tensor] = None) -> DiscriminatorOutput:
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"discriminator: input {tuple(x.shape[-2:])} is smaller than {self.min_size} px "
                "(2**(d_layers + d_scales - 1)); use fewer layers/scales or larger frames"
            )
        logits, feats = [], []
        for s, d in enumerate(self.scales):
            if s > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            lo, fe = d(x, cond)
            logits.append(lo)
            feats.append(fe)
        return DiscriminatorOutput(logits, feats)


class ImageDiscriminator(nn.Module):
    """Multi-scale PatchGAN on (maps_t, frame_t): is this frame real for these maps?

    Args:
        cfg: uses ndf, d_layers, d_scales, spectral_norm.
        map_channels: C, channels of one frame's maps (as for the Generator).

    Shape:
        - maps: [B, C, H, W] or [B, T, C, H, W] (frames folded into the batch)
        - frames: [B, 3, H, W] or [B, T, 3, H, W], same layout as maps
        - output: `DiscriminatorOutput`, batch B (or B * T)
    """

    def __init__(self, cfg: ModelConfig, map_channels: int):
        super().__init__()
        self.map_channels = map_channels
        self.net = MultiScaleDiscriminator(
            map_channels + 3, cfg.ndf, cfg.d_layers, cfg.d_scales, cfg.spectral_norm
        )

    def forward(self, maps: Tensor, frames: Tensor) -> DiscriminatorOutput:
        c = self.map_channels
        ok = (
            maps.dim() == frames.dim() in (4, 5)
            and maps.shape[-3] == c
            and frames.shape[-3] == 3
            and maps.shape[:-3] == frames.shape[:-3]
            and maps.shape[-2:] == frames.shape[-2:]
        )
        if not ok:
            raise ValueError(
                f"ImageDiscriminator: expected maps [B, (T,) {c}, H, W] and frames "
                f"[B, (T,) 3, H, W] of the same layout, got {tuple(maps.shape)} and "
                f"{tuple(frames.shape)}"
            )
        if maps.dim() == 5:
            maps, frames = maps.flatten(0, 1), frames.flatten(0, 1)
        return self.net(torch.cat([maps, frames.to(maps.dtype)], dim=1))


class GapEmbedding(nn.Module):
    """Frame gap -> vector: Fourier features of log2(gap), then an MLP.

    log2 makes gaps 1, 3, 9 evenly spaced and lets unseen gaps interpolate.
    """

    def __init__(self, dim: int, n_freqs: int = 4):
        super().__init__()
        self.register_buffer("freqs", 2.0 ** torch.arange(n_freqs) * math.pi / 4, persistent=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * n_freqs + 1, dim), nn.LeakyReLU(0.2), nn.Linear(dim, dim)
        )

    def forward(self, gaps: Tensor) -> Tensor:
        """gaps: [N] positive frame gaps -> [N, dim]."""
        x = torch.log2(gaps.float())[:, None]
        angles = x * self.freqs
        return self.mlp(torch.cat([x, angles.sin(), angles.cos()], dim=1))


class TemporalDiscriminator(nn.Module):
    """Temporal PatchGAN(s) on K consecutive frames and the K-1 flows between them.

    For each frame skip s (default `cfg.temporal_skips` = (1, 3)) the clip is
    cut into every group of frames (t, t+s, ..., t+(K-1)s), t = 0, 1, ...;
    groups that do not fit in the clip are not made, and a skip whose group
    does not fit at all is left out of the result. The flows between the
    frames of a group are composed from the clip's consecutive flows
    (`compose_flows`), so only the per-frame ground-truth flows are needed.
    As in the paper, pass the *real* flows with both real and generated
    frames: the D then judges whether the frames move as the real flow says.

    Variants (config):
        - default: one multi-scale PatchGAN per skip; a group is stacked along
          channels: K frames (3K) then K-1 flows (2(K-1)), in temporal order.
        - `temporal_shift`: frames are processed one by one (each frame with
          the flow to the previous frame of its group, zeros for the first) by
          shared convs that exchange 1/8 + 1/8 of their channels with the
          neighbouring frames before each layer (StyleSV). Logits are per
          frame: batch N * K.
        - `gap_conditioned`: one D for all skips, the skip embedded
          (`GapEmbedding`) and added after its first layer (StyleGAN-V /
          DIGAN); it also accepts skips it was not built for.

    Shape:
        - frames: [B, T, 3, H, W], T >= K
        - flows: [B, T, 2, H, W] frame-aligned as `vid2vid.data` returns
          them (flows[:, t]: frame t -> frame t-1 in pixels; flows[:, 0] is
          ignored), or [B, T-1, 2, H, W] with flows[:, i]: frame i+1 -> i
        - output: {skip: DiscriminatorOutput} with batch B * G_s (groups
          ordered b-major, then by start t), times K with `temporal_shift`
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.k = cfg.temporal_frames
        self.skips = tuple(cfg.temporal_skips)
        self.shift = cfg.temporal_shift
        in_ch = 3 + 2 if self.shift else 3 * self.k + 2 * (self.k - 1)
        cond_dim = cfg.ndf if cfg.gap_conditioned else 0

        def make() -> MultiScaleDiscriminator:
            return MultiScaleDiscriminator(
                in_ch, cfg.ndf, cfg.d_layers, cfg.d_scales, cfg.spectral_norm,
                shift_frames=self.k if self.shift else 0, cond_dim=cond_dim,
            )

        self.gap_embedding = GapEmbedding(cond_dim) if cfg.gap_conditioned else None
        # One D per skip, or one shared D when gap-conditioned.
        self.nets = nn.ModuleList([make()] if cfg.gap_conditioned else [make() for _ in self.skips])

    def forward(self, frames: Tensor, flows: Tensor,
                skips: Optional[Sequence[int]] = None) -> dict[int, DiscriminatorOutput]:
        flows = self._check(frames, flows)
        skips = self.skips if skips is None else tuple(skips)
        if self.gap_embedding is None and not set(skips) <= set(self.skips):
            raise ValueError(
                f"TemporalDiscriminator: built for skips {list(self.skips)}, "
                f"asked for {list(skips)}"
            )
        b, t, _, h, w = frames.shape
        scale = FLOW_INPUT_UNITS / max(h, w)
        out: dict[int, DiscriminatorOutput] = {}
        for s in skips:
            n_groups = t - (self.k - 1) * s
            if n_groups < 1:
                continue
            starts = torch.arange(n_groups, device=frames.device)
            offsets = torch.arange(self.k, device=frames.device) * s
            idx = starts[:, None] + offsets  # [G, K] frame indices
            group_frames = frames[:, idx]  # [B, G, K, 3, H, W]
            # Composed flow from frame j+s back to frame j, for every j.
            windows = torch.stack([flows[:, j : j + s] for j in range(t - s)], dim=1)
            spans = compose_flows(windows.flatten(0, 1)).unflatten(0, (b, t - s))
            group_flows = spans[:, idx[:, :-1]] * scale  # [B, G, K-1, 2, H, W]
            group_flows = group_flows.to(frames.dtype)
            if self.shift:
                first = torch.zeros_like(group_flows[:, :, :1])
                x = torch.cat([group_frames, torch.cat([first, group_flows], dim=2)], dim=3)
                x = x.flatten(0, 2)  # [B * G * K, 5, H, W]
            else:
                x = torch.cat([group_frames.flatten(2, 3), group_flows.flatten(2, 3)], dim=2)
                x = x.flatten(0, 1)  # [B * G, 3K + 2(K-1), H, W]
            if self.gap_embedding is not None:
                n = x.shape[0]
                cond = self.gap_embedding(torch.full((n,), float(s), device=x.device))
                out[s] = self.nets[0](x, cond)
            else:
                out[s] = self.nets[self.skips.index(s)](x)
        return out

    def _check(self, frames: Tensor, flows: Tensor) -> Tensor:
        """Validate shapes; return the T-1 flows between consecutive frames."""
        if frames.dim() != 5 or frames.shape[2] != 3 or frames.shape[1] < self.k:
            raise ValueError(
                f"TemporalDiscriminator: frames must be [B, T, 3, H, W] with T >= {self.k}, "
                f"got {tuple(frames.shape)}"
            )
        b, t, _, h, w = frames.shape
        if tuple(flows.shape) == (b, t, 2, h, w):
            return flows[:, 1:]  # frame-aligned: drop the (empty) flow of frame 0
        if tuple(flows.shape) != (b, t - 1, 2, h, w):
            raise ValueError(
                f"TemporalDiscriminator: flows must be [B, T, 2, H, W] (flows[:, t]: frame t -> "
                f"t-1) or [B, T-1, 2, H, W] (flows[:, i]: frame i+1 -> i) for frames "
                f"{tuple(frames.shape)}, got {tuple(flows.shape)}"
            )
        return flows


class FaceDiscriminator(nn.Module):
    """A small single-scale PatchGAN on face crops (see `vid2vid.crops`).

    Args:
        cfg: uses face_ndf, face_layers, spectral_norm.
        map_channels: if > 0, crops of the maps are concatenated to the image
            crops (conditional D); 0 judges the face image alone (imaginaire).

    Shape:
        - crops: [N, 3, S, S], S >= 2**face_layers
        - map_crops: [N, map_channels, S, S] or None
        - output: `DiscriminatorOutput` with one scale
    """

    def __init__(self, cfg: ModelConfig, map_channels: int = 0):
        super().__init__()
        self.map_channels = map_channels
        self.net = MultiScaleDiscriminator(
            3 + map_channels, cfg.face_ndf, cfg.face_layers, 1, cfg.spectral_norm
        )

    def forward(self, crops: Tensor, map_crops: Optional[Tensor] = None) -> DiscriminatorOutput:
        if crops.dim() != 4 or crops.shape[1] != 3:
            raise ValueError(
                f"FaceDiscriminator: crops must be [N, 3, S, S], got {tuple(crops.shape)}"
            )
        if self.map_channels:
            want = (crops.shape[0], self.map_channels, *crops.shape[2:])
            if map_crops is None or tuple(map_crops.shape) != want:
                got = None if map_crops is None else tuple(map_crops.shape)
                raise ValueError(f"FaceDiscriminator: map_crops must be {list(want)}, got {got}")
            crops = torch.cat([map_crops, crops.to(map_crops.dtype)], dim=1)
        elif map_crops is not None:
            raise ValueError("FaceDiscriminator: built with map_channels=0; pass no map_crops")
        return self.net(crops)
