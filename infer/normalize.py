"""Global pose normalisation between two people (Everybody Dance Now).

The source dancer and the target person are filmed by different cameras, at
different distances, and are not equally tall. Drawing the source's
keypoints unchanged would ask the target's generator for a body of the wrong
size in the wrong place. EDN fixes this with one affine map per frame,
`(x, y) -> (cx_t + s * (x - cx_s), a + s * (y - f))`, built from each
subject's `vid2vid.pose_stats.PoseStats` (ankle y at the closest and farthest
positions, and the subject's height there). With S the source's statistics
(source pixels), T the target's (target pixels) and f the source's ankle y in
the current frame (the lower ankle):

    p     = clip((f - S.far) / (S.close - S.far), 0, 1)      where the source stands
    s     = lerp(T.h_far / S.h_far, T.h_close / S.h_close, p)   scale
    g     = min((T.close - T.far) / (S.close - S.far), max_gain * mean scale)
    a     = T.mid + g * (f - S.mid)                           where the target's feet go
    y'    = a + s * (y - f);   x' = cx_t + s * (x - cx_s)

So the source's closest position lands on the target's closest and its
farthest on the target's farthest, and the body there gets the target's
height. Choices, and why:

- Scaling is anchored at the current frame's ankle (EDN anchors it at the
  first frame's), so the feet land exactly on `a` and the height is exactly
  the interpolated target height, however far the source walks in depth.
- `p` is clipped for the scale only: a frame above the source's `far` (a
  jump, or a step beyond the robust far estimate) still moves the target up,
  but the scale never extrapolates past the two measured ratios (which could
  otherwise shrink a body to nothing).
- The ankle gain `g` is capped at the body scale (`max_gain=1`). This is
  EDN's "if the source's ankle range is narrower than the target's, shrink the
  target range to the source's span around the target's midpoint", stated
  so that it holds across frame sizes and body sizes: a source that dances on
  the spot (its close-far range is a few pixels of foot lifting) must not
  swing the target across its whole training range. With `max_gain=inf` the
  close and far positions always map to the target's exactly.
- Horizontal placement: x relative to the frame's centre column, scaled by
  `s`, placed about the target frame's centre column (EDN's choice). It keeps
  the source's own travel to the left and right, scaled with the body, and
  needs no horizontal statistic (PoseStats has none). A target filmed far off
  centre will be drawn nearer the centre than in its training frames.
- Different frame sizes need no special case: each subject's statistics are
  in its own pixels, so `s` and `g` already convert source pixels to target
  pixels, and each frame's centre column is its own. (The same video at half
  the resolution maps onto the full-size one.)
- Pixel centres sit at integer coordinates, so a frame's centre column is
  `(w - 1) / 2`.
- A frame without a visible ankle reuses the last ankle seen (EDN reuses the
  last transform); before any, the source's mid ankle position `S.mid`.

The same map is applied to body, face and hands; missing points (confidence
0) stay `(0, 0, 0)`. Points may land outside the target frame; rendering
clips them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np

from vid2vid.dataset_dir import load_dataset
from vid2vid.errors import UserError
from vid2vid.pose import BODY, Pose
from vid2vid.pose_stats import PoseStats, PoseStatsAccumulator

__all__ = ["PoseNormalizer", "ankle_y", "stats_from_poses", "dataset_pose_stats"]

_EPS = 1e-6


def ankle_y(pose: Pose | None) -> float | None:
    """The source ankle position f of one frame: the larger y of the present ankles."""
    if pose is None:
        return None
    b = pose.body
    ys = [b[BODY[k], 1] for k in ("RAnkle", "LAnkle") if b[BODY[k], 2] > 0]
    return float(max(ys)) if ys else None


def _check_stats(stats: PoseStats, name: str) -> None:
    values = (stats.ankle_close, stats.ankle_far, stats.height_close, stats.height_far)
    if not all(math.isfinite(v) for v in values):
        raise UserError(f"pose statistics of {name} are not finite ({stats}); recompute them")
    if stats.height_close <= 0 or stats.height_far <= 0:
        raise UserError(f"pose statistics of {name} have a zero height ({stats}); the person's "
                        "head and ankles were never seen apart; use a clip showing the whole "
                        "body")
    if stats.ankle_close < stats.ankle_far:
        raise UserError(f"pose statistics of {name} have close above far ({stats}); recompute them")


def _check_size(size, name: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise UserError(f"{name} frame size {size!r} is not (width, height)") from None
    if w < 1 or h < 1:
        raise UserError(f"{name} frame size {size!r} is not (width, height) in pixels")
    return w, h


class PoseNormalizer:
    """Maps source poses onto the target's size and floor positions, frame by frame.

    Args:
        source: statistics of the source clip, in source-frame pixels
            (`stats_from_poses` over the whole source clip).
        target: statistics of the target's training video, in its pixels (the
            dataset's `meta.json` "pose_stats", `dataset_pose_stats`).
        source_size: (width, height) of the source frames the poses are in.
        target_size: (width, height) of the target's frames.
        max_gain: cap on the ankle gain, in units of the mean body scale (see
            the module docstring); `math.inf` disables it.

    Call it on each source frame in order: it remembers the last ankle seen
    for frames without one (`reset()` forgets it). Returns a new Pose in target
    pixels, or None for None.
    """

    def __init__(self, source: PoseStats, target: PoseStats, source_size: tuple[int, int],
                 target_size: tuple[int, int], max_gain: float = 1.0):
        _check_stats(source, "the source")
        _check_stats(target, "the target")
        if not max_gain > 0:
            raise ValueError(f"max_gain must be positive, got {max_gain}")
        self.source, self.target = source, target
        ws, _ = _check_size(source_size, "source")
        wt, _ = _check_size(target_size, "target")
        self.source_cx = (ws - 1) / 2
        self.target_cx = (wt - 1) / 2
        self.scale_close = target.height_close / source.height_close
        self.scale_far = target.height_far / source.height_far
        self.source_span = source.ankle_close - source.ankle_far
        self.source_mid = (source.ankle_close + source.ankle_far) / 2
        self.target_mid = (target.ankle_close + target.ankle_far) / 2
        cap = max_gain * (self.scale_close + self.scale_far) / 2
        if self.source_span > _EPS:
            self.gain = min((target.ankle_close - target.ankle_far) / self.source_span, cap)
        else:  # the source never moved in depth: move the target like the scaled body
            self.gain = cap
        self._last_ankle: float | None = None

    def reset(self) -> None:
        """Forget the last ankle seen (call between unrelated clips)."""
        self._last_ankle = None

    def transform(self, ankle: float) -> tuple[float, float]:
        """(scale s, target ankle y a) for a source frame whose ankle is at y = `ankle`."""
        if self.source_span > _EPS:
            p = min(max((ankle - self.source.ankle_far) / self.source_span, 0.0), 1.0)
        else:
            p = 0.5
        scale = self.scale_far + p * (self.scale_close - self.scale_far)
        return scale, self.target_mid + self.gain * (ankle - self.source_mid)

    def __call__(self, pose: Pose | None) -> Pose | None:
        if pose is None:
            return None
        f = ankle_y(pose)
        if f is None:
            f = self._last_ankle if self._last_ankle is not None else self.source_mid
        self._last_ankle = f
        s, a = self.transform(f)

        def apply(points: np.ndarray) -> np.ndarray:
            out = np.zeros_like(points, dtype=np.float32)
            present = points[:, 2] > 0
            out[present, 0] = self.target_cx + s * (points[present, 0] - self.source_cx)
            out[present, 1] = a + s * (points[present, 1] - f)
            out[present, 2] = points[present, 2]
            return out

        return pose.map(apply)


def stats_from_poses(poses: Iterable[Pose | None], name: str) -> PoseStats:
    """Statistics of a clip's poses; UserError naming `name` when no frame shows head and ankles."""
    acc = PoseStatsAccumulator()
    for pose in poses:
        acc.add(pose)
    stats = acc.summarize()
    if stats is None:
        raise UserError(f"{name}: no frame shows both the head and an ankle, so poses cannot be "
                        "normalised; use a clip with the whole body in view or pass --no-normalize")
    return stats


def dataset_pose_stats(root: str | Path) -> PoseStats:
    """The target statistics stored in a dataset's meta.json (written by `vid2vid preprocess`)."""
    meta = load_dataset(Path(root))
    stats = meta.get("pose_stats")
    if not stats:
        raise UserError(f"{Path(root) / 'meta.json'} has no pose_stats (no frame showed the head "
                        "and an ankle); pass --no-normalize or preprocess a full-body video")
    try:
        return PoseStats.from_dict(stats)
    except TypeError:
        raise UserError(f"{Path(root) / 'meta.json'} has malformed pose_stats; run vid2vid "
                        "preprocess again with --overwrite") from None
