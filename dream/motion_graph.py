"""The classic baseline for endless dance from data: a motion graph.

Play a random stretch of the training motion, then jump to the training frame
whose pose and velocity best match the current one (away from where we are)
and blend the jump out over a few frames. It replays the training poses by
construction: the novelty measure's reference point.
"""

from __future__ import annotations

import numpy as np

BLEND = 6             # frames over which a jump's offset fades out
AWAY = 25             # a jump lands at least this many frames from the current frame


def motion_graph(features: np.ndarray, valid: np.ndarray, frames: int, seed: int = 0,
                 segment: tuple[int, int] = (25, 75)) -> np.ndarray:
    """`[N, D]` training features (frames with `valid`) -> `[frames, D]` endless motion."""
    rng = np.random.default_rng(seed)
    n = len(features)
    vel = np.zeros_like(features)
    vel[1:] = features[1:] - features[:-1]
    key = np.concatenate([features, 4.0 * vel], 1)      # velocity weighs in: no reversals
    lo, hi = segment
    ok = np.array([valid[max(j - 1, 0):j + hi].all() for j in range(n)])
    ok[:1] = False
    ok[n - hi:] = False
    starts = np.flatnonzero(ok)
    out = np.zeros((frames, features.shape[1]), np.float32)
    cur = int(rng.choice(starts))
    offset = np.zeros(features.shape[1])
    k = 0
    while k < frames:
        length = int(rng.integers(lo, hi + 1))
        for j in range(length):
            if k >= frames:
                break
            fade = max(0.0, 1.0 - j / BLEND)
            out[k] = features[cur + j] + offset * fade
            k += 1
        end = cur + length - 1
        cand = starts[np.abs(starts - end) > AWAY]
        # The next frame after `end` should look like frame `j`: compare end+1's key with j's.
        target = key[min(end + 1, n - 1)]
        j = int(cand[np.argmin(((key[cand] - target) ** 2).sum(1))])
        offset = out[k - 1] + (features[min(end + 1, n - 1)] - features[end]) - features[j]
        cur = j
    return out
