"""Poses <-> the motion model's features, and the pixel frame a person lives in.

A pose is BODY_25's 25 joints. The model sees each frame as `[25, 2]` numbers
in torso lengths: row 1 (the neck) holds where the neck is, relative to the
dataset's mean neck position; every other row holds that joint relative to
the neck. Scale-free, so several dancers can train one model, and a dreamed
pose lands in any trained person's frame by `PoseFrame.to_keypoints`.
Flattened to `pose_dim` = 50 values a frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from infer.details import CONFIDENCE
from vid2vid.pose import BODY

NECK, MIDHIP = BODY["Neck"], BODY["MidHip"]


@dataclass(frozen=True)
class PoseFrame:
    """Where one person's poses sit in their video: pixels per torso and the mean neck.

    size: (w, h) of the frames; joints: which BODY_25 joints the data shows
    (in at least half the frames), the others are written missing.
    """

    size: tuple[int, int]
    fps: float
    neck: tuple[float, float]
    torso: float
    joints: tuple[bool, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "PoseFrame":
        return PoseFrame(tuple(d["size"]), float(d["fps"]), tuple(d["neck"]), float(d["torso"]),
                         tuple(bool(j) for j in d["joints"]))

    def to_features(self, body: np.ndarray) -> np.ndarray:
        """`[T, 25, 2]` pixels -> `[T, 50]` features (see the module docstring)."""
        neck = body[:, NECK:NECK + 1]
        out = (body - neck) / self.torso
        out[:, NECK] = (body[:, NECK] - np.asarray(self.neck)) / self.torso
        return out.reshape(len(body), -1).astype(np.float32)

    def to_keypoints(self, features: np.ndarray) -> np.ndarray:
        """`[T, 50]` features -> `[T, 25, 3]` (x, y, confidence) in this frame's pixels."""
        f = np.asarray(features, np.float64).reshape(len(features), 25, 2) * self.torso
        neck = f[:, NECK] + np.asarray(self.neck)
        xy = f + neck[:, None]
        xy[:, NECK] = neck
        conf = np.where(np.asarray(self.joints), CONFIDENCE, 0.0)
        out = np.concatenate([xy, np.broadcast_to(conf[None, :, None], (len(f), 25, 1))], 2)
        out[:, ~np.asarray(self.joints), :2] = 0.0     # missing points are 0, as OpenPose writes
        return out.astype(np.float32)


def fill_missing_joints(body: np.ndarray, found: np.ndarray) -> np.ndarray:
    """`[T, 25, 3]` -> `[T, 25, 2]`: joints missing in a frame interpolated over time.

    Only frames with `found` count; a joint never seen stays at the neck.
    """
    xy = body[..., :2].astype(np.float64).copy()
    t = np.arange(len(body))
    for j in range(25):
        seen = found & (body[:, j, 2] > 0)
        if j == NECK or not seen.any():
            if not seen.any():
                xy[:, j] = xy[:, NECK]
            continue
        for c in range(2):
            xy[:, j, c] = np.interp(t, t[seen], xy[seen, j, c])
    return xy


def measure_frame(body: np.ndarray, found: np.ndarray, size: tuple[int, int],
                  fps: float) -> PoseFrame:
    """A person's frame from their `[T, 25, 3]` keypoints (frames with `found` only)."""
    b = body[found]
    both = (b[:, NECK, 2] > 0) & (b[:, MIDHIP, 2] > 0)
    torso = float(np.median(np.linalg.norm(b[both, NECK, :2] - b[both, MIDHIP, :2], axis=1))) \
        if both.any() else 0.3 * size[1]      # no torso seen: a guess, a third of the height
    neck = b[b[:, NECK, 2] > 0, NECK, :2].mean(0) if (b[:, NECK, 2] > 0).any() \
        else np.asarray(size, np.float64) / 2
    joints = tuple(bool(v) for v in (b[:, :, 2] > 0).mean(0) >= 0.5)
    return PoseFrame((int(size[0]), int(size[1])), float(fps),
                     (float(neck[0]), float(neck[1])), max(torso, 1.0), joints)
