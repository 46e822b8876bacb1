"""Drawing keypoints into conditioning maps and previews.

One rendering function serves preprocessing previews, training and transfer,
so changing the drawing style never needs a new preprocessing run. Maps are
drawn OpenPose-style: each body limb in its own colour (a colour tells the
network *which* limb it sees, so left and right are not confused), hands with
one colour per finger, the face as white contours.

Stroke widths scale with the image height so the same pose reads the same at
128 and 1024 pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from vid2vid.pose import BODY_LIMBS, FACE_PARTS, HAND_LIMBS, Pose

# Evenly spaced hues so neighbouring limbs differ; fixed so maps are stable across versions.
_LIMB_COLORS = [
    tuple(int(c) for c in cv2.cvtColor(np.uint8([[[int(180 * i / len(BODY_LIMBS)), 255, 255]]]),
                                       cv2.COLOR_HSV2RGB)[0, 0])
    for i in range(len(BODY_LIMBS))
]
_FINGER_COLORS = [(255, 64, 64), (255, 200, 0), (64, 255, 64), (0, 200, 255), (200, 64, 255)]
_FACE_COLOR = (255, 255, 255)
# Body strokes, share of the height: 1 px at 128, 10 px at 1024. Previews, and runs saved
# before `TrainConfig.limb_width` (whose default is wider, RESULTS.md).
LIMB_WIDTH = 1 / 100


def stroke_width(height: int, fraction: float) -> int:
    return max(1, int(round(height * fraction)))


# Fractional bits of the line ends with `subpixel`: a 1/16 px grid, finer than the detectors.
SUBPIXEL_BITS = 4


def _polyline(canvas: np.ndarray, pts: np.ndarray, idx, color, width: int,
              subpixel: bool = False) -> None:
    ok = pts[list(idx), 2] > 0
    # Whole pixels: a stroke jumps 1 px every few frames of a slow limb, and so does
    # the figure drawn from it (RESULTS.md, twenty-first ablation).
    bits = SUBPIXEL_BITS if subpixel else 0
    scale = float(1 << bits)
    for j in range(len(idx) - 1):
        if ok[j] and ok[j + 1]:
            a = pts[idx[j], :2] * scale
            b = pts[idx[j + 1], :2] * scale
            cv2.line(canvas, (int(round(a[0])), int(round(a[1]))),
                     (int(round(b[0])), int(round(b[1]))), color, width, cv2.LINE_AA, bits)


def draw_face_sketch(canvas: np.ndarray, face: np.ndarray, width: int = 1,
                     color=_FACE_COLOR, jaw: bool = True, subpixel: bool = False) -> np.ndarray:
    """Draws the 68-point face contours (jaw, brows, nose, eyes, lips) onto `canvas` in place;
    `subpixel`: line ends at 1/16 px instead of whole pixels."""
    for name, idx in FACE_PARTS.items():
        if name == "jaw" and not jaw:
            continue
        _polyline(canvas, face, idx, color, width, subpixel)
    return canvas


def render_pose(pose: Pose | None, size: tuple[int, int], *, face: bool = True,
                hands: bool = True, drop: np.ndarray | None = None,
                limb_width: float = LIMB_WIDTH, subpixel: bool = False) -> np.ndarray:
    """Draws a pose as an RGB uint8 `[H, W, 3]` map of `size` = (w, h).

    `drop` optionally holds one boolean per body limb (then left hand, right
    hand, face) to leave out, which training uses as augmentation. Body limbs
    are `limb_width` of the height wide (at least 1 px). `subpixel`: line ends
    at 1/16 px (anti-aliased) instead of rounded to whole pixels.
    """
    w, h = size
    canvas = np.zeros((h, w, 3), np.uint8)
    if pose is None or not pose.found:
        return canvas
    body_width = stroke_width(h, limb_width)
    fine_width = stroke_width(h, 1 / 400)
    n_limbs = len(BODY_LIMBS)
    dropped = np.zeros(n_limbs + 3, bool) if drop is None else drop
    for k, (a, b) in enumerate(BODY_LIMBS):
        if not dropped[k]:
            _polyline(canvas, pose.body, (a, b), _LIMB_COLORS[k], body_width, subpixel)
    if hands:
        for hand, off in ((pose.left_hand, 0), (pose.right_hand, 1)):
            if dropped[n_limbs + off]:
                continue
            for k, (a, b) in enumerate(HAND_LIMBS):
                _polyline(canvas, hand, (a, b), _FINGER_COLORS[k // 4], fine_width, subpixel)
    if face and not dropped[n_limbs + 2]:
        draw_face_sketch(canvas, pose.face, fine_width, subpixel=subpixel)
    return canvas


def preview(frame: np.ndarray, pose: Pose | None) -> np.ndarray:
    """The pose drawn over a darkened copy of the frame, for a person to check detections."""
    canvas = (frame.astype(np.uint16) * 2 // 5).astype(np.uint8)
    drawn = render_pose(pose, (frame.shape[1], frame.shape[0]))
    mask = drawn.any(axis=2)
    canvas[mask] = drawn[mask]
    return canvas
