"""The preprocess stage end to end: real video, frame folders, resume, bad input."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from preprocess.dataset_writer import PreprocessOptions
from preprocess.pose_pipeline import preprocess_video
from tests.helpers_video import (ffmpeg, noise_frames, real_video_path, write_pose_folder,
                                 write_video)
from vid2vid.cli import cli
from vid2vid.dataset_dir import PROGRESS, frame_path, load_dataset
from vid2vid.errors import UserError
from vid2vid.flow_png import read_flow_png
from vid2vid.pose import read_openpose_json
from vid2vid.video import parse_position, probe


@pytest.fixture(scope="module")
def real60(tmp_path_factory):
    """The first 60 frames of the real test video, preprocessed once."""
    src = real_video_path()
    out = tmp_path_factory.mktemp("real") / "dancer"
    summary = preprocess_video(src, out, PreprocessOptions(end="60"), progress=False)
    return src, out, summary


def test_real_video_first_60_frames(real60):
    src, out, summary = real60
    meta = load_dataset(out)
    assert meta["frames"] == 60 == summary.frames
    assert meta["counts"] == {"found": 60, "interpolated": 0, "missing": 0}
    assert all(meta["per_frame"]["person"]) and not any(meta["per_frame"]["interpolated"])
    w, h = meta["size"]
    assert (w, h) == tuple(probe(src, 1024, None).size)
    for sub, n in (("frames", 60), ("pose", 60), ("seg", 60), ("edges", 60), ("flow", 59)):
        assert len(list((out / sub).iterdir())) == n, sub
    for k in (0, 30, 59):
        pose = read_openpose_json(frame_path(out, "pose", k))
        assert pose is not None
        for part in pose.parts().values():
            present = part[part[:, 2] > 0]
            assert ((present[:, 0] >= 0) & (present[:, 0] < w)).all()
            assert ((present[:, 1] >= 0) & (present[:, 1] < h)).all()
        assert (pose.body[[1, 2, 5, 8, 9, 12], 2] > 0).all()     # torso found
        mask = cv2.imread(str(frame_path(out, "seg", k)), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (h, w) and mask.dtype == np.uint8
        # the mask covers the detected torso
        neck = pose.body[1, :2].astype(int)
        assert mask[neck[1], neck[0]] > 127
        assert cv2.imread(str(frame_path(out, "frames", k))).shape == (h, w, 3)
    flow, valid = read_flow_png(frame_path(out, "flow", 30))
    assert flow.shape == (h, w, 2) and valid.all()
    assert not (out / PROGRESS).exists()
    assert meta["source"]["sha256"] and meta["pose_stats"]["frames"] > 0
    assert meta["flow"]["direction"].startswith("backward")


def test_stored_flow_explains_the_real_motion(real60):
    """Warping frame N-1 with flow/N reproduces frame N better than no motion does."""
    _, out, _ = real60
    prev = cv2.imread(str(frame_path(out, "frames", 40))).astype(np.float32)
    cur = cv2.imread(str(frame_path(out, "frames", 41))).astype(np.float32)
    flow, _ = read_flow_png(frame_path(out, "flow", 41))
    h, w = flow.shape[:2]
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(prev, xx + flow[..., 0], yy + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(warped - cur).mean() < np.abs(prev - cur).mean()


def test_rerun_on_finished_output_returns_at_once(real60):
    src, out, _ = real60
    t = time.time()
    again = preprocess_video(src, out, PreprocessOptions(end="60"), progress=False)
    assert again.skipped and again.frames == 60
    assert time.time() - t < 5


def test_resume_after_ctrl_c(tmp_path, monkeypatch):
    src = real_video_path()
    out = tmp_path / "d"
    import preprocess.detect as detect

    real_call = detect.HolisticDetector.__call__
    calls = {"n": 0}

    def interrupted(self, rgb):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return real_call(self, rgb)

    monkeypatch.setattr(detect.HolisticDetector, "__call__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        preprocess_video(src, out, PreprocessOptions(end="40"), progress=False)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] is False
    committed = len((out / PROGRESS).read_text().splitlines())
    assert 0 < committed <= 24
    first_frame = frame_path(out, "frames", 0).read_bytes()
    monkeypatch.setattr(detect.HolisticDetector, "__call__", real_call)
    summary = preprocess_video(src, out, PreprocessOptions(end="40"), progress=False)
    assert summary.frames == 40 and summary.found == 40
    assert frame_path(out, "frames", 0).read_bytes() == first_frame   # finished work kept
    assert len(list((out / "flow").glob("*.png"))) == 39
    assert not list(out.rglob("*.tmp*"))
    assert load_dataset(out)["complete"]


def test_resume_after_kill_9(tmp_path):
    src = real_video_path()
    out = tmp_path / "d"
    cmd = [sys.executable, "-m", "vid2vid", "preprocess", str(src), "-o", str(out),
           "--end", "80"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / PROGRESS
    deadline = time.time() + 60
    while time.time() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= 15:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not json.loads((out / "meta.json").read_text())["complete"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming after" in done.stdout
    meta = load_dataset(out)
    assert meta["frames"] == 80
    for k in range(80):       # every file a later stage would read opens
        assert cv2.imread(str(frame_path(out, "frames", k))) is not None
        assert read_openpose_json(frame_path(out, "pose", k)) is not None
        if k:
            read_flow_png(frame_path(out, "flow", k))


def test_frame_folder_with_imported_keypoints(tmp_path):
    frames = noise_frames(12, w=160, h=120)
    folder = tmp_path / "frames_in"
    folder.mkdir()
    for i, f in enumerate(frames):   # names that sort wrongly as plain strings
        cv2.imwrite(str(folder / f"f{i}.png"), f[..., ::-1])
    poses = write_pose_folder(tmp_path / "openpose", 12, 160, 120)
    out = tmp_path / "ds"
    options = PreprocessOptions(max_size=80, keypoints=str(poses), smooth=False)
    summary = preprocess_video(folder, out, options, progress=False)
    meta = load_dataset(out)
    assert summary.frames == 12 and meta["size"] == [80, 60] and meta["fps"] == 25.0
    assert meta["source"]["kind"] == "frames" and meta["pose"]["detector"] == "openpose-json"
    assert "coarse_hands" not in meta["options"]     # nothing is detected, so it says nothing
    # frame order is natural (f2 before f10) and keypoints are scaled to the stored size
    stored = cv2.imread(str(frame_path(out, "frames", 10)))[..., ::-1].astype(int)
    errors = [np.abs(stored - cv2.resize(f, (80, 60), interpolation=cv2.INTER_AREA)).mean()
              for f in frames]
    assert int(np.argmin(errors)) == 10
    src_pose = read_openpose_json(sorted(poses.iterdir())[3])
    got = read_openpose_json(frame_path(out, "pose", 3))
    assert got.body[0, :2] == pytest.approx(src_pose.body[0, :2] / 2, abs=0.01)


def test_keypoints_folder_with_wrong_count_or_format(tmp_path):
    frames = noise_frames(6)
    video = write_video(tmp_path / "v.mp4", frames)
    poses = write_pose_folder(tmp_path / "few", 4, 96, 64)
    with pytest.raises(UserError, match="holds 4 JSON files but the video has"):
        preprocess_video(video, tmp_path / "o1", PreprocessOptions(keypoints=str(poses)),
                         progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "0.json").write_text('{"persons": []}')
    with pytest.raises(UserError, match="not OpenPose JSON"):
        preprocess_video(video, tmp_path / "o2", PreprocessOptions(keypoints=str(bad)),
                         progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no .json files"):
        preprocess_video(video, tmp_path / "o3", PreprocessOptions(keypoints=str(empty)),
                         progress=False)


def test_rotation_metadata_is_applied(tmp_path):
    plain = write_video(tmp_path / "plain.mp4", noise_frames(5, w=96, h=64))
    rotated = tmp_path / "rotated.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-display_rotation", "90", "-i", str(plain),
                    "-c", "copy", str(rotated)], check=True)
    info = probe(rotated, 1024, None)
    assert info.size == (64, 96)
    from vid2vid.video import read_frames

    first = next(iter(read_frames(info)))
    assert first.shape == (96, 64, 3)


def test_fps_resampling_and_range(tmp_path):
    video = write_video(tmp_path / "v.mp4", noise_frames(50), fps=25)
    info = probe(video, 1024, 10.0)
    from vid2vid.video import read_frames

    assert len(list(read_frames(info))) == 20
    assert len(list(read_frames(info, 5, 12))) == 7
    assert parse_position("1:02.5", "--start").seconds == pytest.approx(62.5)
    assert parse_position("12s", "--start").seconds == 12
    assert parse_position("300", "--start").frame == 300
    with pytest.raises(UserError, match="--end"):
        parse_position("soon", "--end")


def invoke(args):
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output   # click >= 8.2 mixes stderr into output


def assert_one_line_error(code, text, *needles):
    assert code == 2, text
    lines = [line for line in text.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in text, text
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_file_and_not_a_video(tmp_path):
    code, text = invoke(["preprocess", str(tmp_path / "nope.mp4")])
    assert_one_line_error(code, text, "nope.mp4", "does not exist")
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    code, text = invoke(["preprocess", str(fake), "-o", str(tmp_path / "o")])
    assert_one_line_error(code, text, "fake.mp4", "not a video")
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    code, text = invoke(["preprocess", str(empty_dir), "-o", str(tmp_path / "o")])
    assert_one_line_error(code, text, "nothing", "without .jpg/.png")


def test_cli_error_has_no_traceback_in_a_real_process(tmp_path):
    done = subprocess.run([sys.executable, "-m", "vid2vid", "preprocess",
                           str(tmp_path / "missing.avi")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.avi'} does not exist; check the path"]


def test_truncated_video(tmp_path):
    video = tmp_path / "v.mp4"
    frames = noise_frames(120)
    write_video(tmp_path / "plain.mp4", frames)
    # moov atom first, so a truncated file still opens and stops decoding early
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(tmp_path / "plain.mp4"),
                    "-c", "copy", "-movflags", "+faststart", str(video)], check=True)
    data = video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    code, text = invoke(["preprocess", str(cut), "-o", str(tmp_path / "o")])
    assert_one_line_error(code, text, "cut.mp4")
    assert "truncated" in text or "decode" in text


def test_no_person_and_zero_frames(tmp_path):
    video = write_video(tmp_path / "noise.mp4", noise_frames(10))
    code, text = invoke(["preprocess", str(video), "-o", str(tmp_path / "o")])
    assert_one_line_error(code, text, "no person found", "noise.mp4")
    code, text = invoke(["preprocess", str(video), "-o", str(tmp_path / "o2"), "--start", "500"])
    assert_one_line_error(code, text, "no frames")


def test_output_holding_another_videos_dataset(tmp_path, real60):
    _, out, _ = real60
    other = tmp_path / "other.mp4"
    write_video(other, noise_frames(5))
    keypoints = write_pose_folder(tmp_path / "kp", 5, 96, 64)
    code, text = invoke(["preprocess", str(other), "-o", str(out), "--keypoints", str(keypoints)])
    assert_one_line_error(code, text, str(out), "another video", "--overwrite")
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    code, text = invoke(["preprocess", str(other), "-o", str(copy), "--keypoints", str(keypoints),
                         "--overwrite"])
    assert code == 0, text
    meta = load_dataset(copy)
    assert meta["frames"] == 5 and len(list((copy / "frames").iterdir())) == 5


def test_coarse_hands_and_face_are_options_of_the_dataset(tmp_path, real60):
    src, out, _ = real60
    options = load_dataset(out)["options"]
    assert options["coarse_hands"] is True and options["coarse_face"] is True   # the defaults
    plain = tmp_path / "plain"
    shutil.copytree(out, plain)
    code, text = invoke(["preprocess", str(src), "-o", str(plain), "--end", "60",
                         "--no-coarse-hands"])
    assert_one_line_error(code, text, str(plain), "other options", "--overwrite")
    # Compared as detected: smoothing runs over the whole track, coarse points and all.
    code, text = invoke(["preprocess", str(src), "-o", str(plain), "--end", "60",
                         "--no-coarse-hands", "--no-coarse-face", "--no-smooth", "--overwrite"])
    assert code == 0, text
    options = load_dataset(plain)["options"]
    assert "coarse_hands" not in options and "coarse_face" not in options  # as made before them
    detected = tmp_path / "detected"
    code, text = invoke(["preprocess", str(src), "-o", str(detected), "--end", "60",
                         "--no-smooth"])
    assert code == 0, text
    missed = coarse = faces = 0
    for k in range(60):
        without = read_openpose_json(frame_path(plain, "pose", k))
        filled = read_openpose_json(frame_path(detected, "pose", k))
        if without is None:
            continue
        assert np.allclose(without.body, filled.body, atol=1e-3)
        if without.face[:, 2].max() > 0:
            faces += 1
            assert np.allclose(without.face, filled.face, atol=1e-3)   # the face mesh's
        for a, b in ((without.left_hand, filled.left_hand),
                     (without.right_hand, filled.right_hand)):
            if a[:, 2].max() > 0:
                assert np.allclose(a, b, atol=1e-3)     # found hands are the hand model's
            else:
                missed += 1
                coarse += int(b[[0, 5, 17], 2].min() > 0 and b[3:5, 2].max() == 0)
    assert missed > 0 and coarse > 0      # the dancer's gloves: hands the hand model misses
    assert faces > 0


def test_unwritable_output(tmp_path):
    video = write_video(tmp_path / "v.mp4", noise_frames(3))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, text = invoke(["preprocess", str(video), "-o", str(blocker / "sub")])
    assert_one_line_error(code, text, "cannot write", str(blocker / "sub"))
    if os.geteuid() != 0:   # root writes through permissions, so only test this as a user
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        code, text = invoke(["preprocess", str(video), "-o", str(ro / "x")])
        assert_one_line_error(code, text, "cannot write")
