"""Temporal smoothing of keypoints with the One-Euro filter.

The One-Euro filter (Casiez et al., CHI 2012) is a low-pass filter whose
cut-off frequency rises with the speed of the signal: still keypoints are
smoothed strongly (no jitter), fast ones lightly (little lag). It is causal,
so it runs while streaming (preprocessing). Shared by preprocessing and
transfer so both see the same motion statistics.

    cutoff = min_cutoff + beta * |d(x)/dt|      alpha = 1 / (1 + 1 / (2 pi cutoff dt))

A keypoint that goes missing (confidence 0) resets its filter, so a point
never slides in from where it was last seen.

`smooth_track` is the zero-phase form for a clip held in memory (transfer):
the same filter run forwards and backwards and averaged. A causal filter
lags fast motion by a few frames, which a driving pose cannot afford (the
body would trail the music); the backward pass leads by as much, so the
average has no lag, and for a first-order low-pass its response is the
forward one squared (as `scipy.signal.filtfilt`).

`gaussian` is the plain zero-phase Gaussian over time, for tracks that need
no speed-dependent cut-off (a face crop's centre, a dream's lent hands).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from vid2vid.pose import Pose


def gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing of `sigma` frames along axis 0 (float64), the end values
    held beyond the ends (no pull towards 0)."""
    x = np.asarray(x, np.float64)
    if sigma <= 0 or len(x) < 2:
        return x
    r = int(math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    padded = np.concatenate([np.repeat(x[:1], r, 0), x, np.repeat(x[-1:], r, 0)])
    return sum(w * padded[i:i + len(x)] for i, w in enumerate(k / k.sum()))


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


SETTLE_TIME_CONSTANTS = 5.0   # pad length: the filter forgets its start to within e^-5


def _runs(present: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, start, end) of every run of frames where a point is present; `present` [T, N]."""
    edges = np.diff(np.pad(present.T.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    point, start = np.nonzero(edges == 1)
    _, end = np.nonzero(edges == -1)       # row-major: paired with the starts point by point
    return point, start, end


def _odd_padded(xy: np.ndarray, pad: int) -> np.ndarray:
    """`[L, 2]` -> `[L + 2 pad, 2]`, extended by point reflection about each end.

    Why odd: the extension continues a straight track straight, so the filters
    settle on the real motion before the first frame (no lag at the ends);
    a mirror (even) reflection would fold the track back and bend it there.
    """
    if pad == 0:
        return xy
    head = 2 * xy[0] - xy[pad:0:-1]
    tail = 2 * xy[-1] - xy[-2:-pad - 2:-1]
    return np.concatenate([head, xy, tail])


def smooth_track(track: np.ndarray, fps: float, params: OneEuroParams = OneEuroParams()
                 ) -> np.ndarray:
    """Zero-phase One-Euro smoothing of a whole clip's keypoints.

    Every run of frames in which a point is present is smoothed on its own:
    missing points (confidence 0) stay as they are, and no value is carried
    across a gap. Each run is extended at both ends by point reflection (see
    `_odd_padded`), filtered forwards and backwards with `OneEuroFilter`, and
    the two are averaged. A run's first and last frames are the pivots of the
    reflection, so they stay near their raw values (jitter there is smoothed
    least); a run of one frame is returned as it is. The extension is about
    0.8 s (`SETTLE_TIME_CONSTANTS` of the slowest cut-off); runs shorter than
    that keep a small lag at their ends (a tenth of a pixel at 150 px/s).

    Shape:
        track: `[T, N, 3]` (x, y, confidence) per frame and point.
        returns: `[T, N, 3]` float32, confidences unchanged.
    """
    track = np.asarray(track)
    if track.ndim != 3 or track.shape[2] != 3:
        raise ValueError(f"track must be [T, N, 3], got shape {track.shape}")
    out = track.astype(np.float32).copy()
    point, start, end = _runs(track[..., 2] > 0)
    length = end - start
    slowest = min(params.min_cutoff, params.d_cutoff)
    settle = int(math.ceil(SETTLE_TIME_CONSTANTS * fps / (2 * math.pi * slowest)))
    pads = np.minimum(length - 1, settle)
    padded_len = length + 2 * pads
    # Runs of similar length are filtered together, one filter row per run: a loop over
    # the frames of the longest run in each group, vectorised over runs.
    group = np.ceil(np.log2(np.maximum(padded_len, 1))).astype(int)
    for g in np.unique(group[length > 1]):
        rows = np.nonzero((group == g) & (length > 1))[0]
        width = int(padded_len[rows].max())
        batch = np.zeros((width, len(rows), 3))
        for i, r in enumerate(rows):
            xy = track[start[r]:end[r], point[r], :2].astype(np.float64)
            batch[:padded_len[r], i, :2] = _odd_padded(xy, int(pads[r]))
            batch[:padded_len[r], i, 2] = 1.0       # beyond a run's end: missing
        forward, backward = OneEuroFilter(fps, params), OneEuroFilter(fps, params)
        fwd = np.stack([forward(batch[k])[:, :2] for k in range(width)])
        bwd = np.stack([backward(batch[k])[:, :2] for k in reversed(range(width))])[::-1]
        mean = (fwd + bwd) / 2
        for i, r in enumerate(rows):
            p = int(pads[r])
            out[start[r]:end[r], point[r], :2] = mean[p:p + length[r], i]
    return out
