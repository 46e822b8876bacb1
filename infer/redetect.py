"""Re-detecting the person on generated frames, for the pose-consistency metric.

`PoseProbe` finds the body on a whole frame and on a square crop around the
person's box, and returns both in the frame's pixels, to be compared with the
pose that drove the frame (`vid2vid.metrics.pose_consistency`).

The detector is mediapipe's BlazePose (the body model inside the Holistic
detector preprocessing uses; its 33 landmarks become BODY_25 through the same
code, `preprocess.mediapipe_to_openpose`), in static-image mode: each frame is
detected on its own, so a bad frame never inherits a pose tracked from the
frames before it (tracking would flatter the detection rate), and one detector
serves any number of streams (a Holistic tracker per stream takes ~200 MB).

Frames under 256 pixels tall are enlarged first: mediapipe misses small
people, and models are often trained at 128-256 px. The box crop is square and
1.25 times the box's longer side, black beyond the frame: BlazePose finds
people in such windows, while a tight crop of a standing person loses the legs.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from vid2vid.pose import Pose

__all__ = ["BodyDetector", "PoseProbe", "DETECT_MIN_HEIGHT"]

DETECT_MIN_HEIGHT = 256


def _enlarge(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    import cv2

    h = rgb.shape[0]
    if h >= DETECT_MIN_HEIGHT:
        return rgb, 1.0
    s = DETECT_MIN_HEIGHT / h
    size = (int(round(rgb.shape[1] * s)), DETECT_MIN_HEIGHT)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC), s


def _square_crop(rgb: np.ndarray, box: tuple[float, float, float, float], grow: float = 1.25
                 ) -> tuple[np.ndarray, int, int]:
    """The square around the box's centre, `grow` times its longer side, black beyond the frame.

    Square, with room around the person: BlazePose finds people in such
    windows; a tight, tall crop (a standing person) loses the legs.
    Returns (crop, x0, y0): the crop's top-left corner in frame pixels.
    """
    side = max(2, int(math.ceil(grow * max(box[2] - box[0], box[3] - box[1]))))
    x0 = int(round((box[0] + box[2]) / 2 - side / 2))
    y0 = int(round((box[1] + box[3]) / 2 - side / 2))
    h, w = rgb.shape[:2]
    crop = np.zeros((side, side, 3), np.uint8)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return crop, x0, y0


def _back(pose: Pose | None, scale: float, x0: float = 0.0, y0: float = 0.0) -> Pose | None:
    """A pose found on an enlarged crop -> frame pixels."""
    if pose is None or not pose.found:
        return None

    def f(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        present = a[:, 2] > 0
        out[present, 0] = a[present, 0] / scale + x0
        out[present, 1] = a[present, 1] / scale + y0
        out[~present] = 0
        return out

    return pose.map(f)


class BodyDetector:
    """RGB uint8 frame -> its person's body as a BODY_25 Pose (frame pixels), or None.

    mediapipe Pose (BlazePose, model complexity 1, as inside preprocessing's
    Holistic) in static-image mode: each frame on its own, no tracking.
    """

    def __init__(self):
        from preprocess.detect import filter_native_logs

        filter_native_logs()  # mediapipe's native start-up chatter
        from mediapipe.python.solutions import pose

        self._pose = pose.Pose(static_image_mode=True, model_complexity=1,
                               enable_segmentation=False)

    def __call__(self, rgb: np.ndarray) -> Pose | None:
        from preprocess.mediapipe_to_openpose import assemble_pose

        found = self._pose.process(rgb).pose_landmarks
        if found is None:
            return None
        body33 = np.array([(p.x, p.y, p.visibility) for p in found.landmark], np.float32)
        return assemble_pose(body33, None, None, None, rgb.shape[1], rgb.shape[0])

    def close(self) -> None:
        self._pose.close()


class PoseProbe:
    """Re-detects the person on a frame and on the crop of a box, in frame pixels.

    `detector`: a callable RGB uint8 frame -> Pose | None (default `BodyDetector`).
    """

    def __init__(self, detector: Callable | None = None):
        self.detector = detector if detector is not None else BodyDetector()

    def __call__(self, rgb: np.ndarray, box: tuple[float, float, float, float] | None
                 ) -> tuple[Pose | None, Pose | None]:
        big, s = _enlarge(rgb)
        full = _back(self.detector(np.ascontiguousarray(big)), s)
        in_box = None
        if box is not None and all(math.isfinite(v) for v in box):
            crop, x0, y0 = _square_crop(rgb, box)
            big, s = _enlarge(crop)
            in_box = _back(self.detector(big), s, x0, y0)
        return full, in_box

    def close(self) -> None:
        if hasattr(self.detector, "close"):
            self.detector.close()
