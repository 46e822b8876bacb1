"""Hands and face lent by the person's own frames (infer.details): to dreamed bodies
(dream.details) and to a transfer SOURCE that never shows them (infer.pose_driving)."""

import numpy as np
import pytest
import yaml

from dream.command import dream
from dream.config import MotionConfig
from dream.details import lender_for
from dream.training import train_motion
from infer.details import DetailLender
from infer.driving import TransferOptions
from infer.pose_driving import DrivingPoses, detail_lender, read_source
from tests.helpers_video import make_synthetic_dataset, write_pose_folder
from vid2vid.data import N_KEYPOINTS, array_to_pose, pose_to_array
from vid2vid.dataset_dir import frame_path, load_dataset
from vid2vid.pose import BODY, read_openpose_json, write_openpose_json

B = BODY
ALL = (True,) * 25
RIGHT_HAND = slice(116, 137)
FACE = slice(25, 95)


def person(arm_angle: float = 0.0) -> np.ndarray:
    """`[137, 3]`: a body with the right forearm at `arm_angle` (radians, 0: pointing +x) from
    the elbow, no face or hands."""
    kp = np.zeros((N_KEYPOINTS, 3), np.float32)
    joints = {"Nose": (100, 40), "Neck": (100, 60), "RShoulder": (80, 60), "RElbow": (60, 80),
              "LShoulder": (120, 60), "LElbow": (140, 80), "LWrist": (150, 100),
              "MidHip": (100, 120), "REye": (96, 36), "LEye": (104, 36), "REar": (92, 38),
              "LEar": (108, 38)}
    for name, xy in joints.items():
        kp[B[name]] = (*xy, 0.9)
    elbow = kp[B["RElbow"], :2]
    kp[B["RWrist"]] = (*(elbow + 20 * np.array([np.cos(arm_angle), np.sin(arm_angle)])), 0.9)
    for name in ("RKnee", "RAnkle", "LHip", "RHip", "LKnee", "LAnkle"):
        kp[B[name]] = (100, 150, 0.9)
    return kp


def with_hand(kp: np.ndarray, shape: np.ndarray, points: int = 21) -> np.ndarray:
    """`kp` with a right hand whose points sit at `shape` `[21, 2]` (offsets from the wrist,
    in the frame where the forearm points +x), turned with the forearm; only the first
    `points` points present (a coarse hand)."""
    out = kp.copy()
    wrist, elbow = out[B["RWrist"], :2], out[B["RElbow"], :2]
    a = np.arctan2(*(wrist - elbow)[::-1])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    hand = out[RIGHT_HAND]
    hand[:points, :2] = wrist + shape[:points] @ rot.T
    hand[:points, 2] = 0.8
    out[RIGHT_HAND] = hand
    return out


def hand_shape(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-10, 10, (21, 2)).astype(np.float32)


def test_a_hand_turns_with_the_forearm_and_hangs_from_the_wrist():
    shape = hand_shape(0)
    lender = DetailLender(np.stack([with_hand(person(0.0), shape)] * 3), torso=60.0, joints=ALL)
    assert lender.parts == ("right hand",)          # no face in the data: none lent
    body = np.stack([person(np.pi / 2)[:25]] * 5)   # the dream's forearm points down
    out = lender.lend(body, fps=25.0)
    assert out.shape == (5, N_KEYPOINTS, 3)
    np.testing.assert_array_equal(out[:, :25], body)
    want = with_hand(person(np.pi / 2), shape)[RIGHT_HAND, :2]
    np.testing.assert_allclose(out[:, RIGHT_HAND, :2], np.broadcast_to(want, (5, 21, 2)),
                               atol=1e-3)
    assert (out[:, RIGHT_HAND, 2] > 0).all() and (out[:, FACE, 2] == 0).all()


def test_the_lender_is_the_frame_whose_arm_is_posed_closest():
    near, far = hand_shape(1), hand_shape(2)
    frames = np.stack([with_hand(person(0.0), near), with_hand(person(np.pi), far)])
    lender = DetailLender(frames, torso=60.0, joints=ALL)
    out = lender.lend(np.stack([person(np.pi - 0.1)[:25]]), fps=25.0)   # almost like the 2nd
    want = with_hand(person(np.pi - 0.1), far)[RIGHT_HAND, :2]
    np.testing.assert_allclose(out[0, RIGHT_HAND, :2], want, atol=1e-3)


