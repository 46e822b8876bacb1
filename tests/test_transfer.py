"""`vid2vid transfer` end to end with a tiny run trained here (CPU, seconds).

mediapipe does not see the synthetic figure as a person, so the positive
video path replaces the detector with one that returns the poses the frames
were drawn from; the real detector is used where "no person" is the point.
"""

import json
import shutil
import subprocess
from dataclasses import replace

import av
import numpy as np
import pytest
import torch

import preprocess.detect
from infer.driving import TransferOptions
from infer.pose_driving import DrivingPoses, fill_gaps, read_source
from infer.transfer import transfer
from tests.helpers_cli import run_cli
from tests.helpers_video import (ffmpeg, figure_frame, make_synthetic_dataset, real_video_path,
                                 synthetic_pose, write_pose_folder)
from train.trainer import train
from vid2vid.checkpoint import load_checkpoint
from vid2vid.config import ModelConfig, TrainConfig
from vid2vid.data import (ClipDataset, index_dataset, keypoints_to_maps, no_augment,
                          pose_to_array)
from vid2vid.errors import UserError
from vid2vid.models import Generator
from vid2vid.pose import read_openpose_json
from vid2vid.render import LIMB_WIDTH
from vid2vid.video import probe, read_frames
from vid2vid.video_writer import VideoWriter, has_audio

W, H = 96, 80       # source video size (the target dataset is 64 x 64)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A target dataset, a tiny run on it under <root>/runs, and a source video with audio."""
    root = tmp_path_factory.mktemp("transfer")
    figure = make_synthetic_dataset(root, n=40, w=64, h=64)
    torch.manual_seed(0)
    cfg = TrainConfig(data=(str(figure),), preset="tiny", model=ModelConfig.preset("tiny"),
                      size=64, frames=2, bptt=2, steps=3, workers=0, log_every=1,
                      sample_every=100, checkpoint_minutes=60.0)
    run = train(cfg, run_dir=root / "runs" / "figure-test", progress=False)
    sine = root / "sine.m4a"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=3", "-c:a", "aac", str(sine)], check=True)
    source = root / "dance.mp4"
    with VideoWriter(source, fps=10, size=(W, H), audio_from=sine) as video:
        for i in range(12):
            video.write(figure_frame(synthetic_pose(i / 3, W, H), W, H, seed=1))
    return {"root": root, "figure": figure, "run": run, "source": source}


class FakeDetector:
    """Stands in for mediapipe: the pose each frame was drawn from; nobody in frames 3-4."""

    def __init__(self, *args, **kwargs):
        self.i = 0

    def __call__(self, rgb):
        i, self.i = self.i, self.i + 1
        mask = np.zeros(rgb.shape[:2], np.uint8)
        if i in (3, 4):
            return None, mask
        return synthetic_pose(i / 3, rgb.shape[1], rgb.shape[0]), mask

    def close(self):
        pass


def video_info(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(video=0))
        return {"frames": frames, "fps": float(v.average_rate), "codec": v.codec_context.name,
                "pix_fmt": v.codec_context.pix_fmt,
                "size": (v.codec_context.width, v.codec_context.height)}


def test_video_source_keeps_every_frame_the_rate_and_the_audio(world, monkeypatch):
    monkeypatch.setattr(preprocess.detect, "HolisticDetector", FakeDetector)
    out = world["root"] / "out" / "result.mp4"
    code, text = run_cli(["transfer", world["source"], world["figure"], "-o", out, "--compare"],
                         world["root"])
    assert code == 0, text
    info = video_info(out)
    assert info == {"frames": 12, "fps": 10.0, "codec": "h264", "pix_fmt": "yuv420p",
                    "size": (64, 64)}
    assert has_audio(out)
    compare = out.with_name("result_compare.mp4")
    assert video_info(compare)["frames"] == 12 and has_audio(compare)
    line = text.strip().splitlines()[-1]
    assert "12 frames at 10 fps" in line and "with audio" in line and str(compare) in line
    assert "held the last pose for 2 (1 short gaps)" in line
    # Nothing but the results was written.
    assert sorted(p.name for p in out.parent.iterdir()) == ["result.mp4", "result_compare.mp4"]


def test_max_frames_and_the_newest_run_by_default(world, monkeypatch):
    monkeypatch.setattr(preprocess.detect, "HolisticDetector", FakeDetector)
    out = world["root"] / "five.mp4"
    result = transfer(world["source"], world["figure"] / "pose", out,
                      TransferOptions(max_frames=5, runs_root=world["root"] / "runs"),
                      progress=False)
    assert result.frames == 5 and video_info(out)["frames"] == 5
    assert result.checkpoint.parent == world["run"]
    assert result.audio and result.compare is None


