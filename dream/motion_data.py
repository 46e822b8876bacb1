"""Dataset directories -> the motion model's training sequences (body poses only).

Reads meta.json and pose/ of each dataset (the files `preprocess` wrote; the
stage contract of DESIGN.md section 4), keeps its first `1 - holdout` share
(the rest is real held-out motion for the benchmark, as `vid2vid train`
keeps it for `evaluate`), and turns frames into features (`dream.pose_frame`).
Frames without a person split a video into runs; clips never cross one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infer.details import read_dataset_keypoints
from vid2vid.dataset_dir import META, frame_path, load_dataset
from vid2vid.errors import UserError
from dream.pose_frame import PoseFrame, fill_missing_joints, measure_frame

MIN_RUN = 8           # frames; shorter runs with a person are too short to learn motion from


@dataclass
class MotionSequence:
    """One dataset's training motion.

    features: `[N, 50]` float32 per frame (dream.pose_frame); valid: `[N]` bool,
    frames with a person; frame: the person's pixel frame; root: the dataset.
    """

    root: Path
    frame: PoseFrame
    features: np.ndarray
    valid: np.ndarray

    def clip_starts(self, span: int) -> np.ndarray:
        """First frames of every clip of `span + 1` frames with a person in all."""
        bad = np.concatenate([[0], np.cumsum(~self.valid)])
        starts = np.arange(max(len(self.valid) - span, 0))
        return starts[(bad[starts + span + 1] - bad[starts]) == 0]

    def split(self, share: float) -> tuple["MotionSequence", "MotionSequence"]:
        """(the first `1 - share` of the frames, the rest): a validation stretch cut from the
        end. Both keep this sequence's pixel frame, so their features compare."""
        cut = len(self.valid) - int(np.floor(len(self.valid) * share))
        return (MotionSequence(self.root, self.frame, self.features[:cut], self.valid[:cut]),
                MotionSequence(self.root, self.frame, self.features[cut:], self.valid[cut:]))


def read_body_poses(root: Path) -> tuple[dict, np.ndarray]:
    """(meta.json, `[N, 25, 3]` BODY_25 keypoints of every frame) of a pose dataset.

    One-line UserErrors for a missing folder, another task's dataset and a
    dataset without poses.
    """
    meta, keypoints = read_keypoints(root)
    return meta, keypoints[:, :25].copy()


def read_keypoints(root: Path) -> tuple[dict, np.ndarray]:
    """(meta.json, `[N, 137, 3]` keypoints of every frame: body, face, hands), with the
    errors of `read_body_poses`."""
    root = Path(root)
    if not root.exists():
        raise UserError(f"dataset {root} does not exist; pass a dataset directory written by "
                        "vid2vid preprocess VIDEO (data/<name>)")
    if root.name == "pose" and (root.parent / META).exists():
        root = root.parent
    meta = load_dataset(root)
    task = meta.get("task", "pose")
    if task != "pose":
        raise UserError(f"{root} is a {task!r} dataset (meta.json task), but dream learns body "
                        "motion; pass a dataset preprocessed with --task pose (the default)")
    n = int(meta["frames"])
    if not (root / "pose").is_dir() or not frame_path(root, "pose", 0).exists():
        raise UserError(f"{root} has no pose/ keypoints; run vid2vid preprocess on its video "
                        "again (with --task pose), or import OpenPose JSON with --keypoints")
    return meta, read_dataset_keypoints(root, n)


def load_motion(root: Path, holdout: float) -> MotionSequence:
    """One dataset's training motion (its first `1 - holdout` share of frames)."""
    meta, body = read_body_poses(root)
    root = Path(root).parent if Path(root).name == "pose" else Path(root)
    found = (body[..., 2] > 0).sum(1) >= 5          # a person: at least 5 joints seen
    keep = int(np.floor(len(body) * (1.0 - holdout)))
    body, found = body[:keep], found[:keep]
    if found.sum() < MIN_RUN:
        raise UserError(f"{root}: only {int(found.sum())} of its {keep} training frames show a "
                        f"person; dream needs at least {MIN_RUN} (pass a dataset of a dancer)")
    frame = measure_frame(body, found, tuple(meta["size"]), float(meta["fps"]))
    features = frame.to_features(fill_missing_joints(body, found))
    return MotionSequence(root, frame, features, found)


def load_motions(roots: list[str | Path], holdout: float) -> list[MotionSequence]:
    if not roots:
        raise UserError("dream --train needs at least one dataset directory, e.g. "
                        "vid2vid dream --train data/dancer")
    return [load_motion(Path(r), holdout) for r in roots]
