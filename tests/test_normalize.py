"""Everybody Dance Now pose normalisation on hand-built poses with known answers."""

import json
import math

import numpy as np
import pytest

from infer.normalize import PoseNormalizer, dataset_pose_stats, stats_from_poses
from vid2vid.errors import UserError
from vid2vid.pose import BODY, Pose
from vid2vid.pose_stats import PoseStats, ankle_and_height
from vid2vid.smoothing import OneEuroParams

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


# -- half-body subjects: the shoulders-and-neck reference ------------------------------------


def upper_figure(neck_y: float, width: float, cx: float = 160.0) -> Pose:
    """A person from the waist up: nose, neck, shoulders, elbows, wrists and hips only."""
    p = Pose()
    def at(fx, fy):  # fractions of the shoulder width, from the neck
        return (cx + fx * width, neck_y + fy * width, 0.9)
    for name, fx, fy in [("Nose", 0, -0.6), ("Neck", 0, 0), ("RShoulder", -0.5, 0),
                         ("LShoulder", 0.5, 0), ("RElbow", -0.6, 0.8), ("LElbow", 0.6, 0.8),
                         ("RWrist", -0.5, 1.5), ("LWrist", 0.5, 1.5), ("MidHip", 0, 1.7),
                         ("RHip", -0.3, 1.7), ("LHip", 0.3, 1.7)]:
        p.body[BODY[name]] = at(fx, fy)
    p.face[:68] = [at(0.15 * np.cos(a), -0.6 + 0.15 * np.sin(a)) for a in np.linspace(0, 6, 68)]
    return p


def half_body_clip() -> list[Pose]:
    """A talking head in a 320 x 240 frame: the neck bobs over 90-110, shoulders 60 px apart."""
    rng = np.random.default_rng(1)
    return [upper_figure(100 + 10 * np.sin(k / 3), 60, cx=160 + rng.uniform(-20, 20))
            for k in range(30)]


def inside(pose: Pose, w: int, h: int) -> bool:
    pts = np.concatenate([a[a[:, 2] > 0, :2] for a in pose.parts().values()])
    return bool((pts >= 0).all() and (pts[:, 0] <= w - 1).all() and (pts[:, 1] <= h - 1).all())


def test_half_body_source_and_target_use_the_shoulders_and_land_on_the_target():
    # The source is the half-body target filmed at twice the resolution and shifted down.
    target = half_body_clip()
    ws, hs = 2 * W, 2 * H
    source = [affine(p, 2.0, (W - 1) / 2, (ws - 1) / 2, 21.0) for p in target]
    t_stats = stats_from_poses(target, "target")
    s_stats = stats_from_poses(source, "source")
    assert t_stats.ankle_close is None and t_stats.frames == 0 and t_stats.persons == 30
    assert t_stats.shoulder_width == pytest.approx(60, abs=1e-3)
    assert s_stats.shoulder_width == pytest.approx(120, abs=1e-3)
    norm = PoseNormalizer(s_stats, t_stats, (ws, hs), (W, H))
    assert norm.reference == "shoulders"
    assert norm.description == ("pose normalisation: shoulders and neck (the source shows no "
                                "ankles; the target shows no ankles)")
    for s, t in zip(source, target):
        out = norm(s)
        assert_pose_close(out, t, tol=1e-2)          # scale 1/2, the neck on the target's
        assert inside(out, W, H)


def test_full_body_source_onto_a_half_body_target_is_measured_by_the_shoulders():
    target = half_body_clip()
    t_stats = stats_from_poses(target, "target")
    ws, hs = 640, 480
    source = [figure(ankle, 0.9 * ankle - 20, cx=(ws - 1) / 2)
              for ankle in np.linspace(300, 460, 41)]
    s_stats = stats_from_poses(source, "source")
    norm = PoseNormalizer(s_stats, t_stats, (ws, hs), (W, H))
    # Both subjects on the same reference, although the source shows its ankles throughout.
    assert norm.description == ("pose normalisation: shoulders and neck (the target shows no "
                                "ankles)")
    for p in source:
        out = norm(p)
        b = out.body
        width = np.linalg.norm(b[BODY["RShoulder"], :2] - b[BODY["LShoulder"], :2])
        src_width = np.linalg.norm(p.body[BODY["RShoulder"], :2] - p.body[BODY["LShoulder"], :2])
        assert width == pytest.approx(src_width * 60 / s_stats.shoulder_width, rel=1e-4)
        # The neck moves about the target's neck positions (the legs may leave the frame).
        f = p.body[BODY["Neck"], 1]
        mid_s, mid_t = (s_stats.neck_close + s_stats.neck_far) / 2, (t_stats.neck_close +
                                                                      t_stats.neck_far) / 2
        assert b[BODY["Neck"], 1] == pytest.approx(mid_t + norm.gain * (f - mid_s), abs=1e-3)
        assert 0 <= b[BODY["Neck"], 0] <= W - 1 and 0 <= b[BODY["Neck"], 1] <= H - 1
    # The closest source frame (its widest shoulders) gets the target's shoulder width.
    b = norm(source[-1]).body
    assert np.linalg.norm(b[BODY["RShoulder"], :2] - b[BODY["LShoulder"], :2]) == \
        pytest.approx(60, abs=1e-3)


