"""Per-subject pose statistics for global pose normalisation (Everybody Dance Now).

To map one person's motion onto another, EDN scales and shifts poses by
comparing where each subject's feet are in the image and how tall they
appear there. For each frame with a visible person we measure

- ankle: the larger (lower in the image) y of the two ankles;
- height: the distance from the nose (or the ears' midpoint) to the ankles' midpoint;

and summarise a whole video as

- close: the largest ankle y (the subject nearest the camera);
- far: `median - median_frac * (close - median)`, not above the smallest ankle y
  seen (the subject's farthest position, robust to a few outliers);
- height_close / height_far: the tallest height among frames whose ankle lies
  within `window * (close - far)` of close / far (or the nearest frames, when
  none is that near). A close height more than 10 %
  below the tallest overall is replaced by the tallest (a crouch near the
  camera must not set the scale).

The transform that uses these lives in `infer/` (transfer); the statistics are
computed here because preprocessing stores the target's in meta.json.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from vid2vid.pose import BODY, Pose


@dataclass(frozen=True)
class PoseStats:
    ankle_close: float
    ankle_far: float
    height_close: float
    height_far: float
    frames: int
    median_frac: float
    window: float

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "PoseStats":
        return PoseStats(**d)


def ankle_and_height(pose: Pose | None) -> tuple[float, float] | None:
    """(ankle y, height) of one pose, or None when ankles or head are missing."""
    if pose is None:
        return None
    b = pose.body
    ankles = [b[BODY[k]] for k in ("RAnkle", "LAnkle") if b[BODY[k], 2] > 0]
    if not ankles:
        return None
    if b[BODY["Nose"], 2] > 0:
        head = b[BODY["Nose"], :2]
    elif b[BODY["REar"], 2] > 0 and b[BODY["LEar"], 2] > 0:
        head = (b[BODY["REar"], :2] + b[BODY["LEar"], :2]) / 2
    else:
        return None
    ankle_mid = np.mean([a[:2] for a in ankles], axis=0)
    return float(max(a[1] for a in ankles)), float(np.linalg.norm(head - ankle_mid))


class PoseStatsAccumulator:
    """Collects (ankle, height) per frame; two floats a frame, so memory stays small."""

    def __init__(self):
        self._values: list[tuple[float, float]] = []

    def add(self, pose: Pose | None) -> None:
        m = ankle_and_height(pose)
        if m is not None:
            self._values.append(m)

    def summarize(self, median_frac: float = 0.5, window: float = 0.05) -> PoseStats | None:
        """The statistics above, or None when no frame had both head and ankles."""
        if not self._values:
            return None
        v = np.asarray(self._values, np.float64)
        ankle, height = v[:, 0], v[:, 1]
        close = float(ankle.max())
        median = float(np.median(ankle))
        far = max(float(ankle.min()), median - median_frac * (close - median))
        span = max(close - far, 1e-6)
        near_close = np.abs(ankle - close) <= window * span
        # No frame may sit right at `far` (it is interpolated): then take the nearest ones.
        dist_far = np.abs(ankle - far)
        near_far = dist_far <= max(window * span, dist_far.min())
        tallest = float(height.max())
        h_close = float(height[near_close].max())
        if h_close < 0.9 * tallest:
            h_close = tallest
        h_far = float(height[near_far].max())
        return PoseStats(close, far, h_close, h_far, len(v), median_frac, window)