def test_only_the_form_the_data_shows_most_is_lent():
    full = [with_hand(person(0.1 * k), hand_shape(k)) for k in range(3)]
    coarse = [with_hand(person(0.1 * k), hand_shape(k), points=5) for k in range(7)]
    lender = DetailLender(np.stack(full + coarse), torso=60.0, joints=ALL)
    out = lender.lend(np.stack([person(0.0)[:25]]), fps=25.0)
    assert (out[0, RIGHT_HAND, 2] > 0).tolist() == [True] * 5 + [False] * 16


def test_a_change_of_lender_is_smoothed_not_a_jump():
    a, b = hand_shape(3), hand_shape(4)
    lender = DetailLender(np.stack([with_hand(person(0.0), a), with_hand(person(1.0), b)]),
                          torso=60.0, joints=ALL)
    angles = np.r_[np.zeros(20), np.ones(20)]       # the lender switches at frame 20
    out = lender.lend(np.stack([person(t)[:25] for t in angles]), fps=25.0)
    local = out[:, RIGHT_HAND, :2] - out[:, B["RWrist"], None, :2]
    steps = np.abs(np.diff(local, axis=0)).max((1, 2))
    jump = np.abs(with_hand(person(0.0), a) - with_hand(person(0.0), b))[RIGHT_HAND, :2].max()
    assert steps.max() < 0.5 * jump


def test_the_face_turns_with_the_head_and_joints_the_dream_lacks_are_skipped():
    kp = person(0.0)
    rng = np.random.default_rng(5)
    kp[FACE, :2] = kp[B["Nose"], :2] + rng.uniform(-8, 8, (70, 2))
    kp[FACE, 2] = 0.7
    joints = tuple(j not in (B["REar"], B["LEar"]) for j in range(25))   # no ears dreamed
    lender = DetailLender(kp[None], torso=60.0, joints=joints)
    assert lender.parts == ("face",)
    # The dream's whole body turned by 30 degrees about the nose: the face turns with it.
    a = np.deg2rad(30)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    nose = kp[B["Nose"], :2]
    body = kp[:25].copy()
    body[:, :2] = (body[:, :2] - nose) @ rot.T + nose
    body[[B["REar"], B["LEar"]]] = 0                # as PoseFrame.to_keypoints writes them
    out = lender.lend(body[None], fps=25.0)
    np.testing.assert_allclose(out[0, FACE, :2], (kp[FACE, :2] - nose) @ rot.T + nose, atol=1e-3)


@pytest.fixture(scope="module")
def figure_with_hands(tmp_path_factory):
    """A synthetic dataset whose every frame also shows a right hand, and a motion model."""
    root = tmp_path_factory.mktemp("details")
    figure = make_synthetic_dataset(root, n=40, w=64, h=64)
    for k in range(40):
        path = frame_path(figure, "pose", k)
        kp = pose_to_array(read_openpose_json(path))
        wrist = kp[B["RWrist"], :2]
        kp[RIGHT_HAND, :2] = wrist + np.linspace(0, 4, 21)[:, None]
        kp[RIGHT_HAND, 2] = 0.8
        write_openpose_json(path, array_to_pose(kp))
    cfg = MotionConfig(content_dim=8, noise_dim=8, code_dim=16, frequencies=8, hidden=32,
                       layers=2, batch=16, restarts=1, select_every=0)
    train_motion([figure], cfg, root / "motion" / "motion.pt", steps=2, progress=False)
    return root, figure


def test_dream_lends_hands_and_body_only_does_not(figure_with_hands, tmp_path):
    root, figure = figure_with_hands
    lent = dream(root / "motion", seconds=1, fps=10, out=tmp_path / "a.mp4", render=False,
                 progress=False)
    assert lent.details == ("right hand",) and "right hand from the training frames" in lent.line()
    kp = pose_to_array(read_openpose_json(lent.poses / "000003.json"))
    assert (kp[RIGHT_HAND, 2] > 0).all() and (kp[FACE, 2] == 0).all()
    assert yaml.safe_load((lent.poses / "clip.yaml").read_text())["details"] == ["right hand"]
    plain = dream(root / "motion", seconds=1, fps=10, out=tmp_path / "b.mp4", render=False,
                  progress=False, details=False)
    assert plain.details == () and "body only" in plain.line()
    kp_b = pose_to_array(read_openpose_json(plain.poses / "000003.json"))
    assert (kp_b[25:, 2] == 0).all()
    np.testing.assert_allclose(kp_b[:25], kp[:25])        # the same body either way
    # A dataset gone (a run copied without its data): the body alone, no error.
    assert lender_for(tmp_path / "gone", 0.2, 10.0, ALL) is None


