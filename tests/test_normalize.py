"""Everybody Dance Now pose normalisation on hand-built poses with known answers."""

import json
import math

import numpy as np
import pytest

from infer.normalize import PoseNormalizer, dataset_pose_stats, stats_from_poses
from vid2vid.errors import UserError
from vid2vid.pose import BODY, Pose
from vid2vid.pose_stats import PoseStats, ankle_and_height

W, H = 320, 240


def figure(ankle: float, height: float, cx: float = 160.0) -> Pose:
    """A standing person: feet at y = ankle, nose `height` above them, face and a hand too."""
    p = Pose()
    top = ankle - height
    def at(fx, fy):  # fractions of the height, from the centre line and the nose
        return (cx + fx * height, top + fy * height, 0.9)
    p.body[BODY["Nose"]] = at(0, 0)
    p.body[BODY["Neck"]] = at(0, 0.12)
    p.body[BODY["RShoulder"]] = at(-0.1, 0.12)
    p.body[BODY["LShoulder"]] = at(0.1, 0.12)
    p.body[BODY["MidHip"]] = at(0, 0.45)
    p.body[BODY["RKnee"]] = at(-0.05, 0.72)
    p.body[BODY["LKnee"]] = at(0.05, 0.72)
    p.body[BODY["RAnkle"]] = at(-0.06, 1.0)
    p.body[BODY["LAnkle"]] = at(0.06, 1.0)
    p.face[:68] = [at(0.03 * np.cos(a), 0.03 * np.sin(a)) for a in np.linspace(0, 6, 68)]
    p.right_hand[:] = [at(-0.2 - 0.002 * i, 0.4 + 0.003 * i) for i in range(21)]
    return p


def affine(pose: Pose, s: float, cx_from: float, cx_to: float, dy: float) -> Pose:
    """x -> cx_to + s (x - cx_from), y -> s y + dy on present points only."""
    def f(a):
        out = a.copy()
        ok = a[:, 2] > 0
        out[ok, 0] = cx_to + s * (a[ok, 0] - cx_from)
        out[ok, 1] = s * a[ok, 1] + dy
        return out
    return pose.map(f)


def target_clip() -> list[Pose]:
    """The target walks from far (ankle 150, small) to close (ankle 230, tall), with side steps."""
    rng = np.random.default_rng(0)
    poses = []
    for ankle in np.linspace(150, 230, 41):
        height = 0.9 * ankle - 20          # perspective: taller when nearer
        poses.append(figure(ankle, height, cx=160 + rng.uniform(-30, 30)))
    return poses


def assert_pose_close(a: Pose, b: Pose, tol: float):
    for part in ("body", "face", "left_hand", "right_hand"):
        np.testing.assert_allclose(getattr(a, part), getattr(b, part), atol=tol, err_msg=part)


def test_source_twice_as_tall_and_shifted_lands_on_the_target():
    # The source is the target filmed at twice the resolution and shifted down by 37 px.
    target = target_clip()
    ws, hs = 2 * W, 2 * H
    cx_t, cx_s = (W - 1) / 2, (ws - 1) / 2
    source = [affine(p, 2.0, cx_t, cx_s, 37.0) for p in target]
    t_stats = stats_from_poses(target, "target")
    s_stats = stats_from_poses(source, "source")
    assert s_stats.height_close == pytest.approx(2 * t_stats.height_close, rel=1e-5)
    assert s_stats.ankle_close == pytest.approx(2 * t_stats.ankle_close + 37, rel=1e-5)
    norm = PoseNormalizer(s_stats, t_stats, (ws, hs), (W, H))
    out = [norm(p) for p in source]
    for o, t in zip(out, target):
        assert_pose_close(o, t, tol=1e-2)
    ankles = [ankle_and_height(o)[0] for o in out]
    assert min(ankles) == pytest.approx(150, abs=1e-2)
    assert max(ankles) == pytest.approx(t_stats.ankle_close, abs=1e-2)


