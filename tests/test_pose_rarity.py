import numpy as np
import pytest

from tests.helpers_video import make_synthetic_dataset, synthetic_pose
from vid2vid.config import TrainConfig
from vid2vid.data import ClipDataset, index_dataset, no_augment
from vid2vid.dataset_dir import frame_path
from vid2vid.errors import UserError
from vid2vid.pose import BODY, Pose, read_openpose_json, write_openpose_json
from vid2vid.pose_rarity import clip_weights, pose_rarity

RARE = range(40, 46)     # frames whose arms are raised over the head


def arms_up(pose: Pose) -> Pose:
    """The same body with both wrists and elbows above the head."""
    up = pose.map(lambda a: a.copy())
    for side in "RL":
        for joint, lift in (("Elbow", 25.0), ("Wrist", 45.0)):
            up.body[BODY[side + joint], 1] = pose.body[BODY["Nose"], 1] - lift
    return up


def sequence(n: int = 100) -> list[Pose | None]:
    poses = [synthetic_pose(0.3 * i, 200, 200) for i in range(n)]
    return [arms_up(p) if i in RARE else p for i, p in enumerate(poses)]


def test_a_posture_seen_only_in_one_stretch_is_rare():
    r = pose_rarity(sequence(), neighbours=3, apart=12)
    rare, common = r[list(RARE)], np.delete(r, list(RARE))
    # Its own stretch lies within `apart` frames, so its nearest postures are the common ones.
    assert rare.min() > 5 * np.median(common)


def test_time_neighbours_do_not_count():
    poses = sequence()
    close = pose_rarity(poses, neighbours=3, apart=1)      # the stretch matches itself
    far = pose_rarity(poses, neighbours=3, apart=12)
    assert close[list(RARE)].max() < far[list(RARE)].min()


def test_no_torso_has_no_rarity():
    poses = sequence(40)
    poses[3] = None
    headless = synthetic_pose(0.0, 200, 200)
    headless.body[BODY["MidHip"]] = 0
    poses[5] = headless
    r = pose_rarity(poses, neighbours=3)
    assert np.isnan(r[[3, 5]]).all() and np.isfinite(np.delete(r, [3, 5])).all()
    assert np.isnan(pose_rarity(poses[:3], neighbours=3)).all()     # too few to compare


def test_clip_weights_are_capped_and_flat_at_zero():
    r = np.array([1.0] * 20 + [100.0] * 4 + [np.nan] * 2)
    starts = np.arange(len(r) - 1)
    w = clip_weights(r, starts, 2, balance=1.0)
    assert w.max() == pytest.approx(4.0) and w[0] == pytest.approx(1.0)
    assert w[len(r) - 2] == pytest.approx(1.0)           # NaN frames count as the median
    assert np.allclose(clip_weights(r, starts, 2, balance=0.0), 1.0)


@pytest.fixture(scope="module")
def raised(tmp_path_factory):
    root = make_synthetic_dataset(tmp_path_factory.mktemp("data"), n=60, w=64, h=64)
    for k in RARE:
        path = frame_path(root, "pose", k)
        write_openpose_json(path, arms_up(read_openpose_json(path)))
    return root


def test_balanced_clips_show_the_rare_posture_more_often(raised):
    video = index_dataset(raised, holdout=0.0)

    def share(balance: float) -> float:
        ds = ClipDataset([video], length=2, size=(32, 32), augment=no_augment(), seed=0,
                         with_flow=False, balance=balance)
        firsts = np.array([ds[i].source[1].item() for i in range(4 * len(ds))])
        return np.isin(firsts, list(RARE)).mean()

    assert share(2.0) > 2 * share(0.0)


def test_balance_without_torsos_is_a_clear_error(tmp_path):
    root = make_synthetic_dataset(tmp_path, n=20, w=64, h=64)
    for k in range(20):
        pose = read_openpose_json(frame_path(root, "pose", k))
        pose.body[BODY["Neck"]] = 0          # a body, but no torso to measure postures by
        write_openpose_json(frame_path(root, "pose", k), pose)
    video = index_dataset(root, holdout=0.0)
    with pytest.raises(UserError, match="neck and hips"):
        ClipDataset([video], length=2, size=(32, 32), with_flow=False, balance=1.0)
    ClipDataset([video], length=2, size=(32, 32), with_flow=False)       # fine unbalanced
    with pytest.raises(UserError, match="balance must be >= 0"):
        TrainConfig(balance=-1.0)


def test_balance_on_a_task_without_poses_is_a_clear_error(tmp_path):
    from tests.test_evaluate_tasks import make_labels_dataset
    video = index_dataset(make_labels_dataset(tmp_path / "labels"), holdout=0.2)
    with pytest.raises(UserError, match="labels task has none"):
        ClipDataset([video], length=2, size=(32, 64), with_flow=False, balance=1.0)
