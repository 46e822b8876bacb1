"""How rare each training frame's posture is in its video, for balanced clip sampling.

A held-out pose the training frames seldom show (dancer.avi's arm over the head)
is where the model draws a person the pose detector then misses. With
`TrainConfig.balance` > 0 the loader draws clips with weight
`clip(rarity / median rarity, 1/4, 4) ** balance` instead of every clip once per
epoch, so such poses come round more often (the cap keeps a few bad detections,
which are far from everything, from taking over).

Rarity of frame i: the distance (torso lengths: `normalized_body`, the mean over
the joints both poses have) to its k-th nearest posture among the video's
training frames at least `apart` frames away; the frames next to it in time
would make every pose look common.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vid2vid.pose import Pose, normalized_body, shared_point_distance

NEIGHBOURS = 10     # the k-th nearest posture: one lucky match does not make a pose common
APART = 12          # frames either side that do not count (half a second at 25 fps)
CAP = 4.0           # the largest weight ratio to a median clip, either way


def pose_rarity(poses: Sequence[Pose | None], neighbours: int = NEIGHBOURS,
                apart: int = APART) -> np.ndarray:
    """`[N]` rarity of each pose against the others (module docstring); NaN without a torso."""
    normed = [normalized_body(p) for p in poses]
    keep = np.flatnonzero([n is not None for n in normed])
    out = np.full(len(poses), np.nan)
    if len(keep) <= neighbours:
        return out
    points = np.stack([normed[i][0] for i in keep])                       # [M, 25, 2]
    present = np.stack([normed[i][1] for i in keep])                      # [M, 25]
    for lo in range(0, len(keep), 256):
        rows = slice(lo, lo + 256)
        mean, shared = shared_point_distance(points[rows, None], present[rows, None],
                                             points[None], present[None])   # [m, M]
        mean[shared == 0] = np.inf
        near = np.abs(keep[rows, None] - keep[None]) < apart
        mean[near] = np.inf
        kth = np.sort(mean, axis=1)[:, neighbours - 1]
        out[keep[rows]] = np.where(np.isfinite(kth), kth, np.nan)
    return out


def clip_weights(rarity: np.ndarray, starts: np.ndarray, length: int, balance: float
                 ) -> np.ndarray:
    """Sampling weight of each clip starting at `starts` (its frames' mean rarity).

    Relative to the video's median clip, so weights of several videos add up fairly.
    Frames without a rarity count as median; `balance` 0 gives every clip weight 1.
    """
    median = np.nanmedian(rarity) if np.isfinite(rarity).any() else 1.0
    r = np.where(np.isfinite(rarity), rarity, median) / max(median, 1e-6)
    per_clip = np.array([r[s:s + length].mean() for s in starts])
    return np.clip(per_clip, 1 / CAP, CAP) ** balance