def test_close_and_far_map_to_the_target_close_and_far():
    # A different person and camera: only the statistics relate the two.
    t_stats = PoseStats(ankle_close=220, ankle_far=160, height_close=180, height_far=120,
                        frames=10, median_frac=0.5, window=0.05)
    s_stats = PoseStats(ankle_close=900, ankle_far=700, height_close=500, height_far=300,
                        frames=10, median_frac=0.5, window=0.05)
    ws, hs = 1280, 960
    norm = PoseNormalizer(s_stats, t_stats, (ws, hs), (W, H))
    for ankle, height, t_ankle, t_height in [(900, 500, 220, 180), (700, 300, 160, 120)]:
        out = norm(figure(ankle, height, cx=(ws - 1) / 2 + 100))
        a, h = ankle_and_height(out)
        assert a == pytest.approx(t_ankle, abs=1e-3)
        assert h == pytest.approx(t_height, abs=1e-3)
        scale = t_height / height
        # x is kept relative to the frame centre, scaled with the body.
        assert out.body[BODY["Nose"], 0] == pytest.approx((W - 1) / 2 + 100 * scale, abs=1e-3)
    # Halfway in depth: the ankle halfway and the scale interpolated between the two ratios.
    out = norm(figure(800, 400, cx=(ws - 1) / 2))
    a, h = ankle_and_height(out)
    assert a == pytest.approx(190, abs=1e-3)
    assert h == pytest.approx(400 * (0.5 * 180 / 500 + 0.5 * 120 / 300), abs=1e-3)


def test_identity_when_source_is_target():
    target = target_clip()
    stats = stats_from_poses(target, "target")
    norm = PoseNormalizer(stats, stats, (W, H), (W, H))
    for p in target:
        assert_pose_close(norm(p), p, tol=1e-4)


def test_missing_points_stay_zero_and_missing_ankles_reuse_the_last():
    stats = PoseStats(220, 160, 180, 120, 10, 0.5, 0.05)
    src = PoseStats(440, 320, 360, 240, 10, 0.5, 0.05)      # the same, twice as big
    norm = PoseNormalizer(src, stats, (2 * W, 2 * H), (W, H))
    p = figure(400, 330)
    out = norm(p)
    assert (out.left_hand == 0).all() and (out.face[68:] == 0).all()
    assert (out.body[BODY["LEar"]] == 0).all()
    assert out.face[0, 2] == pytest.approx(0.9)
    # Same frame without ankles: the previous frame's transform, so the nose does not move.
    q = Pose(body=p.body.copy(), face=p.face, left_hand=p.left_hand, right_hand=p.right_hand)
    q.body[[BODY["RAnkle"], BODY["LAnkle"]]] = 0
    out2 = norm(q)
    np.testing.assert_allclose(out2.body[BODY["Nose"]], out.body[BODY["Nose"]], atol=1e-4)
    assert (out2.body[BODY["RAnkle"]] == 0).all()
    assert norm(None) is None


def test_source_dancing_on_the_spot_does_not_swing_the_target():
    # Source feet move over 10 px only; the target walked over 60 px. EDN shrinks the
    # target's range to the source's span (in target pixels) around the target's middle.
    t_stats = PoseStats(220, 160, 180, 120, 10, 0.5, 0.05)
    s_stats = PoseStats(205, 195, 150, 150, 10, 0.5, 0.05)
    norm = PoseNormalizer(s_stats, t_stats, (W, H), (W, H))
    s_mean = (180 / 150 + 120 / 150) / 2
    a_close, _ = ankle_and_height(norm(figure(205, 150)))
    a_far, _ = ankle_and_height(norm(figure(195, 150)))
    assert a_close - a_far == pytest.approx(10 * s_mean, abs=1e-3)
    assert (a_close + a_far) / 2 == pytest.approx(190, abs=1e-3)
    # Without the cap the EDN interpolation maps close/far exactly onto the target's.
    free = PoseNormalizer(s_stats, t_stats, (W, H), (W, H), max_gain=math.inf)
    assert ankle_and_height(free(figure(205, 150)))[0] == pytest.approx(220, abs=1e-3)
    # A source that never moves in depth at all still gets a finite transform.
    still = PoseStats(200, 200, 150, 150, 10, 0.5, 0.05)
    out = PoseNormalizer(still, t_stats, (W, H), (W, H))(figure(200, 150))
    assert np.isfinite(out.body).all()
    assert ankle_and_height(out)[0] == pytest.approx(190, abs=1e-3)


def test_bad_statistics_and_missing_dataset_stats_are_user_errors(tmp_path):
    good = PoseStats(220, 160, 180, 120, 10, 0.5, 0.05)
    with pytest.raises(UserError, match="zero height"):
        PoseNormalizer(PoseStats(220, 160, 0, 120, 10, 0.5, 0.05), good, (W, H), (W, H))
    with pytest.raises(UserError, match="no frame shows"):
        stats_from_poses([None, Pose()], "clip.mp4")
    (tmp_path / "meta.json").write_text(json.dumps(
        {"format": "vid2vid-dataset", "version": 1, "complete": True, "pose_stats": None}))
    with pytest.raises(UserError, match="no pose_stats"):
        dataset_pose_stats(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps(
        {"format": "vid2vid-dataset", "version": 1, "complete": True,
         "pose_stats": good.to_dict()}))
    assert dataset_pose_stats(tmp_path) == good
