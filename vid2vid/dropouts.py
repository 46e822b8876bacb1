"""Bridging the hand model's and the face mesh's short dropouts in a keypoint track.

mediapipe's hand model and face mesh miss a small, blurred or turned hand or
face for a frame or two at a time; preprocessing then stores the body model's
coarse hand (5 points) or face (38 points) instead (`coarse_hand`,
`face70_from_body`). On dancer.avi the right hand switches between the two
forms 194 times in 1571 frames and the face 162 times, so the maps redraw the
hand and face every few frames while the person hardly moves: flicker the
generator learns and renders.

`bridge_dropouts` fills every run of at most `max_frames` frames without the
full part, between two frames with it, from those two: each point's offset
from the body's own anchor (the wrist for a hand, the nose for the face) is
interpolated linearly and hung from that frame's anchor, so the filled hand
follows the arm. Confidence is the smaller of the two ends'. Longer runs and
runs at either end of the track keep what was detected.
"""

from __future__ import annotations

import numpy as np

MAX_DROPOUT_SECONDS = 0.2    # 5 frames at 25 fps

# [137, 3] keypoints (body 0-24, face 25-94, left hand 95-115, right hand 116-136):
# each detail part and the BODY_25 point it is hung from.
_PARTS = ((slice(95, 116), 7),      # left hand: left wrist
          (slice(116, 137), 4),     # right hand: right wrist
          (slice(25, 95), 0))       # face: nose


def max_dropout_frames(fps: float) -> int:
    return max(1, round(MAX_DROPOUT_SECONDS * fps))


def bridge_dropouts(track: np.ndarray, max_frames: int) -> np.ndarray:
    """`[T, 137, 3]` keypoints -> the same with the detail parts' short dropouts filled
    (module docstring). Body keypoints are never changed."""
    track = np.asarray(track)
    if track.ndim != 3 or track.shape[1:] != (137, 3):
        raise ValueError(f"track must be [T, 137, 3], got shape {track.shape}")
    out = track.astype(np.float32).copy()
    for part, anchor in _PARTS:
        points = out[:, part]                                   # a view: edits land in out
        has_anchor = out[:, anchor, 2] > 0
        full = np.flatnonzero((points[..., 2] > 0).all(1) & has_anchor)
        for a, b in zip(full[:-1], full[1:]):
            if not 1 < b - a <= max_frames + 1:
                continue
            offset_a = points[a, :, :2] - out[a, anchor, :2]
            offset_b = points[b, :, :2] - out[b, anchor, :2]
            conf = np.minimum(points[a, :, 2], points[b, :, 2])
            for k in range(a + 1, b):
                if not has_anchor[k]:
                    continue
                t = (k - a) / (b - a)
                points[k, :, :2] = out[k, anchor, :2] + (1 - t) * offset_a + t * offset_b
                points[k, :, 2] = conf
    return out
