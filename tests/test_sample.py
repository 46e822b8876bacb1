"""`vid2vid sample`: a synthetic dancer with exact keypoints (CPU, a few seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from preprocess.synthetic_dancer import SampleOptions, keypoints_folder, render_frames, write_sample
from vid2vid.errors import UserError
from vid2vid.pose import BODY, read_openpose_json


def _render(**kw):
    return list(render_frames(SampleOptions(**{"seconds": 1.0, "size": 96, **kw})))


def test_same_seed_same_frames_and_keypoints_other_seed_differs():
    a, b, c = _render(seed=3), _render(seed=3), _render(seed=4)
    for (fa, pa), (fb, pb) in zip(a, b):
        assert np.array_equal(fa, fb)
        assert json.dumps(pa.to_openpose()) == json.dumps(pb.to_openpose())
    assert not np.array_equal(a[0][0], c[0][0])


@pytest.mark.parametrize("motion", ["sway", "groove"])
def test_keypoints_inside_the_frame(motion):
    size = 96
    for frame, pose in list(render_frames(SampleOptions(motion=motion, seconds=4.0, size=size))):
        assert frame.shape == (size, size, 3) and frame.dtype == np.uint8
        for part in pose.parts().values():
            assert (part[:, 2] == 1).all()
            assert (part[:, :2] >= 0).all() and (part[:, :2] < size).all()


def test_motions_differ():
    sway = np.stack([p.body[:, :2] for _, p in _render(motion="sway", seconds=4.0)])
    groove = np.stack([p.body[:, :2] for _, p in _render(motion="groove", seconds=4.0)])
    torso = np.linalg.norm(sway[:, BODY["Neck"]] - sway[:, BODY["MidHip"]], axis=-1).mean()
    gap = np.linalg.norm(sway - groove, axis=-1).mean() / torso
    assert gap > 0.3, gap
    # Each motion moves: the wrists travel far over the clip.
    for track in (sway, groove):
        wrist = track[:, BODY["RWrist"]]
        assert np.linalg.norm(wrist.max(0) - wrist.min(0)) > torso


def test_video_frames_fps_and_preprocess_with_its_keypoints(tmp_path):
    import imageio_ffmpeg

    from preprocess.dataset_writer import PreprocessOptions
    from preprocess.pose_pipeline import preprocess_video

    out = tmp_path / "clip.mp4"
    result = write_sample(out, SampleOptions(motion="groove", seconds=1.2, size=64, fps=20))
    assert result.frames == 24
    folder = keypoints_folder(out)
    assert folder == tmp_path / "clip_openpose"
    assert sorted(p.name for p in folder.iterdir()) == [f"{k:06d}.json" for k in range(24)]
    frames, secs = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == 24 and secs == pytest.approx(1.2, abs=0.06)
    pose = read_openpose_json(folder / "000005.json")
    assert pose is not None and (pose.face[:, 2] == 1).all()

    # A shorter second sample in the same place leaves no stale keypoint files.
    write_sample(out, SampleOptions(motion="groove", seconds=1.0, size=64, fps=20))
    assert len(list(folder.iterdir())) == 20

    options = PreprocessOptions(keypoints=str(folder), flow=None, smooth=False)
    summary = preprocess_video(out, tmp_path / "ds", options, progress=False)
    assert summary.frames == 20 and summary.found == 20
    stored = read_openpose_json(tmp_path / "ds" / "pose" / "000007.json")
    truth = read_openpose_json(folder / "000007.json")
    assert np.allclose(stored.body, truth.body, atol=0.01)


def test_bad_options_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="even"):
        write_sample(tmp_path / "a.mp4", SampleOptions(size=99))
    with pytest.raises(UserError, match="mp4"):
        write_sample(tmp_path / "a.avi", SampleOptions(seconds=0.2))
    with pytest.raises(UserError, match="motion"):
        write_sample(tmp_path / "a.mp4", SampleOptions(motion="tango"))
    with pytest.raises(UserError, match="one frame"):
        write_sample(tmp_path / "a.mp4", SampleOptions(seconds=0.001))


def test_cli_sample(tmp_path):
    from click.testing import CliRunner

    from vid2vid.cli import cli

    out = tmp_path / "s.mp4"
    res = CliRunner().invoke(cli, ["sample", str(out), "--motion", "sway", "--seconds", "0.4",
                                   "--size", "64"])
    assert res.exit_code == 0, res.output
    assert out.exists() and len(list((tmp_path / "s_openpose").iterdir())) == 10
