"""`vid2vid preprocess --smooth` (the pose default): the stored keypoints smoothed over the
whole video, zero phase, and a pass cut short redone from the raw detections, never from its
own output; `--no-smooth` stores them as detected."""

import json

import cv2
import numpy as np
import pytest

from preprocess.dataset_writer import PreprocessOptions
from preprocess.pose_pipeline import preprocess_video
from tests.helpers_cli import run_cli
from tests.helpers_video import figure_frame, synthetic_pose
from vid2vid.data import pose_to_array
from vid2vid.dataset_dir import RAW_POSES, frame_path
from vid2vid.pose import read_openpose_json, write_openpose_json
from vid2vid.smoothing import smooth_track

N, W, H = 40, 64, 64


@pytest.fixture(scope="module")
def jittered(tmp_path_factory):
    """Frames of the synthetic figure and its poses with 1.5 px of detector jitter."""
    root = tmp_path_factory.mktemp("smooth")
    frames, poses = root / "frames_in", root / "openpose"
    frames.mkdir()
    poses.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N):
        pose = synthetic_pose(i / 3, W, H)
        cv2.imwrite(str(frames / f"{i:06d}.png"), figure_frame(pose, W, H)[..., ::-1])
        on = pose.body[:, 2] > 0
        pose.body[on, :2] += rng.normal(0, 1.5, (on.sum(), 2)).astype(np.float32)
        write_openpose_json(poses / f"{i:06d}.json", pose)
    raw = np.stack([pose_to_array(read_openpose_json(poses / f"{i:06d}.json"))
                    for i in range(N)])
    return frames, poses, raw


def _stored(out):
    return np.stack([pose_to_array(read_openpose_json(frame_path(out, "pose", k)))
                     for k in range(N)])


def test_smooth_stores_the_zero_phase_track(jittered, tmp_path):
    frames, poses, raw = jittered
    out = tmp_path / "d"
    options = PreprocessOptions(keypoints=str(poses), smooth=True, flow=None)
    preprocess_video(frames, out, options, progress=False)
    stored = _stored(out)
    np.testing.assert_allclose(stored, smooth_track(raw, 25.0), atol=1e-3)
    step = lambda t: np.abs(np.diff(t[:, :25, :2], axis=0)).mean()      # noqa: E731
    assert step(stored) < 0.6 * step(raw)          # the jitter is gone ...
    assert np.abs(stored - raw)[..., :2].mean() < 1.5   # ... the motion is not
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] and meta["pose"]["smoothing"]["phase"] == "zero"
    assert not (out / RAW_POSES).exists()
    # Older datasets made with --smooth were filtered causally: they do not match.
    assert meta["options"]["smoothing"]["phase"] == "zero"


def test_a_pass_cut_short_is_redone_from_the_raw_poses(jittered, tmp_path, monkeypatch):
    import preprocess.pose_pipeline as pipeline

    frames, poses, raw = jittered
    out = tmp_path / "d"
    options = PreprocessOptions(keypoints=str(poses), smooth=True, flow=None)

    def killed(*a, **k):
        raise KeyboardInterrupt
    with monkeypatch.context() as m:       # Ctrl-C after pose/ was smoothed, before the end
        m.setattr(pipeline, "complete_meta", killed)
        with pytest.raises(KeyboardInterrupt):
            preprocess_video(frames, out, options, progress=False)
    assert (out / RAW_POSES).exists()
    preprocess_video(frames, out, options, progress=False)
    np.testing.assert_allclose(_stored(out), smooth_track(raw, 25.0), atol=1e-3)   # once, not twice
    assert not (out / RAW_POSES).exists()


def test_smoothing_is_the_pose_default_and_no_smooth_keeps_the_detections(jittered, tmp_path):
    frames, poses, raw = jittered
    assert PreprocessOptions().smooth and not PreprocessOptions(task="face").smooth
    for flag, expected in (([], smooth_track(raw, 25.0)), (["--no-smooth"], raw)):
        out = tmp_path / ("raw" if flag else "default")
        code, text = run_cli(["preprocess", frames, "--keypoints", poses, "--no-flow",
                              "-o", out, *flag], tmp_path)
        assert code == 0, text
        np.testing.assert_allclose(_stored(out), expected, atol=1e-3)
        meta = json.loads((out / "meta.json").read_text())
        assert meta["options"]["smooth"] is not bool(flag)
