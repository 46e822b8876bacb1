"""Autoregressive generation: the Markov (L = 2) window over maps and outputs.

Frame t is generated from the maps of t-2, t-1, t and the outputs of t-2,
t-1. At the start of a video the window is filled by repeating the first
entries: frame 0 runs in image mode (no past frames) with maps (s0, s0, s0),
frame 1 sees maps (s0, s0, s1) and past frames (x0, x0). Training, sample
videos, transfer and evaluation all build their windows with these two
functions, so the generator always sees the same thing at the same t.
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor


def map_window(maps: list[Tensor], t: int) -> Tensor:
    """maps[t-2], maps[t-1], maps[t] (clamped at 0), stacked: [B, 3, C, H, W]."""
    return torch.stack([maps[max(t - 2, 0)], maps[max(t - 1, 0)], maps[t]], dim=1)


def frame_window(frames: list[Tensor], t: int) -> Tensor | None:
    """outputs t-2, t-1 (clamped at 0) stacked as [B, 2, 3, H, W]; None at t = 0."""
    if t == 0:
        return None
    return torch.stack([frames[max(t - 2, 0)], frames[t - 1]], dim=1)


class Synthesizer:
    """Feeds maps one frame at a time and returns frames, in constant memory.

    `temporal=False` runs every frame in image mode (the per-frame baseline).
    `video`: the training video whose background plate G reads (a model with
    `model.background_plate` and several training videos); None: its only one.
    """

    def __init__(self, generator: torch.nn.Module, temporal: bool = True,
                 autocast_dtype: torch.dtype | None = None, video: int | None = None):
        self.G = generator
        self.temporal = temporal
        self.autocast_dtype = autocast_dtype
        self.video = video
        self.reset()

    def reset(self) -> None:
        self._maps: deque[Tensor] = deque(maxlen=3)
        self._frames: deque[Tensor] = deque(maxlen=2)

    @torch.inference_mode()
    def __call__(self, maps_t: Tensor) -> Tensor:
        """maps_t [B, C, H, W] -> frame [B, 3, H, W] in [-1, 1]."""
        if not self._maps:
            self._maps.extend([maps_t, maps_t])
        self._maps.append(maps_t)
        maps = torch.stack(list(self._maps), dim=1)
        prev = None
        if self.temporal and self._frames:
            past = list(self._frames)
            prev = torch.stack([past[0], past[-1]], dim=1)
        video = None
        if self.video is not None:
            video = torch.full((maps_t.shape[0],), self.video, dtype=torch.long,
                               device=maps_t.device)
        device_type = maps_t.device.type
        with torch.autocast(device_type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            frame = self.G(maps, prev, video).image.float().clamp(-1, 1)
        self._frames.append(frame)
        return frame
