"""Zero-phase keypoint smoothing (vid2vid.smoothing.smooth_track) and its use in transfer."""

import numpy as np
import pytest

from infer.pose_driving import DrivingPoses, SourceClip
from vid2vid.smoothing import OneEuroFilter, OneEuroParams, smooth_track

FPS = 30.0


def ramp(n: int = 90, vx: float = 5.0, vy: float = -2.0) -> np.ndarray:
    """`[n, 1, 3]`: one point moving at constant velocity (150 px/s in x at 30 fps)."""
    t = np.arange(n, dtype=np.float64)
    track = np.ones((n, 1, 3))
    track[:, 0, 0] = 40 + vx * t
    track[:, 0, 1] = 300 + vy * t
    return track


def causal(track: np.ndarray) -> np.ndarray:
    f = OneEuroFilter(FPS)
    return np.stack([f(frame.astype(np.float32)) for frame in track])


def test_constant_velocity_is_not_delayed():
    track = ramp()
    out = smooth_track(track, FPS)
    # No lag anywhere, the first and last frames included.
    np.testing.assert_allclose(out[..., :2], track[..., :2], atol=0.05)
    assert (out[..., 2] == 1).all()
    # The causal filter it replaces trails the motion (here by about 2 px, 0.4 frames).
    assert np.abs(causal(track)[10:, 0, 0] - track[10:, 0, 0]).min() > 1.5


def test_jitter_is_reduced_and_motion_kept():
    rng = np.random.default_rng(0)
    still = np.ones((200, 1, 3))
    still[:, 0, :2] = (100, 50) + rng.normal(0, 2, (200, 2))
    out = smooth_track(still, FPS)
    assert np.std(out[5:-5, 0, 0]) < 0.5 * np.std(still[:, 0, 0])
    moving = ramp(200)
    moving[:, 0, :2] += rng.normal(0, 2, (200, 2))
    err_raw = np.abs(moving[:, 0, 0] - ramp(200)[:, 0, 0])
    err = np.abs(smooth_track(moving, FPS)[:, 0, 0] - ramp(200)[:, 0, 0])
    assert err[5:-5].mean() < 0.8 * err_raw[5:-5].mean()
    assert abs(np.mean(smooth_track(moving, FPS)[:, 0, 0] - ramp(200)[:, 0, 0])) < 0.3  # no bias


def test_gaps_stay_missing_and_are_not_smoothed_across():
    track = np.ones((60, 2, 3))
    track[:, :, :2] = 50.0
    track[30:, 0, :2] = 100.0            # point 0 jumps while it is out of view ...
    track[25:30, 0] = 0                  # ... frames 25-29 (confidence 0)
    track[:, 1] = ramp(60)[:, 0]         # point 1 moves and is always seen
    out = smooth_track(track, FPS)
    assert (out[25:30, 0] == 0).all()
    np.testing.assert_allclose(out[30:, 0, :2], 100.0, atol=1e-4)   # no slide in from 50
    np.testing.assert_allclose(out[:25, 0, :2], 50.0, atol=1e-4)
    np.testing.assert_allclose(out[:, 1, :2], track[:, 1, :2], atol=0.05)
    # A point seen in a single frame is returned as it is.
    lone = np.zeros((5, 1, 3))
    lone[2, 0] = (7, 8, 0.5)
    np.testing.assert_array_equal(smooth_track(lone, FPS), lone)
    with pytest.raises(ValueError, match=r"\[T, N, 3\]"):
        smooth_track(np.zeros((5, 3)), FPS)


def test_transfer_smooths_the_source_without_lag():
    track = np.zeros((70, 137, 3), np.float32)
    track[:, :25] = ramp(70).repeat(25, axis=1)               # the whole body moves together
    track[:, :25, 1] += np.arange(25) * 4
    track[30:33] = 0                                          # a long gap: no person
    poses = list(track)
    clip = SourceClip(None, "poses", FPS, (640, 480), poses, lambda: iter(()))
    driving = DrivingPoses(clip, None, (640, 480), (64, 64), normalize=False, smooth=True,
                           smoothing=OneEuroParams())
    assert clip.poses is poses and len(driving.poses) == 70   # the source is left as given
    smoothed = np.stack(driving.poses)
    np.testing.assert_allclose(smoothed, track, atol=0.05)   # no lag, gaps kept empty
    assert not smoothed[30:33].any()
