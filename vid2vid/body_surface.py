"""Where on the body each pixel lies: a DensePose-like map drawn from the keypoints alone.

vid2vid's pose model reads DensePose's I/U/V (body part, and two coordinates on
its surface) beside the OpenPose skeleton, so a pixel of a sleeve says where on
the sleeve it is, and the cloth's folds can move with the arm. mediapipe gives
no such map, and the skeleton's strokes cover a few pixels of the body. This
draws the same kind of map from the keypoints: each body limb as a capsule as
wide as that part of a body (shares of the torso length), and in it

    channel 0  which part:       (k + 1) / len(BODY_LIMBS)
    channel 1  along the bone:   0 at its first keypoint .. 1 at its second
    channel 2  across the bone:  0 on one side .. 0.5 on the bone .. 1 on the other

zero outside the body. Where capsules overlap, the pixel belongs to the one it is
deepest in (relative to the capsule's width), so the map does not depend on a
drawing order.
"""

from __future__ import annotations

import numpy as np

from vid2vid.pose import BODY_LIMBS

CHANNELS = 3
# Half-widths as shares of the torso (neck to mid-hip), one per BODY_LIMBS entry:
# torso, shoulders, arms, hips, legs, head, face and feet.
HALF_WIDTH = np.array([
    0.30, 0.12, 0.12, 0.11, 0.09, 0.11, 0.09, 0.15, 0.16, 0.11,
    0.15, 0.16, 0.11, 0.14, 0.05, 0.05, 0.05, 0.05, 0.05, 0.04,
    0.05, 0.05, 0.04, 0.05], np.float32)
assert len(HALF_WIDTH) == len(BODY_LIMBS)


def torso_length(body: np.ndarray, height: int) -> float:
    """Neck to mid-hip in pixels; 1.5 shoulder widths without a hip; a quarter of the
    frame without either."""
    neck, hip, right, left = body[1], body[8], body[2], body[5]
    if neck[2] > 0 and hip[2] > 0:
        return max(float(np.hypot(*(neck[:2] - hip[:2]))), 1.0)
    if right[2] > 0 and left[2] > 0:
        return max(1.5 * float(np.hypot(*(right[:2] - left[:2]))), 1.0)
    return height / 4


def render_surface(body: np.ndarray, size: tuple[int, int],
                   drop: np.ndarray | None = None) -> np.ndarray:
    """BODY_25 keypoints `[25, 3]` in pixels -> the surface map `[H, W, 3]` float32 in
    [0, 1]; size is (H, W). `drop` (one boolean per body limb, or more) leaves limbs out
    as the skeleton's limb dropout does."""
    h, w = size
    out = np.zeros((h, w, CHANNELS), np.float32)
    if not (body[:, 2] > 0).any():
        return out
    torso = torso_length(body, h)
    depth = np.full((h, w), 1.0, np.float32)        # distance / half-width of the owner
    radius = np.zeros((h, w), np.float32)           # the owner's half-width in pixels
    for k, (a, b) in enumerate(BODY_LIMBS):
        if (drop is not None and drop[k]) or body[a, 2] <= 0 or body[b, 2] <= 0:
            continue
        pa, pb = body[a, :2].astype(np.float32), body[b, :2].astype(np.float32)
        d = pb - pa
        length2 = float(d @ d)
        r = HALF_WIDTH[k] * torso
        if length2 < 1e-6 or r < 0.5:
            continue
        # Only the capsule's bounding box can lie inside it: the rest is not computed.
        x0, y0 = (max(0, int(np.floor(min(pa[i], pb[i]) - r))) for i in (0, 1))
        x1, y1 = (min(n, int(np.ceil(max(pa[i], pb[i]) + r)) + 1) for i, n in ((0, w), (1, h)))
        if x0 >= x1 or y0 >= y1:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
        t = ((xs - pa[0]) * d[0] + (ys - pa[1]) * d[1]) / length2
        tc = np.clip(t, 0.0, 1.0)
        across = ((xs - pa[0]) * d[1] - (ys - pa[1]) * d[0]) / np.sqrt(length2)
        rel = np.hypot(xs - (pa[0] + tc * d[0]), ys - (pa[1] + tc * d[1])) / r
        box = (slice(y0, y1), slice(x0, x1))
        mine = rel < depth[box]
        if not mine.any():
            continue
        depth[box][mine], radius[box][mine] = rel[mine], r
        part = out[box]
        part[mine, 0] = (k + 1) / len(BODY_LIMBS)
        part[mine, 1] = tc[mine]
        part[mine, 2] = np.clip(0.5 + 0.5 * across[mine] / r, 0.0, 1.0)
    # A one-pixel fade at the outline, as the skeleton's anti-aliased strokes have, so a
    # sub-pixel move of a keypoint does not flip whole pixels on and off.
    return out * np.clip((1.0 - depth) * radius, 0.0, 1.0)[..., None]
