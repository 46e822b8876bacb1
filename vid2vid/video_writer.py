"""Writing videos people can play: H.264 mp4, the source's audio, side-by-side comparisons.

`VideoWriter` pipes RGB frames one at a time into the ffmpeg binary that
imageio-ffmpeg bundles (no system ffmpeg needed), so memory stays flat for
any length. The file is what browsers, phones and editors all play: H.264
(libx264, CRF 18, which looks like the input), yuv420p (4:2:0 chroma; other
pixel formats do not play in browsers or QuickTime), even width and height
(4:2:0 needs them; an odd size is padded by repeating the last row/column),
and `-movflags +faststart` (the index sits before the data, so a browser starts
playing before the whole file has arrived).

Every file is written under a hidden temporary name next to the target and
renamed into place only when complete, so Ctrl-C, an exception or a full disk
never leaves a truncated mp4 under the final name (a `kill -9` can leave the
hidden `.NAME.partial` files, which the next run overwrites).

Audio: `copy_audio` (or `VideoWriter(..., audio_from=SRC)`) muxes the first
audio stream of another file into the video without re-encoding the video;
the audio is encoded to AAC (mp4's usual audio codec; the source may hold PCM
or anything else) and cut to the video's length.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

from vid2vid.errors import UserError

__all__ = ["VideoWriter", "copy_audio", "has_audio", "side_by_side"]


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _partial(path: Path, tag: str = "partial") -> Path:
    return path.with_name(f".{path.name}.{tag}")


def _prepare_output(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the folder of {path} ({e.strerror}); choose another "
                        "output path") from None
    if not os.access(path.parent, os.W_OK):
        raise UserError(f"{path.parent} is not writable; choose another output path")


def _ffmpeg_failed(what: str, path: Path, stderr: str) -> Exception:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else "no message"
    if "No space left" in stderr:
        return UserError(f"disk full while writing {path}; free some space and run again")
    return RuntimeError(f"ffmpeg failed {what} {path}: {last}")


def _fps_arg(fps: float) -> str:
    # A rational keeps 29.97 as 30000/1001 instead of a rounded decimal.
    return str(Fraction(fps).limit_denominator(1001))


class VideoWriter:
    """Writes RGB uint8 frames to an H.264 mp4, one at a time, atomically.

        with VideoWriter("out.mp4", fps=25, size=(512, 512)) as video:
            for frame in frames:          # [H, W, 3] uint8 RGB
                video.write(frame)

    Args:
        path: the mp4 to write (its folder is created).
        fps: frames per second.
        size: (width, height) of the frames; odd sides are padded to even.
        crf: x264 constant rate factor (lower = better and bigger; 18 looks lossless).
        preset: x264 speed preset.
        audio_from: a video or audio file whose first audio stream is copied in
            (nothing is added when it has none).
        audio_start: seconds into `audio_from` where the audio starts (the
            position of the first frame, when the frames come from a range).

    Leaving the `with` block normally finishes the file and renames it into
    place; leaving it by an exception (Ctrl-C included) deletes it. Without
    `with`, call `close()` or `abort()`.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], crf: int = 18,
                 preset: str = "medium", audio_from: str | Path | None = None,
                 audio_start: float = 0.0):
        self.path = Path(path)
        if not (fps > 0 and np.isfinite(fps)):
            raise ValueError(f"fps must be a positive number, got {fps}")
        w, h = (int(v) for v in size)
        if w < 1 or h < 1:
            raise ValueError(f"size must be (width, height) >= 1, got {size}")
        self.fps = float(fps)
        self.size = (w, h)
        self.encoded_size = (w + w % 2, h + h % 2)
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.audio_start = audio_start
        self.frames = 0
        self._crf, self._preset = crf, preset
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        self._done = False
        self._tmp = _partial(self.path)

    def __enter__(self) -> "VideoWriter":
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self) -> None:
        """Starts ffmpeg (done by `with`, or by the first `write`)."""
        if self._proc is not None:
            return
        if self._done:
            raise ValueError(f"{self.path} is already closed; make a new VideoWriter")
        _prepare_output(self.path)
        if self.audio_from is not None and not self.audio_from.exists():
            raise UserError(f"{self.audio_from} does not exist; pass the source video to copy "
                            "its audio from, or none")
        w, h = self.encoded_size
        cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
               "-r", _fps_arg(self.fps), "-i", "-",
               "-an", "-c:v", "libx264", "-preset", self._preset, "-crf", str(self._crf),
               "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", str(self._tmp)]
        # stderr goes to a file, not a pipe: a chatty ffmpeg can never block on a full pipe.
        self._stderr = tempfile.TemporaryFile()
        # Its own session: Ctrl-C reaches only Python, which then aborts cleanly (the
        # KeyboardInterrupt, not an ffmpeg "broken pipe", is what the user sees).
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=self._stderr, start_new_session=True)

    def write(self, frame: np.ndarray) -> None:
        """Appends one RGB uint8 `[H, W, 3]` frame of the writer's size."""
        w, h = self.size
        if frame.dtype != np.uint8 or frame.shape != (h, w, 3):
            raise ValueError(f"frame must be uint8 [{h}, {w}, 3] RGB, got {frame.dtype} "
                             f"{list(frame.shape)}")
        if self._proc is None:
            self.open()
        if self.encoded_size != self.size:
            frame = np.pad(frame, ((0, self.encoded_size[1] - h), (0, self.encoded_size[0] - w),
                                   (0, 0)), mode="edge")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError:
            err = self._read_stderr()
            self.abort()
            raise _ffmpeg_failed("writing", self.path, err) from None
        self.frames += 1

    def _read_stderr(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def close(self) -> Path:
        """Finishes the file, adds the audio, renames it into place; returns the path."""
        if self._proc is None:
            self.open()
        if self.frames == 0:
            self.abort()
            raise ValueError(f"no frames were written to {self.path}")
        proc, self._proc = self._proc, None
        self._done = True
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = proc.wait()
        err = self._read_stderr()
        self._stderr.close()
        self._stderr = None
        if rc != 0:
            self._tmp.unlink(missing_ok=True)
            raise _ffmpeg_failed("encoding", self.path, err)
        try:
            if self.audio_from is not None:
                copy_audio(self._tmp, self.audio_from, self.path, self.audio_start)
            else:
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        """Stops ffmpeg and deletes the partial file; the final path is left untouched."""
        proc, self._proc = self._proc, None
        self._done = True
        if proc is not None:
            proc.kill()
            proc.wait()
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._tmp.unlink(missing_ok=True)


def has_audio(path: str | Path) -> bool:
    """Whether a media file has at least one audio stream (UserError if it cannot be opened)."""
    import av

    try:
        with av.open(str(path)) as container:
            return len(container.streams.audio) > 0
    except (av.error.FFmpegError, OSError) as e:
        raise UserError(f"{path} cannot be opened as a media file ({e}); pass a video or "
                        "audio file") from None


def _video_duration(path: Path) -> float:
    """Seconds of the first video stream of `path`."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration or 0) / 1e6


def copy_audio(video: str | Path, audio_source: str | Path, out: str | Path,
               audio_start: float = 0.0) -> bool:
    """Writes `out`: `video`'s picture (not re-encoded) + `audio_source`'s first audio stream.

    The audio is encoded to AAC, starts `audio_start` seconds into the source,
    and is cut to the video's length (the video is never shortened). When the source has no audio, `out` is
    simply a copy of `video`. Atomic like `VideoWriter`; `out` may be `video`.
    Returns whether audio was added.
    """
    video, audio_source, out = Path(video), Path(audio_source), Path(out)
    if not video.exists():
        raise UserError(f"{video} does not exist")
    _prepare_output(out)
    tmp = _partial(out, "audio.partial")   # not VideoWriter's name: `video` may be that file
    try:
        if not has_audio(audio_source):
            if video.resolve() != out.resolve():
                shutil.copyfile(video, tmp)
                os.replace(tmp, out)
            return False
        # The audio is cut to the video's duration (never the other way round, as
        # -shortest would: a source whose audio ends early must not lose frames).
        cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-i", str(video), "-ss", f"{max(0.0, audio_start):.6f}",
               "-t", f"{_video_duration(video):.6f}", "-i", str(audio_source),
               "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", "192k",
               "-movflags", "+faststart", "-f", "mp4", str(tmp)]
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        if result.returncode != 0:
            raise _ffmpeg_failed("adding audio to", out, result.stderr.decode(errors="replace"))
        os.replace(tmp, out)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def side_by_side(frames: Sequence[np.ndarray], labels: Sequence[str] | None = None,
                 height: int | None = None) -> np.ndarray:
    """Frames placed left to right at one height, each with its label in a strip above.

    Args:
        frames: RGB uint8 `[H, W, 3]` or grey `[H, W]` images of any sizes; each
            is resized to `height` (default: the first frame's), aspect kept.
        labels: one text per frame (e.g. "source", "pose", "result"), or None for
            no strip.
        height: the panels' height in pixels.

    Returns:
        RGB uint8 `[H', W', 3]` with even H' and W' (ready for `VideoWriter`).
    """
    import cv2

    if not frames:
        raise ValueError("side_by_side needs at least one frame")
    if labels is not None and len(labels) != len(frames):
        raise ValueError(f"{len(labels)} labels for {len(frames)} frames")
    panels = []
    for f in frames:
        if f.dtype != np.uint8 or f.ndim not in (2, 3) or (f.ndim == 3 and f.shape[2] != 3):
            raise ValueError(f"frames must be uint8 [H, W, 3] or [H, W], got {f.dtype} "
                             f"{list(f.shape)}")
        panels.append(np.repeat(f[..., None], 3, axis=2) if f.ndim == 2 else f)
    h = int(height or panels[0].shape[0])
    resized = []
    for p in panels:
        w = max(1, int(round(p.shape[1] * h / p.shape[0])))
        if p.shape[:2] != (h, w):
            interp = cv2.INTER_AREA if p.shape[0] > h else cv2.INTER_LINEAR
            p = cv2.resize(p, (w, h), interpolation=interp)
        resized.append(p)
    body = np.concatenate(resized, axis=1)
    if labels is not None:
        strip_h = max(16, int(round(h / 14)))
        strip = np.zeros((strip_h, body.shape[1], 3), np.uint8)
        x = 0
        for p, text in zip(resized, labels):
            _draw_label(strip, str(text), x, p.shape[1])
            x += p.shape[1]
        body = np.concatenate([strip, body], axis=0)
    pad_h, pad_w = body.shape[0] % 2, body.shape[1] % 2
    if pad_h or pad_w:
        body = np.pad(body, ((0, pad_h), (0, pad_w), (0, 0)))
    return np.ascontiguousarray(body)


def _draw_label(strip: np.ndarray, text: str, x0: int, width: int) -> None:
    """White text centred in [x0, x0 + width) of a black strip, shrunk to fit."""
    import cv2

    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    strip_h = strip.shape[0]
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, thickness)
    scale = min(0.6 * strip_h / max(th, 1), 0.9 * width / max(tw, 1))
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    org = (x0 + (width - tw) // 2, (strip_h + th) // 2)
    cv2.putText(strip, text, org, font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
