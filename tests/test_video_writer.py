"""Playable mp4 output: frame count, rate, format, atomic writes, audio, side-by-side."""

import subprocess

import av
import imageio_ffmpeg
import numpy as np
import pytest

from tests.helpers_video import ffmpeg, noise_frames
from vid2vid.errors import UserError
from vid2vid.video_writer import VideoWriter, copy_audio, has_audio, side_by_side


def probe(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return {"codec": v.codec_context.name, "pix_fmt": v.codec_context.pix_fmt,
                "size": (v.codec_context.width, v.codec_context.height),
                "fps": float(v.average_rate),
                "audio": [a.codec_context.name for a in c.streams.audio]}


def test_frames_fps_and_browser_friendly_format(tmp_path):
    out = tmp_path / "sub" / "out.mp4"
    frames = noise_frames(12, w=64, h=48)
    with VideoWriter(out, fps=10, size=(64, 48)) as video:
        for f in frames:
            video.write(f)
    assert video.frames == 12
    n, secs = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert n == 12 and secs == pytest.approx(1.2, abs=0.01)
    info = probe(out)
    assert info == {"codec": "h264", "pix_fmt": "yuv420p", "size": (64, 48), "fps": 10.0,
                    "audio": []}
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")          # +faststart
    assert [p.name for p in out.parent.iterdir()] == ["out.mp4"]
    # The picture survives the encoding (CRF 18).
    gen = imageio_ffmpeg.read_frames(str(out))
    next(gen)
    decoded = np.frombuffer(next(gen), np.uint8).reshape(48, 64, 3)
    gen.close()
    assert np.abs(decoded.astype(int) - frames[0]).mean() < 6


def test_odd_sizes_are_padded_and_ntsc_rates_kept(tmp_path):
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, fps=30000 / 1001, size=(63, 47)) as video:
        for f in noise_frames(5, w=63, h=47):
            video.write(f)
    info = probe(out)
    assert info["size"] == (64, 48)
    assert info["fps"] == pytest.approx(29.97, abs=0.01)


def test_an_interrupted_write_leaves_no_file(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, fps=10, size=(64, 48)) as video:
            for i, f in enumerate(noise_frames(6, w=64, h=48)):
                video.write(f)
                if i == 3:
                    raise KeyboardInterrupt
    assert out.read_bytes() == b"previous result"             # untouched, not truncated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    with pytest.raises(ValueError, match="uint8"):
        with VideoWriter(tmp_path / "bad.mp4", fps=10, size=(64, 48)) as video:
            video.write(np.zeros((48, 64, 3), np.float32))
    assert not (tmp_path / "bad.mp4").exists()


def make_source(path, audio: bool):
    cmd = [ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i",
           "testsrc=size=64x48:rate=10:duration=2"]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, check=True)
    return path


def test_audio_is_copied_when_the_source_has_some(tmp_path):
    src = make_source(tmp_path / "with_audio.mp4", audio=True)
    out = tmp_path / "result.mp4"
    with VideoWriter(out, fps=10, size=(64, 48), audio_from=src) as video:
        for f in noise_frames(15, w=64, h=48):
            video.write(f)
    info = probe(out)
    assert info["audio"] == ["aac"] and info["codec"] == "h264"
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 15
    with av.open(str(out)) as c:
        assert float(c.duration / 1e6) == pytest.approx(1.5, abs=0.1)   # audio cut to the video
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.mp4", "with_audio.mp4"]
    # Audio from 1.2 s on: it ends 0.7 s before the video, which keeps all its frames.
    with VideoWriter(out, fps=10, size=(64, 48), audio_from=src, audio_start=1.2) as video:
        for f in noise_frames(15, w=64, h=48):
            video.write(f)
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 15
    with av.open(str(out)) as c:
        audio = c.streams.audio[0]
        assert float(audio.duration * audio.time_base) == pytest.approx(0.8, abs=0.1)


def test_no_audio_stream_when_the_source_has_none(tmp_path):
    src = make_source(tmp_path / "silent.mp4", audio=False)
    assert not has_audio(src) and has_audio(make_source(tmp_path / "a.mp4", audio=True))
    video = tmp_path / "v.mp4"
    with VideoWriter(video, fps=10, size=(64, 48)) as w:
        for f in noise_frames(5, w=64, h=48):
            w.write(f)
    assert copy_audio(video, src, tmp_path / "out.mp4") is False
    assert probe(tmp_path / "out.mp4")["audio"] == []
    assert copy_audio(video, tmp_path / "a.mp4", video) is True       # in place
    assert probe(video)["audio"] == ["aac"]
    with pytest.raises(UserError, match="cannot be opened"):
        (tmp_path / "junk.mp4").write_bytes(b"not a video")
        copy_audio(video, tmp_path / "junk.mp4", tmp_path / "o.mp4")


def test_side_by_side_resizes_labels_and_evens():
    a = np.full((48, 64, 3), 200, np.uint8)
    b = np.full((24, 31), 50, np.uint8)                        # grey, half height, odd width
    out = side_by_side([a, b], ["real", "generated"])
    strip = 16
    assert out.shape == (48 + strip, 64 + 62, 3)
    assert (out[strip:, :64] == 200).all() and (out[strip:, 64:126] == 50).all()
    assert out[:strip, :64].max() > 200 and out[:strip, 64:].max() > 200   # both labels drawn
    plain = side_by_side([a, a[:, :33]])
    assert plain.shape == (48, 98, 3) and plain.shape[1] % 2 == 0
    with pytest.raises(ValueError, match="labels"):
        side_by_side([a], ["x", "y"])
