"""The face task's geometry: a stable square crop around a talking head, and the
face region and background edges inside it (see `preprocess.face`).

The crop of a frame depends on the frames after it: the track is smoothed in
both directions over the whole video (zero phase, no lag), so talking and
nodding neither jitter nor breathe the crop. Transfer (`infer.face_driving`)
crops the driving face the same way.
"""

from __future__ import annotations

import cv2
import numpy as np

from preprocess.edges import edge_map
from vid2vid.smoothing import gaussian

FACE_CROP_SCALE = 2.5    # crop side / width of the 68 landmarks: room for hair, ears, neck
CROP_RAISE = 0.25        # crop centre sits this share of the landmark box's height above its
                         # centre: the landmarks stop at the brows, the head does not
CENTER_SIGMA_S = 0.2     # Gaussian (zero-phase) smoothing of the crop centre, seconds
SIDE_MEDIAN_S = 2.0      # running-median window of the crop side, seconds ...
SIDE_SIGMA_S = 0.5       # ... then Gaussian-smoothed, seconds: the zoom barely moves
FOREHEAD_RAISE = 0.3     # face region: brows raised by this share of the brow-to-chin distance

def _running_median(x: np.ndarray, window: int) -> np.ndarray:
    half = max(window // 2, 0)
    padded = np.pad(x.astype(np.float64), half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)


def crop_track(faces: np.ndarray, present: np.ndarray, fps: float) -> np.ndarray:
    """The smoothed crop of every frame, `[N, 3]` (centre x, centre y, side) in frame pixels.

    Per frame: centre = the 68 landmarks' box centre raised by CROP_RAISE of
    its height; side = FACE_CROP_SCALE x its width. Frames without a face take
    values interpolated from their neighbours. Smoothing runs over the whole
    track in both directions (no lag): the centre with a Gaussian of
    CENTER_SIGMA_S, the side with a running median of SIDE_MEDIAN_S then a
    Gaussian of SIDE_SIGMA_S, so talking and nodding do not make the crop
    jitter or breathe. Unclamped: `place_boxes` fits it into the frame.
    """
    pts = faces[:, :68]
    ok = pts[..., 2] > 0
    usable = present & (ok.sum(1) >= 3)
    if not usable.any():
        raise ValueError("no frame has a face")
    t = np.arange(len(faces))
    lo = np.array([pts[i, ok[i], :2].min(0) if usable[i] else (0, 0) for i in t], np.float64)
    hi = np.array([pts[i, ok[i], :2].max(0) if usable[i] else (0, 0) for i in t], np.float64)

    def fill(v: np.ndarray) -> np.ndarray:
        return np.interp(t, t[usable], v[usable])

    cx = fill((lo[:, 0] + hi[:, 0]) / 2)
    cy = fill((lo[:, 1] + hi[:, 1]) / 2 - CROP_RAISE * (hi[:, 1] - lo[:, 1]))
    side = FACE_CROP_SCALE * fill(hi[:, 0] - lo[:, 0])
    window = max(1, int(round(SIDE_MEDIAN_S * fps)))
    side = gaussian(_running_median(side, window), SIDE_SIGMA_S * fps)
    return np.stack([gaussian(cx, CENTER_SIGMA_S * fps), gaussian(cy, CENTER_SIGMA_S * fps),
                     side], axis=1)


def place_boxes(track: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Crop track `[N, 3]` -> integer boxes `[N, 3]` (x0, y0, side) inside the frame.

    The crop never leaves the frame: the side is capped at the frame's shorter
    side and the box shifted inside. Padding (black or replicated edges) would
    put borders into the frames and edge maps that move with the head, which
    the generator would then learn to draw. Capping and shifting are continuous,
    so the smoothed track stays smooth; near a border the face moves off-centre
    instead. `w, h = frame_size`.
    """
    w, h = frame_size
    side = np.clip(np.round(track[:, 2]), 2, min(w, h)).astype(np.int64)
    x0 = np.clip(np.round(track[:, 0] - side / 2), 0, w - side).astype(np.int64)
    y0 = np.clip(np.round(track[:, 1] - side / 2), 0, h - side).astype(np.int64)
    return np.stack([x0, y0, side], axis=1)


def to_crop(face: np.ndarray, box: np.ndarray, crop_size: int) -> np.ndarray:
    """Face `[70, 3]` in frame pixels -> crop pixels (missing points stay 0, none dropped)."""
    out = face.astype(np.float32).copy()
    s = crop_size / float(box[2])
    out[:, 0] = (face[:, 0] - box[0]) * s
    out[:, 1] = (face[:, 1] - box[1]) * s
    out[face[:, 2] <= 0] = 0
    return out


def inside(face: np.ndarray, size: int) -> np.ndarray:
    """Points outside a `size` square set missing, as OpenPose never reports them."""
    out = face.copy()
    off = (face[:, 0] < 0) | (face[:, 0] > size - 1) | (face[:, 1] < 0) | (face[:, 1] > size - 1)
    out[off] = 0
    return out


def face_region(face: np.ndarray, size: int) -> np.ndarray:
    """uint8 `[size, size]`, 255 in the face: the filled hull of the 68 landmarks.

    The landmarks end at the brows, so the brows are first raised, along the
    chin-to-brow direction (head roll included), by FOREHEAD_RAISE of that
    distance; the hull then takes in the forehead.
    """
    mask = np.zeros((size, size), np.uint8)
    xy = face[:68, :2].astype(np.float64).copy()
    ok = face[:68, 2] > 0
    if ok.sum() < 3:
        return mask
    brows = ok[17:27]
    if ok[8] and brows.any():
        up = xy[17:27][brows].mean(0) - xy[8]
        xy[17:27] += FOREHEAD_RAISE * up
    shift = 4  # sub-pixel vertices: cv2 takes fixed-point coordinates with 4 fraction bits
    hull = cv2.convexHull(np.round(xy[ok] * (1 << shift)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_8, shift)
    return mask


def background_edges(gray: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Canny edges of `gray` outside the face `region` dilated by ~1.5% of the side.

    The dilation keeps the face outline itself out (the sketch drawn from the
    landmarks stands for it), so the model cannot copy the face from its edges.
    """
    edges = edge_map(gray, None)
    r = max(1, int(round(gray.shape[0] / 64)))
    grown = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    edges[grown > 0] = 0
    return edges
