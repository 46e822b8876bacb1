"""Decoding a video yields exactly its own frames, at its own rate, in sync with its audio.

Each file is made by ffmpeg inside the test the way users make theirs (H.264 +
AAC mp4, AVI, a variable-rate file, a video that starts after its audio, a
truncated download).
"""

import json
import subprocess
import sys

import av
import numpy as np
import pytest
from click.testing import CliRunner

from tests.helpers_video import ffmpeg, noise_frames, write_pose_folder, write_video
from vid2vid.cli import cli
from vid2vid.video import probe, read_frames


def run(*args):
    subprocess.run([ffmpeg(), "-v", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """40 frames of drifting texture at 25 fps, without audio."""
    root = tmp_path_factory.mktemp("timing")
    return write_video(root / "plain.mp4", noise_frames(40, w=96, h=64), fps=25)


def with_aac(video, out):
    """`video` re-encoded as users do (libx264, yuv420p) with 3 s of AAC audio: the
    container ends where the audio ends, after the last frame."""
    run("-i", video, "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-map", "0:v",
        "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", out)
    return out


def count(info, first=0, stop=None):
    return sum(1 for _ in read_frames(info, first, stop))


def test_mp4_with_aac_yields_its_frames_at_its_rate(plain, tmp_path):
    # As a user makes one: `ffmpeg -i IN -frames:v N -c:v libx264 -pix_fmt yuv420p OUT.mp4`
    # with AAC audio that runs on after the last frame (the container's duration is longer).
    out = with_aac(plain, tmp_path / "aac.mp4")
    with av.open(str(out)) as c:   # the trap: the container is longer than the video
        assert c.duration / 1e6 > 40 / 25 + 0.5
    info = probe(out, 1024, None)
    assert info.fps == 25.0 and info.constant_rate and not info.resampled
    assert info.expected_frames == 40 and count(info) == 40
    # No frame is a copy of its neighbour (a duplicate is a zero-motion pair for training).
    frames = [f.astype(int) for f in read_frames(info)]
    assert min(np.abs(a - b).mean() for a, b in zip(frames, frames[1:])) > 1.0


def test_avi_yields_its_frames(plain, tmp_path):
    out = tmp_path / "clip.avi"
    run("-i", plain, "-c:v", "mjpeg", "-q:v", 3, out)
    info = probe(out, 1024, None)
    assert info.fps == 25.0 and count(info) == 40 and not info.truncated


def test_video_that_starts_after_its_audio(plain, tmp_path):
    out = tmp_path / "late.mp4"
    run("-itsoffset", 0.4, "-i", plain, "-f", "lavfi", "-i", "sine=duration=3",
        "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", out)
    info = probe(out, 1024, None)
    assert info.start_time == pytest.approx(0.4, abs=0.02)
    assert count(info) == 40
    first = next(iter(read_frames(info))).astype(int)
    second = next(iter(read_frames(info, 1))).astype(int)
    assert np.abs(first - second).mean() > 1.0   # the first frame is not padded with copies


def test_variable_rate_file_is_resampled_from_its_first_timestamp(plain, tmp_path):
    # 20 frames at 25 fps, then 20 at 12.5 fps: 2.4 s of video.
    out = tmp_path / "vfr.mkv"
    run("-itsoffset", 0.3, "-i", plain, "-f", "lavfi", "-i", "sine=duration=4",
        "-map", "0:v", "-map", "1:a", "-vf",
        "setpts='(0.3+if(lt(N,20),N*0.04,0.8+(N-20)*0.08))/TB'",
        "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", out)
    info = probe(out, 1024, None)
    assert not info.constant_rate and info.resampled
    assert info.start_time == pytest.approx(0.3, abs=0.05)
    n = count(info)
    assert abs(n - info.expected_frames) <= 2
    assert abs(n / info.fps - 2.4) < 0.15        # the video's own duration, not the audio's
    at25 = probe(out, 1024, 25.0)
    assert abs(count(at25) - 60) <= 2             # 2.4 s at 25 fps, from the first frame on


def test_fps_option_resamples_a_constant_rate_file(plain):
    info = probe(plain, 1024, 10.0)
    assert info.resampled and count(info) == 16 and count(info, 5, 12) == 7


def test_keypoints_line_up_with_an_aac_mp4(plain, tmp_path):
    video = with_aac(plain, tmp_path / "aac.mp4")
    keypoints = write_pose_folder(tmp_path / "openpose", 40, 96, 64)
    result = CliRunner().invoke(cli, ["preprocess", str(video), "-o", str(tmp_path / "ds"),
                                      "--keypoints", str(keypoints)])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["frames"] == 40 and meta["fps"] == 25.0 and meta["truncated"] is None
    assert len(list((tmp_path / "ds" / "pose").glob("*.json"))) == 40
    assert meta["source"]["constant_rate"] and not meta["source"]["resampled"]


def test_truncated_avi_keeps_what_it_holds_and_says_so_once(tmp_path):
    frames = noise_frames(200, w=96, h=64)
    whole = tmp_path / "whole.avi"
    write_video(tmp_path / "whole.mp4", frames)
    run("-i", tmp_path / "whole.mp4", "-c:v", "mjpeg", "-q:v", 3, whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:len(data) // 3])          # a download cut short
    info = probe(cut, 1024, None)
    assert info.truncated and info.header_frames == 200
    assert info.expected_frames == info.packets < 100   # the progress bar's total
    keypoints = write_pose_folder(tmp_path / "openpose", 200, 96, 64)
    result = CliRunner().invoke(cli, ["preprocess", str(cut), "-o", str(tmp_path / "ds"),
                                      "--keypoints", str(keypoints)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "truncated " in line]
    assert len(warnings) == 2, result.output          # the warning and the summary line
    assert "warning: " in warnings[0] and "cut.avi" in warnings[0]
    assert f"of the 200 its header promises" in warnings[0]
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["truncated"]["promised_frames"] == 200
    assert meta["truncated"]["kept"] == meta["frames"] == count(info)
    # A range that ends before the cut is whole: nothing to report.
    first10 = write_pose_folder(tmp_path / "openpose10", 10, 96, 64)
    result = CliRunner().invoke(cli, ["preprocess", str(cut), "-o", str(tmp_path / "ds10"),
                                      "--keypoints", str(first10), "--end", "10"])
    assert result.exit_code == 0 and "truncated file" not in result.output, result.output


def test_mediapipe_chatter_is_filtered_from_stderr():
    """Native log lines from mediapipe's threads vanish; errors and Python output pass."""
    code = r"""
import os, sys
from preprocess.detect import filter_native_logs
filter_native_logs()
os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
os.write(2, b"W0000 00:00:1796156815.003401    7346 inference_feedback_manager.cc:114] Feedback\n")
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written\n")
os.write(2, b"E0000 00:00:1796156815.003401    7346 graph.cc:1] a real error\n")
sys.stderr.write("progress 50%\r")
print("error: the last line", file=sys.stderr)
sys.exit(2)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert done.returncode == 2
    assert done.stderr == (b"E0000 00:00:1796156815.003401    7346 graph.cc:1] a real error\n"
                           b"progress 50%\rerror: the last line\n")
