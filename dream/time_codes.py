"""Motion over continuous time: motion noise on a grid, its padding-free conv1d mapping,
B-spline codes and the time embeddings (StyleGAN-V, StyleSV).

Shapes: B sequences, L grid points, T query times, all times in seconds.
Grid point k sits at time k * grid_seconds. A query time t falls in segment
k = floor(t / grid); `local` indexes a gathered window of codes.

- `MotionMapping`: noise `[B, L, Z]` -> codes `[B, L - 2 margin, C]`, two conv1d
  layers without padding, so code k depends only on noise k-margin..k+margin:
  any stretch of time can be computed alone (not autoregressive, no drift).
- `bspline`: the uniform quadratic B-spline of codes k, k+1, k+2 (C1 smooth,
  where linear interpolation has velocity kinks at every grid point).
- `AlignedTimeEncoder`: waves whose periods and phases depend on the segment's
  code, minus their chord over the segment plus interpolated "aligners":
  continuous at the knots, yet not periodic (StyleGAN-V's acyclic embedding).
- `SinCosTimeEncoder`: fixed sin/cos of t, the baseline that repeats.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

NOISE_BLOCK = 64      # grid points drawn per seeded block (see `seeded_noise`)


def seeded_noise(seed: int, first: int, count: int, dim: int) -> Tensor:
    """Noise of grid points [first, first + count) for `seed`: `[count, dim]` float32.

    Point k always gets the same vector whatever window is asked for, because
    it is drawn from block floor(k / NOISE_BLOCK)'s own seeded generator: that
    is what lets one minute be sampled in one call or in pieces alike.
    """
    blocks = range(first // NOISE_BLOCK, (first + count - 1) // NOISE_BLOCK + 1)
    parts = [np.random.default_rng(np.random.SeedSequence([seed, b + 2**30])).standard_normal(
        (NOISE_BLOCK, dim)) for b in blocks]
    start = first - blocks[0] * NOISE_BLOCK
    return torch.from_numpy(np.concatenate(parts)[start:start + count].astype(np.float32))


def seeded_content(seed: int, dim: int) -> Tensor:
    """The content code of `seed`: `[dim]` float32 (its own stream, apart from the noise)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2**62]))
    return torch.from_numpy(rng.standard_normal(dim).astype(np.float32))


class MotionMapping(nn.Module):
    """Noise `[B, L, Z]` -> motion codes `[B, L - 2 (kernel - 1), C]` (padding-free conv1d)."""

    def __init__(self, noise_dim: int, code_dim: int, kernel: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(noise_dim, code_dim, kernel), nn.LeakyReLU(0.2),
            nn.Conv1d(code_dim, code_dim, kernel),
        )

    def forward(self, noise: Tensor) -> Tensor:
        return self.net(noise.transpose(1, 2)).transpose(1, 2)


def segment_of(times: Tensor, grid: float) -> tuple[Tensor, Tensor]:
    """`[B, T]` float64 seconds -> (segment k `[B, T]` int64, position in it p `[B, T]` float32)."""
    s = times / grid
    k = torch.floor(s)
    return k.long(), (s - k).float()


def gather_codes(codes: Tensor, local: Tensor) -> Tensor:
    """codes `[B, L, C]`, indices `[B, T]` -> `[B, T, C]`."""
    return torch.gather(codes, 1, local[..., None].expand(-1, -1, codes.shape[-1]))


def bspline(codes: Tensor, local: Tensor, p: Tensor) -> Tensor:
    """Quadratic uniform B-spline of codes local, local+1, local+2 at p in [0, 1): `[B, T, C]`."""
    w0, w1, w2 = (1 - p) ** 2 / 2, (-2 * p * p + 2 * p + 1) / 2, p * p / 2
    return (w0[..., None] * gather_codes(codes, local)
            + w1[..., None] * gather_codes(codes, local + 1)
            + w2[..., None] * gather_codes(codes, local + 2))


def _periods(frequencies: int, min_period: float, max_period: float) -> Tensor:
    return torch.tensor(np.geomspace(min_period, max_period, frequencies), dtype=torch.float32)


class AlignedTimeEncoder(nn.Module):
    """Acyclic time embedding `[B, T, 2F]` from the segment codes (StyleGAN-V's aligned encoder).

    Segment k has periods `period * 1 / (tanh(A u_k) + 1)` and phases `B u_k`;
    e(t) = [sin, cos](omega (t - t_k) + phase). Its chord between the knots is
    subtracted and the aligners C u_k, C u_{k+1} interpolated instead, so v is
    continuous across knots where the wave parameters jump. No bias anywhere:
    StyleGAN-V found biases let the motion collapse to one mode.
    """

    def __init__(self, code_dim: int, frequencies: int, min_period: float, max_period: float,
                 grid: float):
        super().__init__()
        self.grid = grid
        self.register_buffer("omega", 2 * math.pi / _periods(frequencies, min_period, max_period))
        self.period_mult = nn.Linear(code_dim, frequencies, bias=False)
        self.phase = nn.Linear(code_dim, frequencies, bias=False)
        self.aligner = nn.Linear(code_dim, 2 * frequencies, bias=False)

    def forward(self, codes: Tensor, local: Tensor, p: Tensor) -> Tensor:
        left, right = gather_codes(codes, local), gather_codes(codes, local + 1)
        omega = self.omega * (torch.tanh(self.period_mult(left)) + 1)      # [B, T, F]
        phase = self.phase(left)

        def wave(dt: Tensor) -> Tensor:
            angle = omega * dt + phase
            return torch.cat([torch.sin(angle), torch.cos(angle)], -1)

        dt = (p * self.grid)[..., None]
        a = p[..., None]
        chord = (1 - a) * wave(torch.zeros_like(dt)) + a * wave(torch.full_like(dt, self.grid))
        return wave(dt) - chord + (1 - a) * self.aligner(left) + a * self.aligner(right)


class SinCosTimeEncoder(nn.Module):
    """The baseline: fixed [sin, cos](omega t) of absolute time, `[B, T, 2F]` (it repeats)."""

    def __init__(self, frequencies: int, min_period: float, max_period: float):
        super().__init__()
        omega = 2 * math.pi / _periods(frequencies, min_period, max_period).double()
        self.register_buffer("omega", omega)

    def forward(self, times: Tensor) -> Tensor:
        angle = times[..., None].double() * self.omega         # float64: t reaches hours
        return torch.cat([torch.sin(angle), torch.cos(angle)], -1).float()
