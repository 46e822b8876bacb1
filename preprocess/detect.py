"""Person detection with mediapipe 0.10.21's legacy `solutions` (models ship in the wheel).

`HolisticDetector` runs Holistic (body, hands, face mesh with irises, person
segmentation) in tracking mode: each frame is seeded from the previous one,
which is both faster and steadier than detecting every frame afresh. Holistic
follows one person (the most prominent one), so "one person, the largest" holds
by construction. `SegmentationOnly` is the person mask alone, for datasets
whose keypoints come from OpenPose JSON.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import numpy as np

from preprocess.mediapipe_to_openpose import assemble_pose
from vid2vid.pose import Pose

# mediapipe logs through absl/glog to stderr at start-up; keep the terminal for the progress bar.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


QUIET_CALLS = 8  # mediapipe's native start-up chatter comes with the first few frames


@contextmanager
def native_stderr_silenced():
    """Sends the process's fd 2 to /dev/null for a moment.

    mediapipe's C++ code (absl/glog, TFLite) prints start-up warnings straight to
    fd 2, past Python, and no environment variable of 0.10.21 turns all of them
    off. Python-level output written meanwhile is flushed first and not lost for
    long: this only wraps model construction and the first few frames.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (embedded use): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class QuietStart:
    """Runs `call` with native stderr silenced for the first QUIET_CALLS calls."""

    def __init__(self):
        self._calls = 0

    def run(self, call, *args):
        if self._calls >= QUIET_CALLS:
            return call(*args)
        self._calls += 1
        with native_stderr_silenced():
            return call(*args)


def _landmarks(result, with_visibility: bool = False) -> np.ndarray | None:
    if result is None:
        return None
    if with_visibility:
        return np.array([(p.x, p.y, p.visibility) for p in result.landmark], np.float32)
    return np.array([(p.x, p.y) for p in result.landmark], np.float32)


def _mask_u8(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if mask is None:
        return np.zeros(shape, np.uint8)
    return (np.clip(mask, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


class HolisticDetector:
    """Frame -> (Pose or None, person mask uint8 [H, W]). Feed frames in order."""

    def __init__(self, model_complexity: int = 1):
        self._quiet = QuietStart()
        with native_stderr_silenced():
            from mediapipe.python.solutions import holistic

            self._holistic = holistic.Holistic(
                static_image_mode=False, model_complexity=model_complexity,
                smooth_landmarks=True, enable_segmentation=True, smooth_segmentation=True,
                refine_face_landmarks=True,
            )

    def __call__(self, rgb: np.ndarray) -> tuple[Pose | None, np.ndarray]:
        h, w = rgb.shape[:2]
        r = self._quiet.run(self._holistic.process, rgb)
        pose = assemble_pose(
            _landmarks(r.pose_landmarks, with_visibility=True), _landmarks(r.face_landmarks),
            _landmarks(r.left_hand_landmarks), _landmarks(r.right_hand_landmarks), w, h,
        )
        mask = _mask_u8(r.segmentation_mask if pose is not None else None, (h, w))
        return pose, mask

    def close(self) -> None:
        self._holistic.close()


class SegmentationOnly:
    """Frame -> person mask uint8 [H, W] (mediapipe selfie segmentation, landscape model)."""

    def __init__(self):
        self._quiet = QuietStart()
        with native_stderr_silenced():
            from mediapipe.python.solutions import selfie_segmentation

            self._seg = selfie_segmentation.SelfieSegmentation(model_selection=1)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        result = self._quiet.run(self._seg.process, rgb)
        return _mask_u8(result.segmentation_mask, rgb.shape[:2])

    def close(self) -> None:
        self._seg.close()
