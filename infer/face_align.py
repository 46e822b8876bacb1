"""Face-to-face transfer in landmark space, and a landmark metric for its result.

The edge-to-face generator draws the face it is shown as a sketch. To make the
target person say what the driver says, the driver's landmarks are mapped onto
the target's face first: each part (jaw, brows, nose, eyes, lips) is moved to
where it sits in the target's mean face and scaled to the target's size of that
part, so the target keeps its proportions while the driver's expressions and
head motion carry over (vid2vid's per-part face normalisation).

`landmark_consistency` checks a generated face by re-detecting its landmarks
(`FaceRedetector`) and comparing them with the landmarks that drove it, in units
of the driving face's inter-ocular distance (the usual normalised mean error).

Arrays are OpenPose face-70 `[..., 70, 3]` rows (x, y, confidence) in pixels,
confidence 0 = missing (x = y = 0).
"""

from __future__ import annotations

import numpy as np

from vid2vid.pose import FACE_PARTS

# Part -> (points moved with it, points its centre and size are measured on). The pupils
# (68, 69) move with their eye, so the gaze inside the eye carries over; on their own
# they have no size to scale by.
ALIGN_PARTS = {
    "jaw": (FACE_PARTS["jaw"], FACE_PARTS["jaw"]),
    "right_brow": (FACE_PARTS["right_brow"], FACE_PARTS["right_brow"]),
    "left_brow": (FACE_PARTS["left_brow"], FACE_PARTS["left_brow"]),
    "nose": (tuple(range(27, 36)), tuple(range(27, 36))),
    "right_eye": (tuple(range(36, 42)) + (68,), tuple(range(36, 42))),
    "left_eye": (tuple(range(42, 48)) + (69,), tuple(range(42, 48))),
    "outer_lips": (tuple(range(48, 60)), tuple(range(48, 60))),
    "inner_lips": (tuple(range(60, 68)), tuple(range(60, 68))),
}
RIGHT_EYE, LEFT_EYE = tuple(range(36, 42)), tuple(range(42, 48))


def _check(faces: np.ndarray, name: str, ndim: int) -> np.ndarray:
    faces = np.asarray(faces, np.float32)
    if faces.ndim != ndim or faces.shape[-2:] != (70, 3):
        shape = "[N, 70, 3]" if ndim == 3 else "[70, 3]"
        raise ValueError(f"{name} must be {shape} face landmarks, got {faces.shape}")
    return faces


def mean_face(faces: np.ndarray) -> np.ndarray:
    """The mean face over the frames where each point is present.

    Shape: `[N, 70, 3]` -> `[70, 3]`; confidence 1 for points seen in some
    frame, 0 (and x = y = 0) for points never seen.
    """
    faces = _check(faces, "faces", 3)
    seen = faces[..., 2] > 0
    count = seen.sum(0)
    out = np.zeros((70, 3), np.float32)
    ok = count > 0
    out[ok, :2] = (faces[..., :2] * seen[..., None]).sum(0)[ok] / count[ok, None]
    out[ok, 2] = 1.0
    return out


