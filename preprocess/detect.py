"""Person detection with mediapipe 0.10.21's legacy `solutions` (models ship in the wheel).

`HolisticDetector` runs Holistic (body, hands, face mesh with irises, person
segmentation) in tracking mode: each frame is seeded from the previous one,
which is both faster and steadier than detecting every frame afresh. Holistic
follows one person (the most prominent one), so "one person, the largest" holds
by construction. `SegmentationOnly` is the person mask alone, for datasets
whose keypoints come from OpenPose JSON.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

import numpy as np

from preprocess.mediapipe_to_openpose import assemble_pose
from vid2vid.pose import Pose

# mediapipe logs through absl/glog to stderr at start-up; keep the terminal for the progress bar.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# Lines mediapipe's C++ side (absl/glog, TFLite) writes straight to fd 2, past Python,
# from its graph threads at any time after a model starts: glog's info and warning lines
# ("I0000 ...", "W0000 ..."), absl's notice about them, and TFLite's delegate line.
_NATIVE_CHATTER = re.compile(
    rb"^(?:[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] |WARNING: All log messages before absl::|"
    rb"INFO: Created TensorFlow Lite)")
_filter_lock = threading.Lock()
_filter_pipe: tuple[int, int] | None = None   # (st_dev, st_ino) of the pipe fd 2 was made


def filter_native_logs() -> None:
    """Drops mediapipe's native start-up chatter from stderr for the rest of the process.

    The chatter comes from mediapipe's own threads whenever they start a
    model, so no window of silence around construction catches all of it, and
    no environment variable of 0.10.21 turns it off. Instead fd 2 becomes a
    pipe read by a thread that forwards everything except the lines above
    (errors, glog's E/F lines and all of Python's output pass). Partial lines
    (a progress bar's carriage returns) are forwarded at once. At exit the
    real stderr is put back and the pipe drained, so no last message is lost.
    Idempotent while fd 2 is still the filter's pipe; installed again when
    something else (a test harness's capture) has taken fd 2 since. A no-op
    where fd 2 cannot be duplicated.
    """
    global _filter_pipe
    with _filter_lock:
        try:
            current = os.fstat(2)
            if _filter_pipe == (current.st_dev, current.st_ino):
                return
            sys.stderr.flush()
            real = os.dup(2)
            read_end, write_end = os.pipe()
        except OSError:  # no fd 2 (embedded use): nothing to filter
            return
        os.dup2(write_end, 2)
        os.close(write_end)
        pipe = os.fstat(2)
        _filter_pipe = (pipe.st_dev, pipe.st_ino)

    def forward() -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(read_end, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            lines = re.split(rb"(?<=[\n\r])", pending)
            pending = lines.pop()  # text after the last line end (often b"")
            if pending and not _could_be_chatter(pending):
                lines.append(pending)
                pending = b""
            out = b"".join(line for line in lines if not _NATIVE_CHATTER.match(line))
            if out:
                os.write(real, out)
        if pending and not _NATIVE_CHATTER.match(pending):
            os.write(real, pending)
        os.close(read_end)

    thread = threading.Thread(target=forward, name="vid2vid-stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real, 2)   # fd 2 is the real stderr again; the pipe's last writer is gone
        thread.join(timeout=2.0)

    atexit.register(restore)


def _could_be_chatter(partial: bytes) -> bool:
    """Whether an unfinished line may still turn into one of the chatter lines (held back
    until its line end; nothing else starts like them, progress bars included)."""
    return bool(re.match(rb"^(?:[IW]\d*(?: |$)|I?N?F?O?:?$|W?A?R?N?I?N?G?:?$|INFO: |WARNING: )",
                         partial))


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

    def __init__(self, model_complexity: int = 1, coarse_hands: bool = False,
                 coarse_face: bool = False):
        filter_native_logs()
        from mediapipe.python.solutions import holistic

        self._coarse_hands = coarse_hands
        self._coarse_face = coarse_face
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
            coarse_hands=self._coarse_hands, coarse_face=self._coarse_face,
        )
        mask = _mask_u8(r.segmentation_mask if pose is not None else None, (h, w))
        return pose, mask

    def close(self) -> None:
        self._holistic.close()


class SegmentationOnly:
    """Frame -> person mask uint8 [H, W] (mediapipe selfie segmentation, landscape model)."""

    def __init__(self):
        filter_native_logs()
        from mediapipe.python.solutions import selfie_segmentation

        self._seg = selfie_segmentation.SelfieSegmentation(model_selection=1)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        result = self._seg.process(rgb)
        return _mask_u8(result.segmentation_mask, rgb.shape[:2])

    def close(self) -> None:
        self._seg.close()
