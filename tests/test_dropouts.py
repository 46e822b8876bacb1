"""`vid2vid.dropouts`: the hand model's and face mesh's short dropouts bridged from the
frames around them, hung from the body's own wrist or nose; long or open-ended runs and the
body keypoints left as detected."""

import numpy as np
import pytest

from vid2vid.dropouts import bridge_dropouts, max_dropout_frames

RIGHT_HAND, RIGHT_WRIST = slice(116, 137), 4
FACE, NOSE = slice(25, 95), 0
COARSE_HAND = [0, 1, 2, 5, 17]


def track(frames: int) -> np.ndarray:
    """A body whose right wrist moves 3 px per frame; a full right hand 10 px below it
    whose fingers spread 1 px per frame; a full face round the nose."""
    rng = np.random.default_rng(0)
    t = np.zeros((frames, 137, 3), np.float32)
    t[:, :25, :2] = rng.uniform(20, 80, (25, 2))
    t[:, :25, 2] = 0.9
    t[:, RIGHT_WRIST, 0] = 50 + 3 * np.arange(frames)
    shape = rng.uniform(-8, 8, (21, 2))
    for k in range(frames):
        t[k, RIGHT_HAND, :2] = t[k, RIGHT_WRIST, :2] + shape * (1 + k / 10) + (0, 10)
    t[:, RIGHT_HAND, 2] = 0.8
    t[:, FACE, :2] = t[:, NOSE, None, :2] + rng.uniform(-5, 5, (70, 2))
    t[:, FACE, 2] = 0.7
    return t


def coarse(t: np.ndarray, frames: range) -> np.ndarray:
    """The right hand reduced to the body model's 5 coarse points in `frames`."""
    t = t.copy()
    for k in frames:
        keep = np.zeros(21, bool)
        keep[COARSE_HAND] = True
        t[k, RIGHT_HAND][~keep] = 0
        t[k, 116 + 2, :2] += 4          # the coarse thumb point is the thumb's tip
    return t


def test_a_short_dropout_is_bridged_from_the_frames_around_it():
    full = track(8)
    full[6, RIGHT_HAND, 2] = 0.5                 # the later end is less sure
    detected = coarse(full, range(2, 6))         # 4 frames: within 0.2 s at 25 fps
    bridged = bridge_dropouts(detected, max_dropout_frames(25))
    # The hand's shape spreads linearly here, so the bridge is exact where it is hung.
    np.testing.assert_allclose(bridged[2:6, RIGHT_HAND, :2], full[2:6, RIGHT_HAND, :2],
                               atol=1e-4)
    assert (bridged[2:6, RIGHT_HAND, 2] == 0.5).all()
    # Frames with the full hand, the body and the face are untouched.
    np.testing.assert_array_equal(bridged[[0, 1, 6, 7]], detected[[0, 1, 6, 7]])
    np.testing.assert_array_equal(bridged[:, :95], detected[:, :95])


def test_the_bridge_follows_the_wrist():
    detected = coarse(track(5), range(1, 4))
    detected[2, RIGHT_WRIST, :2] += (7, -3)      # the arm jerks in the middle frame
    bridged = bridge_dropouts(detected, 5)
    shift = bridged[2, RIGHT_HAND, :2] - bridge_dropouts(coarse(track(5), range(1, 4)), 5)[
        2, RIGHT_HAND, :2]
    np.testing.assert_allclose(shift, np.tile((7, -3), (21, 1)), atol=1e-4)


@pytest.mark.parametrize("gap", [range(1, 7), range(5, 8), range(0, 3)],
                         ids=["longer than max", "to the end", "from the start"])
def test_long_and_open_ended_dropouts_stay_as_detected(gap):
    detected = coarse(track(8), gap)
    np.testing.assert_array_equal(bridge_dropouts(detected, 5), detected)


def test_a_frame_without_the_wrist_is_left_alone_and_the_face_is_bridged_too():
    full = track(6)
    detected = coarse(full, range(1, 4))
    detected[2, RIGHT_WRIST] = 0
    detected[3, FACE, 2] = 0                     # the face mesh missed one frame
    detected[3, 25:30, 2] = 0.7                  # ... and a coarse face stood in
    bridged = bridge_dropouts(detected, 5)
    np.testing.assert_array_equal(bridged[2, RIGHT_HAND], detected[2, RIGHT_HAND])
    assert (bridged[[1, 3], RIGHT_HAND, 2] > 0).all()
    np.testing.assert_allclose(bridged[3, FACE], full[3, FACE], atol=1e-4)


def test_max_dropout_frames_is_a_fifth_of_a_second():
    assert max_dropout_frames(25) == 5 and max_dropout_frames(50) == 10
    assert max_dropout_frames(2) == 1
    with pytest.raises(ValueError, match=r"\[T, 137, 3\]"):
        bridge_dropouts(np.zeros((4, 25, 3)), 5)
