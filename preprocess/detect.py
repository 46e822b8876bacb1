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

import numpy as np

from preprocess.mediapipe_to_openpose import assemble_pose
from vid2vid.pose import Pose

# mediapipe logs through absl/glog to stderr at start-up; keep the terminal for the progress bar.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
        from mediapipe.python.solutions import holistic

        self._holistic = holistic.Holistic(
            static_image_mode=False, model_complexity=model_complexity,
            smooth_landmarks=True, enable_segmentation=True, smooth_segmentation=True,
            refine_face_landmarks=True,
        )

    def __call__(self, rgb: np.ndarray) -> tuple[Pose | None, np.ndarray]:
        h, w = rgb.shape[:2]
        r = self._holistic.process(rgb)
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
        from mediapipe.python.solutions import selfie_segmentation

        self._seg = selfie_segmentation.SelfieSegmentation(model_selection=1)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return _mask_u8(self._seg.process(rgb).segmentation_mask, rgb.shape[:2])

    def close(self) -> None:
        self._seg.close()