def test_driving_video_is_detected_as_the_target_dataset_was(world, monkeypatch, tmp_path):
    seen = []

    class Recording(FakeDetector):
        def __init__(self, *args, **kwargs):
            super().__init__()
            seen.append((kwargs.get("coarse_hands", False), kwargs.get("coarse_face", False)))

    monkeypatch.setattr(preprocess.detect, "HolisticDetector", Recording)
    figure = tmp_path / "figure"
    shutil.copytree(world["figure"], figure)
    meta = json.loads((figure / "meta.json").read_text())
    meta["options"]["coarse_hands"] = True        # as `preprocess` writes them, by default
    meta["options"]["coarse_face"] = True
    (figure / "meta.json").write_text(json.dumps(meta))
    options = TransferOptions(max_frames=2, checkpoint=str(world["run"]))
    transfer(world["source"], world["figure"], tmp_path / "plain.mp4", options, progress=False)
    transfer(world["source"], figure, tmp_path / "coarse.mp4", options, progress=False)
    assert seen == [(False, False), (True, True)]


def test_real_video_source_runs_mediapipe(world, tmp_path):
    """With VID2VID_TEST_VIDEO: the real detector, in memory, on a real dancer."""
    # Re-written at a constant 25 fps: dancer.avi's own timestamps have a hole (a cut of it
    # decodes to more frames than it holds), which is not what this test is about.
    info = probe(real_video_path(), 256, None)
    clip = tmp_path / "clip.mp4"
    with VideoWriter(clip, 25, info.size) as video:
        for frame in read_frames(info, 0, 10):
            video.write(frame)
    out = tmp_path / "out" / "real.mp4"
    result = transfer(clip, world["figure"], out, TransferOptions(runs_root=world["root"] / "runs"),
                      progress=False)
    assert result.frames == 10 and video_info(out)["frames"] == 10
    assert video_info(out)["fps"] == 25.0
    assert result.held + result.empty < 10
    assert [p.name for p in out.parent.iterdir()] == ["real.mp4"]


def test_pose_folder_sources(world):
    # A dataset's pose/ folder: fps and size from its meta.json (25 fps for a frame folder).
    out = world["root"] / "self.mp4"
    code, text = run_cli(["transfer", world["figure"] / "pose", world["figure"], "-o", out,
                          "--max-frames", 7, "--compare", "--no-smooth"], world["root"])
    assert code == 0, text
    assert video_info(out)["frames"] == 7 and video_info(out)["fps"] == 25.0
    assert video_info(world["root"] / "self_compare.mp4")["frames"] == 7
    assert not has_audio(out)
    # A loose folder of OpenPose JSON needs its rate and frame size.
    loose = write_pose_folder(world["root"] / "loose", 6, 128, 96)
    code, text = run_cli(["transfer", loose, world["figure"], "-o", world["root"] / "l.mp4"],
                         world["root"])
    assert code == 2 and "--fps and --source-size WxH" in text and "Traceback" not in text
    code, text = run_cli(["transfer", loose, world["figure"], "-o", world["root"] / "l.mp4",
                          "--fps", 12, "--source-size", "128x96"], world["root"])
    assert code == 0, text
    info = video_info(world["root"] / "l.mp4")
    assert info["frames"] == 6 and info["fps"] == 12.0


@pytest.mark.parametrize("limb_width", [LIMB_WIDTH, 0.05])
def test_maps_are_the_training_maps(world, limb_width):
    """The target's own poses, un-normalised and unsmoothed, give exactly ClipDataset's maps,
    at the default stroke width and at a run's own (`limb_width`)."""
    figure = world["figure"]
    video = index_dataset(figure, holdout=0.2)
    video = replace(video, task=replace(video.task, limb_width=limb_width))
    ds = ClipDataset([video], 1, (64, 64), augment=no_augment(), with_flow=False)
    options = TransferOptions(max_frames=10)
    clip = read_source(figure / "pose", options, progress=False)
    driving = DrivingPoses(clip, figure, video.size, (64, 64), normalize=False, smooth=False,
                           smoothing=options.smoothing, limb_width=limb_width)
    for k in (0, 5, 9):
        expected = (ds.frames_at(0, [k]).maps[0].permute(1, 2, 0) * 255).round().byte().numpy()
        assert np.array_equal(driving(clip.poses[k]), expected)
        kp = pose_to_array(read_openpose_json(figure / "pose" / f"{k:06d}.json"))
        maps, model_kp = keypoints_to_maps(kp, video.size, (64, 64))
        assert np.array_equal(maps, expected) == (limb_width == LIMB_WIDTH)
        if limb_width != LIMB_WIDTH:        # 3 px strokes at 64 px, not 1
            assert (expected.max(-1) > 0).sum() > 2 * (maps.max(-1) > 0).sum()
        assert np.allclose(model_kp, ds.frames_at(0, [k]).keypoints[0].numpy())