def test_a_spinning_hand_keeps_its_size():
    shape = hand_shape(6)
    lender = DetailLender(np.stack([with_hand(person(0.0), shape)]), torso=60.0, joints=ALL)
    angles = np.linspace(0, 4 * np.pi, 50)          # two turns in 2 s at 25 fps
    out = lender.lend(np.stack([person(a)[:25] for a in angles]), fps=25.0)
    local = out[:, RIGHT_HAND, :2] - out[:, B["RWrist"], None, :2]
    np.testing.assert_allclose(np.linalg.norm(local, axis=2),
                               np.broadcast_to(np.linalg.norm(shape, axis=1), (50, 21)),
                               rtol=1e-4)


def test_a_face_turns_with_the_head_points_a_frame_shows():
    kp = person(0.0)
    kp[FACE, :2] = kp[B["Nose"], :2] + np.random.default_rng(8).uniform(-8, 8, (70, 2))
    kp[FACE, 2] = 0.7
    lender = DetailLender(kp[None], torso=60.0, joints=ALL)
    a = np.deg2rad(-20)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    nose = kp[B["Nose"], :2]
    body = kp[:25].copy()
    body[:, :2] = (body[:, :2] - nose) @ rot.T + nose
    body[B["LEar"]] = 0                             # one ear not detected (a profile)
    out = lender.lend(body[None], fps=25.0)
    assert (out[0, FACE, 2] > 0).all()
    np.testing.assert_allclose(out[0, FACE, :2], (kp[FACE, :2] - nose) @ rot.T + nose, atol=1e-3)


def test_a_frame_without_the_wrist_or_elbow_gets_no_lent_hand():
    lender = DetailLender(np.stack([with_hand(person(0.0), hand_shape(7))]), torso=60.0,
                          joints=ALL)
    body = np.stack([person(0.0)[:25]] * 3)
    body[1, B["RWrist"]] = 0
    body[2, B["RElbow"]] = 0
    out = lender.lend(body, fps=25.0)
    assert (out[0, RIGHT_HAND, 2] > 0).all()
    assert (out[1:, RIGHT_HAND] == 0).all()


def _driving(figure, source, **options):
    options = TransferOptions(fps=10, source_size=(128, 96), smooth=False, **options)
    clip = read_source(source, options, progress=False)
    lender, lend = detail_lender(clip, figure, load_dataset(figure), options)
    driving = DrivingPoses(clip, figure, (64, 64), (64, 64), options.normalize, options.smooth,
                           options.smoothing, lender=lender, lend=lend)
    return lend, [driving.model_keypoints(kp) for kp in driving.poses]


def test_transfer_lends_the_hand_a_body_only_source_never_shows(figure_with_hands, tmp_path,
                                                                capsys):
    _, figure = figure_with_hands
    source = write_pose_folder(tmp_path / "openpose", 8, 128, 96)   # BODY_25 only
    lend, kps = _driving(figure, source)
    assert lend == ("right hand",) and "lent by" in capsys.readouterr().out
    for kp in kps:     # the target's hand, hung from the driving wrist (model pixels)
        assert (kp[RIGHT_HAND, 2] > 0).all() and (kp[FACE, 2] == 0).all()
        reach = np.linalg.norm(kp[RIGHT_HAND, :2] - kp[B["RWrist"], :2], axis=1)
        assert reach.max() < 6.0
    # --no-lend: the body alone, as before.
    lend, kps = _driving(figure, source, lend=False)
    assert lend == () and all((kp[25:, 2] == 0).all() for kp in kps)
    # --no-normalize: the lender works in the target's pixels, so it says so and lends nothing.
    lend, kps = _driving(figure, source, normalize=False)
    assert lend == () and "needs normalisation" in capsys.readouterr().out
    assert all((kp[25:, 2] == 0).all() for kp in kps)


def test_transfer_keeps_a_part_the_source_shows(figure_with_hands, tmp_path):
    _, figure = figure_with_hands
    source = write_pose_folder(tmp_path / "openpose", 8, 128, 96)
    for path in sorted(source.glob("*.json")):     # the source's own right hand
        kp = pose_to_array(read_openpose_json(path))
        kp[RIGHT_HAND, :2] = kp[B["RWrist"], :2] + 1.0
        kp[RIGHT_HAND, 2] = 0.8
        write_openpose_json(path, array_to_pose(kp))
    lend, kps = _driving(figure, source)
    assert lend == ()              # the target shows no face or left hand to lend either
    for kp in kps:     # all 21 points at one place, as given (a lent hand spreads 4 px)
        assert (kp[RIGHT_HAND, 2] > 0).all()
        assert np.ptp(kp[RIGHT_HAND, :2], axis=0).max() < 1e-3
