"""The two discriminators: one on single poses, one on sparse samples with their time gaps.

- `PoseD` (per sample, DIGAN's image D): is this one pose real?
- `WindowD`: are these `window` consecutive poses one real motion? Dense where
  GapD is sparse: it sees every frame's velocity, which 2-3 samples at random
  gaps show only by chance (poses are cheap, so unlike video frames the dense
  window costs little).
- `GapD` (StyleGAN-V's holistic D, DIGAN's motion D): are these k poses, taken
  at these time gaps, one real motion? The gaps are encoded (log-spaced
  sin/cos plus log-gap, as StyleGAN-V's time-difference encoder), fed in with
  the poses (DIGAN puts the gap in the input) and projected onto the features
  (StyleGAN-V's released head: logit += <h, c(gaps)> / sqrt(d)).

With `mbstd` > 0, PoseD and GapD append one feature before their last layers:
the spread of their features across a group of that many samples
(StyleGAN's minibatch standard deviation). A D that sees the spread can
punish a G whose motion varies less than the real motion does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dream.model import mlp

GAP_FREQUENCIES = 8


def encode_gaps(gaps: Tensor, max_gap: float) -> Tensor:
    """`[B, k-1]` seconds -> `[B, (k-1) (2 G + 1)]`: sin/cos at log-spaced frequencies + log gap."""
    j = torch.arange(GAP_FREQUENCIES, device=gaps.device, dtype=gaps.dtype)
    omega = math.pi * 2.0 ** j / (2 * max_gap)
    angle = gaps[..., None] * omega
    feats = torch.cat([torch.sin(angle), torch.cos(angle),
                       torch.log(gaps.clamp_min(1e-3))[..., None]], -1)
    return feats.flatten(1)


def minibatch_std(h: Tensor, group: int) -> Tensor:
    """`[N, C]` -> `[N, C + 1]`: each sample gets the mean std of the features in its group.

    Groups are strided (samples i, i + N/g, ...), so a group spans different clips.
    """
    if group <= 0:
        return h
    g = min(group, h.shape[0])
    while h.shape[0] % g:
        g -= 1
    y = h.reshape(g, -1, h.shape[1])
    spread = (y.var(0, unbiased=False) + 1e-8).sqrt().mean(1)        # [N / g]
    return torch.cat([h, spread.repeat(g)[:, None]], 1)


class PoseD(nn.Module):
    """Per-sample D. Shape: poses `[N, pose_dim]` -> logits `[N]`."""

    def __init__(self, pose_dim: int, hidden: int, mbstd: int = 0):
        super().__init__()
        self.mbstd = mbstd
        self.trunk = mlp([pose_dim, hidden, hidden], last_act=True)
        self.head = mlp([hidden + (mbstd > 0), hidden, 1])

    def forward(self, poses: Tensor) -> Tensor:
        return self.head(minibatch_std(self.trunk(poses), self.mbstd))[:, 0]


class GapD(nn.Module):
    """Gap-conditioned D on k samples of one motion.

    Shape: poses `[B, k, pose_dim]` (in time order), gaps `[B, k-1]` seconds
    (t_{i+1} - t_i) -> logits `[B]`. The features see the poses, their
    differences and the encoded gaps; the projection head sees the gaps again.
    """

    def __init__(self, pose_dim: int, samples: int, hidden: int, max_gap: float,
                 mbstd: int = 0):
        super().__init__()
        self.samples, self.max_gap, self.mbstd = samples, max_gap, mbstd
        gap_dim = (samples - 1) * (2 * GAP_FREQUENCIES + 1)
        self.trunk = mlp([samples * pose_dim + (samples - 1) * pose_dim + gap_dim,
                          hidden, hidden], last_act=True)
        self.last = nn.Sequential(nn.Linear(hidden + (mbstd > 0), hidden), nn.LeakyReLU(0.2))
        self.out = nn.Linear(hidden, 1)
        self.cond = mlp([gap_dim, hidden, hidden])

    def forward(self, poses: Tensor, gaps: Tensor) -> Tensor:
        if poses.ndim != 3 or poses.shape[1] != self.samples or gaps.shape != poses.shape[:1] + (
                self.samples - 1,):
            raise ValueError(f"GapD wants poses [B, {self.samples}, D] and gaps "
                             f"[B, {self.samples - 1}], got {tuple(poses.shape)} and "
                             f"{tuple(gaps.shape)}")
        g = encode_gaps(gaps, self.max_gap)
        diffs = poses[:, 1:] - poses[:, :-1]
        h = self.trunk(torch.cat([poses.flatten(1), diffs.flatten(1), g], -1))
        h = self.last(minibatch_std(h, self.mbstd))
        c = self.cond(g)
        return self.out(h)[:, 0] + (h * c).sum(-1) / math.sqrt(h.shape[-1])


class WindowD(nn.Module):
    """D on consecutive poses. Shape: poses `[B, W, pose_dim]` at one frame rate -> logits `[B]`.

    Positions and frame-to-frame differences go through a small conv1d over time, then a
    linear head on all its steps.
    """

    def __init__(self, pose_dim: int, window: int, hidden: int):
        super().__init__()
        self.window = window
        self.conv = nn.Sequential(
            nn.Conv1d(2 * pose_dim, hidden, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, hidden, 3, padding=1, stride=2), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, hidden // 2, 3, padding=1, stride=2), nn.LeakyReLU(0.2),
        )
        self.out = nn.Linear(hidden // 2 * ((window + 3) // 4), 1)

    def forward(self, poses: Tensor) -> Tensor:
        if poses.ndim != 3 or poses.shape[1] != self.window:
            raise ValueError(f"WindowD wants poses [B, {self.window}, D], got {tuple(poses.shape)}")
        diffs = torch.cat([torch.zeros_like(poses[:, :1]), poses[:, 1:] - poses[:, :-1]], 1)
        h = self.conv(torch.cat([poses, diffs * self.window], -1).transpose(1, 2))
        return self.out(h.flatten(1))[:, 0]