def test_gaps_hold_the_last_pose_and_long_ones_stay_empty():
    person = np.ones((137, 3), np.float32)
    nobody = np.zeros((137, 3), np.float32)
    poses = [nobody, person * 1, nobody, nobody, person * 2] + [nobody] * 4 + [person * 3]
    filled, held, runs, empty = fill_gaps(poses, max_gap=3)
    assert held == 3 and runs == 2 and empty == 4
    assert filled[0] is poses[1]                      # a leading gap takes the first pose
    assert filled[2] is poses[1] and filled[3] is poses[1]
    assert not filled[6].any()
    with pytest.raises(UserError, match="the source: no person found in any of its 3 frames"):
        fill_gaps([nobody] * 3, max_gap=5)


def test_bad_inputs_are_one_line_errors(world, tmp_path):
    root, figure = world["root"], world["figure"]
    outputs = []

    def run(args, cwd):
        code, text = run_cli(args, cwd)
        outputs.append(text)
        return code, text

    # no run trained on the target (cwd without runs/)
    code, text = run(["transfer", figure / "pose", figure], tmp_path)
    assert code == 2 and f"vid2vid train --data {figure}" in text
    # a target that is not a dataset
    code, text = run(["transfer", figure / "pose", tmp_path], root)
    assert code == 2 and "is not a dataset directory" in text
    # a checkpoint from another map layout (1-channel maps, e.g. edges)
    state = load_checkpoint(world["run"])
    torch.manual_seed(0)
    G = Generator(ModelConfig.preset("tiny"), map_channels=1)
    state.update(map_channels=1, levels=1, G=G.state_dict(), G_ema=G.state_dict())
    (tmp_path / "edges").mkdir()
    torch.save(state, tmp_path / "edges" / "ckpt-00000001.pt")
    code, text = run(["transfer", figure / "pose", figure, "--checkpoint", tmp_path / "edges"],
                     root)
    assert code == 2 and "1-channel maps" in text and "ckpt-00000001.pt" in text
    # a source without any person: the real detector finds nobody in the synthetic figure
    code, text = run(["transfer", world["source"], figure, "--max-frames", 4, "-o",
                      tmp_path / "x.mp4"], root)
    assert code == 2 and "no person found in any of its 4 frames" in text
    assert str(world["source"]) in text
    assert not (tmp_path / "x.mp4").exists()
    # a missing source
    code, text = run(["transfer", tmp_path / "nope.mp4", figure], root)
    assert code == 2 and "does not exist" in text
    for text in outputs:     # (a progress bar may come before the error)
        assert "Traceback" not in text and text.count("error:") == 1, text
        assert text.strip().splitlines()[-1].startswith("error: "), text


def test_frame_size_of_a_checkpoint_mid_progressive_training():
    from infer.trained import model_frame_size

    info = {"frame_size": [256, 192], "stage_frame_size": [64, 48], "levels": 1}
    assert model_frame_size(info) == (64, 48)           # stopped before growing
    assert model_frame_size({"frame_size": [64, 64], "levels": 1}) == (64, 64)


def test_audio_stays_in_sync_when_the_video_starts_late(world, monkeypatch, tmp_path):
    """A source whose video starts 0.4 s after its audio: the result's sound is not early."""
    monkeypatch.setattr(preprocess.detect, "HolisticDetector", FakeDetector)
    # Silence, then a tone from t = 1.0 s of the audio; the first frame sits at t = 0.4 s.
    late = tmp_path / "late.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-itsoffset", "0.4", "-i", str(world["source"]),
                    "-f", "lavfi", "-i", "aevalsrc='if(gte(t,1.0),sin(2*PI*440*t),0)':d=3:s=44100",
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(late)],
                   check=True)
    out = tmp_path / "result.mp4"
    transfer(late, world["figure"], out, TransferOptions(runs_root=world["root"] / "runs"),
             progress=False)

    def tone_onset(path):
        with av.open(str(path)) as c:
            stream = c.streams.audio[0]
            for frame in c.decode(stream):
                samples = np.abs(frame.to_ndarray()).max(axis=0)
                loud = np.flatnonzero(samples > 0.3)
                if loud.size:
                    return float(frame.time) + loud[0] / frame.sample_rate
        return None

    # In the result, frame 0 is at 0 s, so the tone starts 1.0 - 0.4 = 0.6 s in.
    assert tone_onset(out) == pytest.approx(0.6, abs=0.05)
