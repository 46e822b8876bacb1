"""The nearest-training-frame baseline: answer a pose with the training frame whose pose is closest.

A generator that only memorised its training frames would do this. Putting it
in the same table as the model shows what the model adds beyond look-up.

Pose distance (body keypoints only, BODY_25):

1. normalise each pose: subtract the centre c = (Neck + MidHip) / 2 and divide
   by the torso length |Neck - MidHip|, so position in the frame and size do
   not count, only the posture;
2. distance = mean over the keypoints present in both poses of the L2 distance
   between the normalised points (units: torso lengths).

Poses without a neck or mid-hip cannot be normalised: such training frames are
left out of the index and such a query has no answer (None). A training frame
sharing fewer than `min_shared` of the query's keypoints is not a candidate (a
pose with three points visible would otherwise match anything).

Everything is one `[M, 25, 2]` array, so a query against thousands of frames
is a few vectorised numpy operations.

Faces (`FaceIndex`, for talking-head datasets) work the same way on the 70
face landmarks (OpenPose face layout): subtract the centroid of the present
landmarks and divide by the inter-ocular distance (between the centres of the
two eyes' six contour points), so only the expression and the head's turn
count; a face without both eyes cannot be normalised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vid2vid.dataset_dir import frame_path, load_dataset
from vid2vid.errors import UserError
from vid2vid.pose import Pose, normalized_body, read_openpose_json, shared_point_distance

__all__ = ["PoseIndex", "FaceIndex", "normalized_body", "normalized_face"]

_RIGHT_EYE, _LEFT_EYE = slice(36, 42), slice(42, 48)    # the 68/70-point face layout


def normalized_face(face: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """`[70, 3]` landmarks -> (points `[70, 2]` about their centroid in inter-ocular
    distances, present `[70]` bool), or None without both eyes."""
    if face is None:
        return None
    face = np.asarray(face, np.float32)
    present = face[:, 2] > 0
    eyes = []
    for eye in (_RIGHT_EYE, _LEFT_EYE):
        seen = present[eye]
        if not seen.any():
            return None
        eyes.append(face[eye][seen, :2].mean(0))
    iod = float(np.hypot(*(eyes[0] - eyes[1])))
    if iod <= 0:
        return None
    centre = face[present, :2].mean(0)
    points = np.where(present[:, None], (face[:, :2] - centre) / iod, 0.0)
    return points.astype(np.float32), present


class PoseIndex:
    """Training poses, ready for nearest-pose queries.

    Args:
        frames: the dataset frame index of each pose.
        poses: the poses (None or torso-less poses are skipped).
        min_shared: the share of the query's present keypoints a training
            pose must also have to be a candidate.
    """

    def __init__(self, frames: Sequence[int], poses: Sequence[Pose | None],
                 min_shared: float = 0.5):
        if len(frames) != len(poses):
            raise ValueError(f"{len(frames)} frame numbers for {len(poses)} poses")
        self.frames, self.points, self.present = _stack(
            frames, [normalized_body(p) for p in poses], 25)
        self.min_shared = min_shared

    def __len__(self) -> int:
        return len(self.frames)

    @staticmethod
    def from_dataset(root: str | Path, start: int = 0, stop: int | None = None,
                     min_shared: float = 0.5) -> "PoseIndex":
        """The poses of dataset frames `start .. stop-1` (e.g. the training split).

        Frames that meta.json flags as missing (no person) are skipped, and so
        are frames whose pose has no torso. UserError when none is left.
        """
        root = Path(root)
        frames, poses = _stored_poses(root, start, stop)
        index = PoseIndex(frames, poses, min_shared)
        if len(index) == 0:
            raise UserError(f"{root} has no frame with a neck and mid-hip in {start}..{stop}; "
                            "the retrieval baseline needs full upper bodies")
        return index

    def distances(self, pose: Pose | None) -> np.ndarray | None:
        """Distance from `pose` to every indexed pose (`[M]`, inf for non-candidates), or None."""
        return _distances(self.points, self.present, normalized_body(pose), self.min_shared)

    def nearest(self, pose: Pose | None) -> int | None:
        """The dataset frame index of the closest training pose, or None when there is none."""
        return _nearest(self.frames, self.distances(pose))


class FaceIndex:
    """Training faces (`[70, 3]` landmarks each), ready for nearest-face queries.

    As `PoseIndex`, on `normalized_face`: distances are mean landmark distances
    in inter-ocular distances; faces without both eyes are skipped.
    """

    def __init__(self, frames: Sequence[int], faces: Sequence[np.ndarray | None],
                 min_shared: float = 0.5):
        if len(frames) != len(faces):
            raise ValueError(f"{len(frames)} frame numbers for {len(faces)} faces")
        self.frames, self.points, self.present = _stack(
            frames, [normalized_face(f) for f in faces], 70)
        self.min_shared = min_shared

    def __len__(self) -> int:
        return len(self.frames)

    @staticmethod
    def from_dataset(root: str | Path, start: int = 0, stop: int | None = None,
                     min_shared: float = 0.5) -> "FaceIndex":
        """The faces of dataset frames `start .. stop-1` (pose/NNNNNN.json's face part);
        frames flagged as missing and faces without both eyes are skipped."""
        root = Path(root)
        frames, poses = _stored_poses(root, start, stop)
        index = FaceIndex(frames, [p.face if p is not None else None for p in poses],
                          min_shared)
        if len(index) == 0:
            raise UserError(f"{root} has no frame with both eyes in {start}..{stop}; the "
                            "retrieval baseline needs faces with their eyes found")
        return index

    def distances(self, face: np.ndarray | None) -> np.ndarray | None:
        """Distance from `face` (`[70, 3]`) to every indexed face (`[M]`, inf for
        non-candidates), or None when it cannot be normalised."""
        return _distances(self.points, self.present, normalized_face(face), self.min_shared)

    def nearest(self, face: np.ndarray | None) -> int | None:
        """The dataset frame index of the closest training face, or None."""
        return _nearest(self.frames, self.distances(face))


def _stack(frames: Sequence[int], normalized: list[tuple[np.ndarray, np.ndarray] | None],
           k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames `[M]`, points `[M, k, 2]`, present `[M, k]`) of the normalisable entries."""
    kept = [(int(i), n) for i, n in zip(frames, normalized) if n is not None]
    if not kept:
        return np.zeros(0, np.int64), np.zeros((0, k, 2), np.float32), np.zeros((0, k), bool)
    return (np.asarray([i for i, _ in kept], np.int64), np.stack([n[0] for _, n in kept]),
            np.stack([n[1] for _, n in kept]))


def _distances(points: np.ndarray, present: np.ndarray,
               q: tuple[np.ndarray, np.ndarray] | None, min_shared: float
               ) -> np.ndarray | None:
    """Mean distance over the points present in both, inf where too few are shared."""
    if q is None:
        return None
    q_points, q_present = q
    mean, shared = shared_point_distance(points, present, q_points, q_present)     # [M]
    enough = shared >= max(1, np.ceil(min_shared * q_present.sum()))
    return np.where(enough, mean, np.inf)


def _nearest(frames: np.ndarray, d: np.ndarray | None) -> int | None:
    if d is None or len(d) == 0 or not np.isfinite(d).any():
        return None
    return int(frames[int(np.argmin(d))])


def _stored_poses(root: Path, start: int, stop: int | None
                  ) -> tuple[list[int], list[Pose | None]]:
    """(frame numbers, poses) of the frames `start .. stop-1` with a person (meta.json)."""
    meta = load_dataset(root)
    n = int(meta["frames"])
    stop = n if stop is None else min(stop, n)
    if not 0 <= start < stop:
        raise UserError(f"frame range {start}..{stop} is empty for {root} ({n} frames); "
                        "pick a range inside the dataset")
    person = meta.get("per_frame", {}).get("person") or [True] * n
    frames, poses = [], []
    for i in range(start, stop):
        if not person[i]:
            continue
        path = frame_path(root, "pose", i)
        if not path.exists():
            raise UserError(f"{path} is missing; run vid2vid preprocess again on {root}")
        frames.append(i)
        poses.append(read_openpose_json(path))
    return frames, poses
