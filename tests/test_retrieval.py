"""The nearest-training-frame baseline on a hand-made dataset whose answer is known."""

import json

import numpy as np
import pytest

from infer.retrieval import PoseIndex, normalized_body
from vid2vid.dataset_dir import frame_path
from vid2vid.errors import UserError
from vid2vid.pose import BODY, Pose, write_openpose_json

# Postures in torso units about the torso centre (y down): only the arms differ.
BASE = {"Neck": (0, -0.5), "MidHip": (0, 0.5), "Nose": (0, -0.9), "RShoulder": (-0.4, -0.5),
        "LShoulder": (0.4, -0.5), "RHip": (-0.2, 0.5), "LHip": (0.2, 0.5),
        "RKnee": (-0.2, 1.3), "LKnee": (0.2, 1.3), "RAnkle": (-0.2, 2.1), "LAnkle": (0.2, 2.1)}
ARM_POINTS = ("RElbow", "RWrist", "LElbow", "LWrist")
ARMS = {name: dict(zip(ARM_POINTS, points)) for name, points in {
    "down": ((-0.5, 0.0), (-0.5, 0.5), (0.5, 0.0), (0.5, 0.5)),
    "up": ((-0.5, -1.0), (-0.5, -1.5), (0.5, -1.0), (0.5, -1.5)),
    "side": ((-0.9, -0.5), (-1.4, -0.5), (0.9, -0.5), (1.4, -0.5)),
    "right_up": ((-0.5, -1.0), (-0.5, -1.5), (0.5, 0.0), (0.5, 0.5)),
}.items()}


def posture(arms: str, cx: float, cy: float, torso: float, noise: float = 0.0,
            seed: int = 0) -> Pose:
    rng = np.random.default_rng(seed)
    p = Pose()
    for name, (x, y) in {**BASE, **ARMS[arms]}.items():
        jitter = rng.normal(0, noise, 2) if noise else (0, 0)
        p.body[BODY[name]] = (cx + (x + jitter[0]) * torso, cy + (y + jitter[1]) * torso, 0.9)
    return p


def test_normalized_body_removes_position_and_size():
    a = normalized_body(posture("side", 100, 200, 50))
    b = normalized_body(posture("side", 400, 120, 130))
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)
    assert a[0][BODY["Neck"]] == pytest.approx((0, -0.5))
    p = posture("up", 100, 100, 50)
    p.body[BODY["MidHip"]] = 0
    assert normalized_body(p) is None


def make_dataset(root, poses, person):
    (root / "pose").mkdir(parents=True)
    for i, pose in enumerate(poses):
        write_openpose_json(frame_path(root, "pose", i), pose)
    meta = {"format": "vid2vid-dataset", "version": 1, "complete": True, "frames": len(poses),
            "per_frame": {"person": person}}
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def test_nearest_training_frame_is_the_same_posture_not_the_same_place(tmp_path):
    train = [
        posture("down", 100, 200, 60),       # 0
        posture("up", 300, 180, 40),         # 1  <- the answer for an "up" query
        posture("side", 320, 200, 80),       # 2  in the query's place and size, wrong arms
        posture("right_up", 310, 190, 75),   # 3  half right
        posture("up", 300, 180, 40),         # 4  flagged missing: skipped
        posture("up", 300, 180, 40),         # 5  outside the range: skipped
    ]
    person = [True, True, True, True, False, True]
    root = make_dataset(tmp_path / "data", train, person)
    index = PoseIndex.from_dataset(root, start=0, stop=5)
    assert list(index.frames) == [0, 1, 2, 3]
    query = posture("up", 320, 200, 80, noise=0.05, seed=1)
    assert index.nearest(query) == 1
    d = index.distances(query)
    assert d[1] < 0.2 and d[1] < d[3] < d[2]
    # A query missing most keypoints still matches on what it has.
    arms_only = Pose()
    for name in ("Neck", "MidHip", "RElbow", "RWrist", "LElbow", "LWrist"):
        arms_only.body[BODY[name]] = query.body[BODY[name]]
    assert index.nearest(arms_only) == 1
    # No torso in the query: no answer.
    assert index.nearest(Pose()) is None and index.nearest(None) is None


def test_thousands_of_frames_in_one_vectorised_query():
    rng = np.random.default_rng(0)
    names = list(ARMS)
    poses = [posture(names[k % 3], *rng.uniform(50, 500, 2), rng.uniform(30, 90),
                     noise=0.1, seed=k) for k in range(3000)]
    poses[1234] = posture("right_up", 222, 333, 44)           # the only one of its kind
    index = PoseIndex(list(range(3000)), poses)
    assert index.distances(posture("right_up", 10, 10, 100)).shape == (3000,)
    assert index.nearest(posture("right_up", 10, 10, 100)) == 1234


def test_bad_ranges_and_empty_indexes_are_user_errors(tmp_path):
    root = make_dataset(tmp_path / "d", [posture("up", 50, 50, 20), Pose()], [True, False])
    with pytest.raises(UserError, match="empty"):
        PoseIndex.from_dataset(root, start=2)
    with pytest.raises(UserError, match="neck and mid-hip"):
        PoseIndex.from_dataset(root, start=1)
    with pytest.raises(UserError, match="not a dataset"):
        PoseIndex.from_dataset(tmp_path / "nothing")