def test_a_source_mostly_without_ankles_switches_both_to_the_shoulders():
    t_stats = stats_from_poses(target_clip(), "target")       # a full-body target
    source = [figure(200, 150) for _ in range(3)] + [upper_figure(100, 60) for _ in range(7)]
    norm = PoseNormalizer(stats_from_poses(source, "source"), t_stats, (W, H), (W, H))
    assert norm.description == ("pose normalisation: shoulders and neck (the source shows its "
                                "ankles in only 3 of 10 frames)")
    both = PoseNormalizer(t_stats, t_stats, (W, H), (W, H))
    assert both.description == ("pose normalisation: ankles and height (source and target show "
                                "their ankles)")


@pytest.mark.parametrize("reference", ["ankles", "shoulders"])
def test_the_anchor_never_leaves_the_target_frame(reference):
    # A landscape source dancing to its right edge and below its usual floor, onto a portrait
    # target: unclamped, the body would land hundreds of pixels right of (and below) the frame.
    ws, hs, wt, ht = 640, 360, 180, 320
    common = dict(frames=10, median_frac=0.5, window=0.05, persons=10, upper_frames=10)
    src = PoseStats(300, 200, 200, 150, neck_close=140, neck_far=100, shoulder_width=40,
                    **common)
    tgt = PoseStats(300, 200, 200, 150, neck_close=140, neck_far=100, shoulder_width=40,
                    **common)
    norm = PoseNormalizer(src, tgt, (ws, hs), (wt, ht), max_gain=math.inf, reference=reference)
    for cx, ankle in [(630, 250), (5, 250), (320, 359), (630, 359)]:
        p = figure(ankle, 200, cx=cx) if reference == "ankles" else upper_figure(ankle, 40, cx=cx)
        out = norm(p)
        if reference == "ankles":
            anchor = max((out.body[BODY[k]] for k in ("RAnkle", "LAnkle")), key=lambda a: a[1])
        else:
            anchor = out.body[BODY["Neck"]]
        assert 0 <= anchor[0] <= wt - 1 and 0 <= anchor[1] <= ht - 1
        # Shifted as a whole: the pose keeps its shape (scale 1 here).
        np.testing.assert_allclose(out.body[:, :2][p.body[:, 2] > 0] - anchor[:2],
                                   p.body[:, :2][p.body[:, 2] > 0] -
                                   (p.body[BODY["Neck"], :2] if reference == "shoulders" else
                                    p.body[BODY["RAnkle"], :2]), atol=1e-3)
    # Inside the frame nothing moves: the source centre maps onto the target centre.
    mid = norm(figure(250, 200, cx=(ws - 1) / 2) if reference == "ankles"
               else upper_figure(120, 40, cx=(ws - 1) / 2))
    assert mid.body[BODY["Nose"], 0] == pytest.approx((wt - 1) / 2, abs=1e-3)


def test_shoulders_needed_but_never_seen_is_a_user_error():
    legs = Pose()
    legs.body[BODY["Nose"]] = (100, 20, 0.9)
    legs.body[BODY["RAnkle"]] = (100, 200, 0.9)
    s_stats = stats_from_poses([legs, legs], "source")
    assert not s_stats.has_upper
    with pytest.raises(UserError, match="the source never shows its face well enough"):
        PoseNormalizer(s_stats, stats_from_poses(half_body_clip(), "target"), (W, H), (W, H))


def head_figure(nose_y: float, width: float, cx: float = 160.0) -> Pose:
    """A close-up of a talking head: nose, eyes and ears only (no shoulders in view)."""
    p = Pose()
    for name, fx, fy in [("Nose", 0, 0), ("REye", -0.25, -0.2), ("LEye", 0.25, -0.2),
                         ("REar", -0.5, -0.1), ("LEar", 0.5, -0.1)]:
        p.body[BODY[name]] = (cx + fx * width, nose_y + fy * width, 0.9)
    return p


