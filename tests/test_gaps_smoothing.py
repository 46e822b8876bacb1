import numpy as np
import pytest

from preprocess.gaps import GapFiller
from vid2vid.pose import Pose
from vid2vid.pose_stats import PoseStatsAccumulator, ankle_and_height
from vid2vid.smoothing import OneEuroFilter, PoseSmoother


def pose_at(x: float) -> Pose:
    p = Pose()
    p.body[:, :] = (x, 2 * x, 1.0)
    p.body[3] = 0          # a point missing in every pose
    return p


def run(filler: GapFiller, sequence):
    out = []
    for i, pose in enumerate(sequence):
        out += list(filler.push(i, pose))
    return out + list(filler.finish())


def test_short_gap_is_interpolated_and_flagged():
    seq = [pose_at(0), None, None, pose_at(30), pose_at(40)]
    out = run(GapFiller(max_gap=2), seq)
    assert [i for i, _, _ in out] == [0, 1, 2, 3, 4]
    assert [s for _, _, s in out] == ["found", "interpolated", "interpolated", "found", "found"]
    assert out[1][1].body[0, 0] == pytest.approx(10) and out[2][1].body[0, 1] == pytest.approx(40)
    assert out[1][1].body[3, 2] == 0


def test_long_leading_and_trailing_gaps_stay_missing():
    seq = [None, pose_at(0), None, None, None, pose_at(5), None]
    out = run(GapFiller(max_gap=2), seq)
    assert [s for _, _, s in out] == ["missing", "found", "missing", "missing", "missing",
                                      "found", "missing"]
    assert all(p is None for _, p, s in out if s == "missing")
    assert [i for i, _, _ in out] == list(range(7))


def test_one_euro_smooths_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(fps=30)
    noisy, smooth = [], []
    for t in range(200):
        x = np.array([[100 + rng.normal(0, 2), 50, 1.0]], np.float32)
        noisy.append(x[0, 0])
        smooth.append(f(x)[0, 0])
    assert np.std(smooth[50:]) < 0.5 * np.std(noisy[50:])
    # A step is followed: after a second it is within a pixel.
    for _ in range(30):
        y = f(np.array([[200, 50, 1.0]], np.float32))
    assert y[0, 0] == pytest.approx(200, abs=1)


def test_smoother_restarts_after_a_missing_person():
    s = PoseSmoother(fps=25)
    s(pose_at(0))
    assert s(None) is None
    p = s(pose_at(100))
    assert p.body[0, 0] == pytest.approx(100)     # no slide from 0
    assert p.body[3, 2] == 0


def test_pose_stats_close_far_and_heights():
    acc = PoseStatsAccumulator()
    for ankle, height in [(400, 200), (300, 100), (350, 150), (390, 190), (310, 105)]:
        p = Pose()
        p.body[0] = (50, ankle - height, 1)            # nose
        p.body[11] = (45, ankle, 1)                    # ankles
        p.body[14] = (55, ankle, 1)
        acc.add(p)
        assert ankle_and_height(p) == pytest.approx((ankle, height))
    acc.add(None)
    stats = acc.summarize()
    assert stats.ankle_close == 400 and stats.height_close == 200
    assert stats.ankle_far == pytest.approx(max(300, 350 - 0.5 * 50))
    assert stats.height_far == 105                     # the frames nearest far (310)
    assert stats.frames == 5
