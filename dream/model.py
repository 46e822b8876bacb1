"""The motion generator: content code + motion codes + time embedding -> a pose at any t.

    z_content [B, Zc] --MLP--> w [B, Zc]
    noise [B, L, Zn] --MotionMapping--> codes [B, L', C] --bspline at t--> u(t) [B, T, C]
                                                      --time encoder--> v(t) [B, T, 2F]
    [w, gate_u * u(t), gate_v * v(t)] --MLP--> neck, bone directions and lengths
      --dream.kinematics--> pose features [B, T, 50] (dream.pose_frame)

Every query time is computed on its own from the codes around it, so a pose
at t costs the same for any t, and sampling a stretch in one call or in
pieces gives the same poses (`sample`). The motion gates start at zero
(StyleSV's zero-initialised motion mask): the network first learns poses,
then how they move.

With `limb_streams` each arm and leg follows its own stretch of the same dream
(the same content, the motion codes of far-off times, hung from this moment's
shoulder or hip: dream.augment.swap_limbs). G learns whole-body moves and
replays them; recombined limbs dance moves nobody made, closer to the held-out
dancing (RESULTS.md, "Dream", limb streams).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from dream.augment import swap_limbs
from dream.config import MotionConfig
from dream.kinematics import RAW_DIM, Kinematics
from dream.time_codes import (AlignedTimeEncoder, MotionMapping, SinCosTimeEncoder, bspline,
                              seeded_content, seeded_noise, segment_of)

SAMPLE_CHUNK = 8192     # query times per forward in `sample` (bounds memory, not results)
# Seconds ahead of t where each limb's stream reads the dream (dream.augment.LIMBS' order):
# far beyond any correlation of the motion (< 0.5 past 2 s), no two a multiple of another.
LIMB_OFFSETS = (601.3, 1213.7, 1811.1, 2417.9)


def mlp(sizes: list[int], last_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_act:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class MotionGenerator(nn.Module):
    """G: (content, motion noise, times) -> poses. See the module docstring."""

    def __init__(self, cfg: MotionConfig, features: np.ndarray | None = None):
        """features: training poses `[N, 50]` to fit the skeleton's ranges to (None: zeros,
        to be filled by load_state_dict)."""
        super().__init__()
        self.cfg = cfg
        self.content = mlp([cfg.content_dim, cfg.hidden, cfg.content_dim], last_act=True)
        self.mapping = MotionMapping(cfg.noise_dim, cfg.code_dim, cfg.kernel)
        emb = 2 * cfg.frequencies
        if cfg.time_embedding == "aligned":
            self.time = AlignedTimeEncoder(cfg.code_dim, cfg.frequencies, cfg.min_period,
                                           cfg.max_period, cfg.grid_seconds)
        else:
            self.time = SinCosTimeEncoder(cfg.frequencies, cfg.min_period, cfg.max_period)
        self.gate_u = nn.Parameter(torch.zeros(cfg.code_dim))
        self.gate_v = nn.Parameter(torch.zeros(emb))
        self.net = mlp([cfg.content_dim + cfg.code_dim + emb] + [cfg.hidden] * cfg.layers
                       + [RAW_DIM])
        self.body = Kinematics(features)

    def forward(self, content: Tensor, noise: Tensor, first: Tensor, times: Tensor) -> Tensor:
        """Poses at `times`.

        Shape:
            content `[B, Zc]`; noise `[B, L, Zn]`, the noise of grid points
            first - margin .. first - margin + L - 1; first `[B]` int64, the grid
            point of the first code; times `[B, T]` float64 seconds, each within
            codes first .. first + L - 2 margin - 1 (two codes of room after it).
            Returns `[B, T, pose_dim]`.
        """
        codes = self.mapping(noise)                                   # [B, L', C]
        k, p = segment_of(times, self.cfg.grid_seconds)
        local = k - first[:, None]
        if (local < 0).any() or (local + 2 >= codes.shape[1]).any():
            raise ValueError("times outside the window of motion codes given")
        u = bspline(codes, local, p)
        v = self.time(codes, local, p) if self.cfg.time_embedding == "aligned" \
            else self.time(times)
        w = self.content(content)[:, None].expand(-1, times.shape[1], -1)
        x = torch.cat([w, self.gate_u * u, self.gate_v * v], -1)
        return self.body(self.net(x))

    def window(self, t_min: float, t_max: float) -> tuple[int, int]:
        """(first code, noise points) needed for query times in [t_min, t_max]."""
        first = int(np.floor(t_min / self.cfg.grid_seconds))
        last = int(np.floor(t_max / self.cfg.grid_seconds)) + 2
        return first, last - first + 1 + 2 * self.cfg.margin

    @torch.no_grad()
    def sample(self, seed: int, times: np.ndarray, temperature: float = 1.0,
               limb_streams: bool | None = None) -> np.ndarray:
        """The poses of sequence `seed` at `times` (seconds, any order): `[T, pose_dim]` float32.

        Deterministic: the same (seed, t) gives the same pose whatever else is asked for.
        With `limb_streams` (None: `cfg.limb_streams`) the limbs come from `t + LIMB_OFFSETS`.
        `temperature` scales the motion noise: above 1, livelier and farther from the
        training motion than the GAN's own (RESULTS.md, "Dream": noise temperature).
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        times = np.asarray(times, np.float64)
        if times.ndim != 1 or (times < 0).any():
            raise ValueError("times must be a 1-D array of seconds >= 0")
        poses = self._whole_body(seed, times, temperature)
        if not (self.cfg.limb_streams if limb_streams is None else limb_streams):
            return poses
        return swap_limbs(poses, [self._whole_body(seed, times + offset, temperature)
                                  for offset in LIMB_OFFSETS])

    def _whole_body(self, seed: int, times: np.ndarray, temperature: float) -> np.ndarray:
        device = self.body.root.device
        content = seeded_content(seed, self.cfg.content_dim)[None].to(device)
        out = np.zeros((len(times), self.cfg.pose_dim), np.float32)
        for s in range(0, len(times), SAMPLE_CHUNK):
            t = times[s:s + SAMPLE_CHUNK]
            first, count = self.window(float(t.min()), float(t.max()))
            noise = seeded_noise(seed, first - self.cfg.margin, count,
                                 self.cfg.noise_dim) * temperature
            poses = self(content, noise[None].to(device),
                         torch.tensor([first], device=device),
                         torch.from_numpy(t)[None].to(device))
            out[s:s + SAMPLE_CHUNK] = poses[0].cpu().numpy()
        return out
