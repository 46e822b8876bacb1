"""Temporal smoothing of keypoints with the One-Euro filter.

The One-Euro filter (Casiez et al., CHI 2012) is a low-pass filter whose
cut-off frequency rises with the speed of the signal: still keypoints are
smoothed strongly (no jitter), fast ones lightly (little lag). It is causal,
so it runs while streaming. Shared by preprocessing and transfer so both see
the same motion statistics.

    cutoff = min_cutoff + beta * |d(x)/dt|      alpha = 1 / (1 + 1 / (2 pi cutoff dt))

A keypoint that goes missing (confidence 0) resets its filter, so a point
never slides in from where it was last seen.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from vid2vid.pose import Pose


@dataclass(frozen=True)
class OneEuroParams:
    min_cutoff: float = 1.0   # Hz: lower = smoother still poses
    beta: float = 0.05        # speed coefficient: higher = less lag on fast moves
    d_cutoff: float = 1.0     # Hz: cut-off for the derivative estimate

    def to_dict(self) -> dict:
        return {"filter": "one-euro", **asdict(self)}


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters `[N, 3]` keypoint arrays (x, y, confidence) frame after frame."""

    def __init__(self, fps: float, params: OneEuroParams = OneEuroParams()):
        self.dt = 1.0 / fps
        self.params = params
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.was_missing: np.ndarray | None = None

    def __call__(self, points: np.ndarray) -> np.ndarray:
        present = points[:, 2] > 0
        xy = points[:, :2].astype(np.float64)
        if self.x is None:
            self.x = xy.copy()
            self.dx = np.zeros_like(xy)
            self.was_missing = np.ones(len(points), bool)
        # Missing now, or missing last frame: restart that point's filter from its raw value.
        fresh = ~present | self.was_missing
        dx = (xy - self.x) / self.dt
        a_d = _alpha(self.params.d_cutoff, self.dt)
        self.dx = np.where(fresh[:, None], 0.0, a_d * dx + (1 - a_d) * self.dx)
        speed = np.linalg.norm(self.dx, axis=1, keepdims=True)
        a = _alpha(self.params.min_cutoff + self.params.beta * speed, self.dt)
        self.x = np.where(fresh[:, None], xy, a * xy + (1 - a) * self.x)
        self.was_missing = ~present
        out = points.astype(np.float32).copy()
        out[present, :2] = self.x[present]
        return out


class PoseSmoother:
    """One OneEuroFilter per part of a Pose; a frame without a person resets all."""

    def __init__(self, fps: float, params: OneEuroParams = OneEuroParams()):
        self.fps = fps
        self.params = params
        self._filters: dict[str, OneEuroFilter] = {}

    def __call__(self, pose: Pose | None) -> Pose | None:
        if pose is None or not pose.found:
            self._filters = {}
            return pose
        out = {}
        for part, arr in pose.parts().items():
            f = self._filters.get(part)
            if f is None:
                f = self._filters[part] = OneEuroFilter(self.fps, self.params)
            out[part] = f(arr)
        return Pose(**out)