def _centre_size(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and RMS distance to it of `[K, 2]` points."""
    c = points.mean(0)
    return c, float(np.sqrt(((points - c) ** 2).sum(1).mean()))


def align_faces(driver: np.ndarray, driver_mean: np.ndarray, target_mean: np.ndarray
                ) -> np.ndarray:
    """The driver's faces with each part moved and scaled onto the target's mean face.

    Shape: driver `[N, 70, 3]`, driver_mean and target_mean `[70, 3]` -> `[N, 70, 3]`.

    For part p with centre c and size s (RMS distance to c) in the mean faces,
    a driver point x of frame t becomes

        x' = c_tgt + g * d(t) + (s_tgt / s_drv) * (x - c_drv - d(t))

    where d(t) is how far the part has moved from its mean position in frame t
    (the mean displacement of its present points) and g = s_tgt / s_drv of the
    whole 68-point face. For a frame at the driver's mean (d = 0) this is vid2vid's
    x' = (x - c_drv) * s_tgt / s_drv + c_tgt, which maps the driver's mean face
    exactly onto the target's. The part's movement is scaled by the whole
    face's ratio, not the part's own: with the part's ratio, parts whose ratios
    differ would drift apart whenever the head moves. Confidences are kept;
    missing points stay missing, and parts absent from either mean are dropped.
    """
    driver = _check(driver, "driver", 3)
    driver_mean = _check(driver_mean, "driver_mean", 2)
    target_mean = _check(target_mean, "target_mean", 2)
    both = (driver_mean[:68, 2] > 0) & (target_mean[:68, 2] > 0)
    if both.sum() < 3:
        raise ValueError("the mean faces share fewer than 3 landmarks")
    _, s_drv_face = _centre_size(driver_mean[:68][both, :2])
    _, s_tgt_face = _centre_size(target_mean[:68][both, :2])
    g = s_tgt_face / max(s_drv_face, 1e-6)
    out = np.zeros_like(driver)
    present = driver[..., 2] > 0
    for moved, ref in ALIGN_PARTS.values():
        moved, ref = np.array(moved), np.array(ref)
        ref = ref[(driver_mean[ref, 2] > 0) & (target_mean[ref, 2] > 0)]
        if len(ref) == 0:
            continue
        c_drv, s_drv = _centre_size(driver_mean[ref, :2])
        c_tgt, s_tgt = _centre_size(target_mean[ref, :2])
        r = s_tgt / s_drv if s_drv > 1e-6 else g
        ref_ok = present[:, ref]                                           # [N, K]
        shift = (driver[:, ref, :2] - driver_mean[ref, :2]) * ref_ok[..., None]
        d = shift.sum(1) / np.maximum(ref_ok.sum(1), 1)[:, None]            # [N, 2]
        x = driver[:, moved, :2]
        new = c_tgt + g * d[:, None] + r * (x - c_drv - d[:, None])
        keep = present[:, moved] & (driver_mean[moved, 2] > 0)
        out[:, moved, :2] = np.where(keep[..., None], new, 0)
        out[:, moved, 2] = np.where(keep, driver[:, moved, 2], 0)
    return out


def _eye_centres(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right and left eye centres `[N, 2]` and whether all 12 eye points are present."""
    ok = (faces[:, RIGHT_EYE, 2] > 0).all(1) & (faces[:, LEFT_EYE, 2] > 0).all(1)
    return faces[:, RIGHT_EYE, :2].mean(1), faces[:, LEFT_EYE, :2].mean(1), ok


def landmark_consistency(found: np.ndarray, driving: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-frame landmark error of generated faces, and the share where a face was found.

    Shape: found, driving `[N, 70, 3]` -> (`[N]` float, float). The error of a
    frame is the mean distance between the 68 landmarks present in both, over
    the driving face's inter-ocular distance (between the centres of points
    36-41 and 42-47); NaN where either face is missing. The pupils are left out:
    the 68 points are the standard for this normalised mean error.
    """
    found = _check(found, "found", 3)
    driving = _check(driving, "driving", 3)
    if len(found) != len(driving):
        raise ValueError(f"found has {len(found)} frames but driving has {len(driving)}")
    right, left, eyes_ok = _eye_centres(driving)
    iod = np.linalg.norm(right - left, axis=1)
    common = (found[:, :68, 2] > 0) & (driving[:, :68, 2] > 0)
    dist = np.linalg.norm(found[:, :68, :2] - driving[:, :68, :2], axis=2)
    n = common.sum(1)
    valid = eyes_ok & (iod > 1e-6) & (n > 0)
    err = np.full(len(found), np.nan)
    err[valid] = (dist * common).sum(1)[valid] / n[valid] / iod[valid]
    share = float((found[..., 2] > 0).any(1).mean()) if len(found) else 0.0
    return err, share


DETECT_MIN_SIDE = 256  # mediapipe misses small faces; generated crops are often 128 px


class FaceRedetector:
    """RGB uint8 `[H, W, 3]` -> face-70 landmarks `[70, 3]` in its pixels (zeros if none).

    mediapipe FaceMesh in static-image mode: each frame on its own, so a bad
    frame never inherits landmarks tracked from the frames before it (tracking
    would flatter the metric). Images whose shorter side is under 256 pixels
    are enlarged first and the points scaled back.
    """

    def __init__(self):
        from preprocess.face import FaceMeshDetector

        self._detector = FaceMeshDetector(static=True)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 [H, W, 3] image, got {rgb.shape} {rgb.dtype}")
        scale = max(1.0, DETECT_MIN_SIDE / min(rgb.shape[:2]))
        image = rgb
        if scale > 1:
            import cv2

            size = (int(round(rgb.shape[1] * scale)), int(round(rgb.shape[0] * scale)))
            image = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
        face = self._detector(np.ascontiguousarray(image))
        if face is None:
            return np.zeros((70, 3), np.float32)
        sx, sy = image.shape[1] / rgb.shape[1], image.shape[0] / rgb.shape[0]
        face[:, 0] /= sx
        face[:, 1] /= sy
        return face

    def close(self) -> None:
        self._detector.close()