def test_close_ups_without_shoulders_are_measured_by_the_head():
    # talk.mp4 as a body: only the face's body points are found. The source is the same
    # close-up filmed at twice the size and shifted down; it must land on the target's head.
    rng = np.random.default_rng(2)
    target = [head_figure(100 + 5 * np.sin(k / 3), 80, cx=160 + rng.uniform(-10, 10))
              for k in range(30)]
    source = [affine(p, 2.0, 159.5, 319.5, 60) for p in target]
    t_stats, s_stats = stats_from_poses(target, "target"), stats_from_poses(source, "source")
    assert t_stats.has_head and not t_stats.has_upper and t_stats.head_width == pytest.approx(80)
    norm = PoseNormalizer(s_stats, t_stats, (640, 480), (W, H))
    assert norm.reference == "head" and "shows no shoulders" in norm.description
    for p_src, p_tgt in zip(source, target):
        assert_pose_close(norm(p_src), p_tgt, 1e-2)
    # A waist-up target with a close-up source: both by the head (the source has no shoulders).
    waist_up = half_body_clip()
    for q in waist_up:   # with the ears mediapipe finds on a waist-up person
        nose = q.body[BODY["Nose"]]
        q.body[BODY["REar"]] = (nose[0] - 15, nose[1], 0.9)
        q.body[BODY["LEar"]] = (nose[0] + 15, nose[1], 0.9)
    mixed = PoseNormalizer(s_stats, stats_from_poses(waist_up, "target"), (640, 480), (W, H))
    assert mixed.reference == "head"
    assert norm(source[0]) is not None and inside(mixed(source[0]), W, H)


# -- statistics: robust close, old meta.json ---------------------------------------------


def test_one_outlier_frame_does_not_move_close():
    clean = target_clip()
    bad = figure(400, 0.9 * 230 - 20)          # a detection far below the frame
    clean_stats = stats_from_poses(clean, "target")
    stats = stats_from_poses(clean + [bad], "target")
    assert stats.ankle_close == pytest.approx(230, abs=1e-4)
    assert stats.ankle_close == clean_stats.ankle_close
    assert stats.height_close == clean_stats.height_close
    # A dancer on the spot: a single bad frame a few dozen pixels off is rejected as well.
    spot = [figure(200 + (k % 3), 150) for k in range(40)]
    assert stats_from_poses(spot + [figure(230, 150)], "source").ankle_close == \
        pytest.approx(202, abs=1e-4)
    # ... but a real position held for a while is kept (stood still, then stepped closer).
    stepped = spot + [figure(230, 170)] * 8
    assert stats_from_poses(stepped, "source").ankle_close == pytest.approx(230, abs=1e-4)


def test_pose_stats_round_trip_and_old_dicts():
    stats = stats_from_poses(half_body_clip(), "target")
    assert PoseStats.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats
    old = {"ankle_close": 220, "ankle_far": 160, "height_close": 180, "height_far": 120,
           "frames": 10, "median_frac": 0.5, "window": 0.05}
    read = PoseStats.from_dict(old)
    assert read == PoseStats(220, 160, 180, 120, 10, 0.5, 0.05)
    assert read.persons is None and not read.has_upper and read.mostly_ankles


def write_dataset(root, poses, pose_stats, size=(W, H)):
    from vid2vid.pose import write_openpose_json

    (root / "pose").mkdir(parents=True)
    for k, p in enumerate(poses):
        write_openpose_json(root / "pose" / f"{k:06d}.json", p)
    (root / "meta.json").write_text(json.dumps(
        {"format": "vid2vid-dataset", "version": 1, "complete": True, "frames": len(poses),
         "fps": 25.0, "size": list(size), "pose_stats": pose_stats}))
    return root


def test_old_half_body_dataset_is_measured_from_its_pose_folder(tmp_path):
    # Preprocessed before the shoulder statistics: pose_stats is null (no ankle was seen).
    clip = half_body_clip()
    root = write_dataset(tmp_path / "talk", clip + [None], None)
    stats = dataset_pose_stats(root)
    expected = stats_from_poses(clip, "target").to_dict()
    assert stats.to_dict() == {k: v if v is None else pytest.approx(v, abs=1e-3)  # JSON rounds
                               for k, v in expected.items()}
    assert stats.persons == 30 and stats.has_upper
    # An old full-body dataset: its old dict is replaced by the measured statistics.
    full = target_clip()
    old = {k: v for k, v in stats_from_poses(full, "t").to_dict().items()
           if k in ("ankle_close", "ankle_far", "height_close", "height_far", "frames",
                    "median_frac", "window")}
    measured = dataset_pose_stats(write_dataset(tmp_path / "walk", full, old))
    assert measured.persons == 41 and measured.ankle_close == pytest.approx(230, abs=1e-3)


def test_transfer_onto_a_half_body_target_says_which_reference(tmp_path, capsys):
    from infer.pose_driving import DrivingPoses, SourceClip
    from vid2vid.data import pose_to_array

    target = write_dataset(tmp_path / "talk", half_body_clip(), None)
    ws, hs = 640, 480
    poses = [pose_to_array(figure(ankle, 0.9 * ankle - 20, cx=300 + 3 * k))
             for k, ankle in enumerate(np.linspace(300, 460, 20))]
    clip = SourceClip(tmp_path / "dance.mp4", "video", 25.0, (ws, hs), poses, lambda: iter(()))
    driving = DrivingPoses(clip, target, (W, H), (48, 64), normalize=True, smooth=True,
                           smoothing=OneEuroParams())
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == ["pose normalisation: shoulders and neck (the target shows no ankles)"]
    for kp in driving.poses:
        assert driving(kp).shape == (48, 64, 3)
