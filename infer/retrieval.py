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
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vid2vid.dataset_dir import frame_path, load_dataset
from vid2vid.errors import UserError
from vid2vid.pose import BODY, Pose, read_openpose_json

__all__ = ["PoseIndex", "normalized_body"]

_NECK, _HIP = BODY["Neck"], BODY["MidHip"]


def normalized_body(pose: Pose | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(points `[25, 2]` in torso units about the torso centre, present `[25]` bool), or None."""
    if pose is None:
        return None
    b = pose.body
    if b[_NECK, 2] <= 0 or b[_HIP, 2] <= 0:
        return None
    torso = float(np.hypot(*(b[_NECK, :2] - b[_HIP, :2])))
    if torso <= 0:
        return None
    centre = (b[_NECK, :2] + b[_HIP, :2]) / 2
    present = b[:, 2] > 0
    points = np.where(present[:, None], (b[:, :2] - centre) / torso, 0.0)
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
        kept, points, present = [], [], []
        for i, pose in zip(frames, poses):
            n = normalized_body(pose)
            if n is not None:
                kept.append(int(i))
                points.append(n[0])
                present.append(n[1])
        self.frames = np.asarray(kept, np.int64)
        self.points = np.stack(points) if points else np.zeros((0, 25, 2), np.float32)
        self.present = np.stack(present) if present else np.zeros((0, 25), bool)
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
        index = PoseIndex(frames, poses, min_shared)
        if len(index) == 0:
            raise UserError(f"{root} has no frame with a neck and mid-hip in {start}..{stop}; "
                            "the retrieval baseline needs full upper bodies")
        return index

    def distances(self, pose: Pose | None) -> np.ndarray | None:
        """Distance from `pose` to every indexed pose (`[M]`, inf for non-candidates), or None."""
        q = normalized_body(pose)
        if q is None:
            return None
        q_points, q_present = q
        both = self.present & q_present                                # [M, 25]
        shared = both.sum(1)
        d = np.linalg.norm(self.points - q_points, axis=2)             # [M, 25]
        mean = (d * both).sum(1) / np.maximum(shared, 1)
        enough = shared >= max(1, np.ceil(self.min_shared * q_present.sum()))
        return np.where(enough, mean, np.inf)

    def nearest(self, pose: Pose | None) -> int | None:
        """The dataset frame index of the closest training pose, or None when there is none."""
        d = self.distances(pose)
        if d is None or len(d) == 0 or not np.isfinite(d).any():
            return None
        return int(self.frames[int(np.argmin(d))])
