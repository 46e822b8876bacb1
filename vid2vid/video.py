"""Reading videos and frame folders as a stream of RGB frames.

Video files are decoded by the ffmpeg binary that imageio-ffmpeg ships, in a
separate process: it applies rotation metadata (ffmpeg autorotates), resizes
and resamples the frame rate itself, so decoding runs beside the Python work
and memory stays flat however long the video is. Folders of frames (jpg/png)
are read in natural sort order (`frame2.png` before `frame10.png`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from vid2vid.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
FOLDER_FPS = 25.0  # frame folders carry no rate; this is the default when --fps is not given


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value: a2 < a10."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: natural_key(p.name))


def fit_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """(w, h) with the longest side at most `max_size`, aspect kept, never upscaled, even sides.

    Even sides keep H.264/yuv420p encoders happy when frames are turned back into video.
    """
    scale = min(1.0, max_size / max(width, height))
    w = max(2, int(round(width * scale / 2)) * 2)
    h = max(2, int(round(height * scale / 2)) * 2)
    return w, h


@dataclass(frozen=True)
class Position:
    """A --start/--end value: a time in seconds or a frame number."""

    seconds: float | None = None
    frame: int | None = None

    def to_frame(self, fps: float) -> int:
        if self.frame is not None:
            return self.frame
        return int(math.floor(self.seconds * fps + 1e-6))


def parse_position(text: str | None, option: str) -> Position | None:
    """'300' -> frame 300; '12.5', '12s', '1:02.5', '0:01:02' -> seconds."""
    if text is None:
        return None
    t = text.strip().lower()
    try:
        if re.fullmatch(r"\d+", t):
            return Position(frame=int(t))
        if t.endswith("s"):
            return Position(seconds=float(t[:-1]))
        if ":" in t:
            seconds = 0.0
            for part in t.split(":"):
                seconds = seconds * 60 + float(part)
            return Position(seconds=seconds)
        return Position(seconds=float(t))
    except ValueError:
        raise UserError(
            f"{option} {text!r} is neither seconds (12.5, 12s, 1:02.5) nor a frame number (300)"
        ) from None


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a source before decoding it."""

    path: Path
    is_folder: bool
    fps: float               # frame rate of the frames we yield (after --fps)
    source_fps: float
    size: tuple[int, int]    # (w, h) of the frames we yield
    source_size: tuple[int, int]  # (w, h) of the source after rotation
    expected_frames: int     # estimate from the container (exact for folders)
    rotation: int            # degrees of rotation metadata that was applied


def probe(path: Path, max_size: int, fps: float | None) -> VideoInfo:
    """Opens `path` (video file or frame folder) far enough to know sizes and rates."""
    if not path.exists():
        raise UserError(f"{path} does not exist; check the path")
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise UserError(f"{path} is a folder without .jpg/.png frames; pass a video file "
                            "or a folder of frames")
        import cv2

        first = cv2.imread(str(images[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise UserError(f"{images[0]} is not a readable image; remove or re-export it")
        h, w = first.shape[:2]
        out_fps = fps or FOLDER_FPS
        n = len(images) if fps is None else int(len(images) * out_fps / FOLDER_FPS)
        return VideoInfo(path, True, out_fps, FOLDER_FPS, fit_size(w, h, max_size), (w, h),
                         n, 0)

    import imageio_ffmpeg

    try:
        gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(gen)
        gen.close()
    except (OSError, RuntimeError, StopIteration, ValueError) as e:
        first_line = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise UserError(f"{path} is not a video ffmpeg can decode ({first_line}); "
                        "pass a video file (mp4, avi, mov, mkv, webm) or a folder of frames") from None
    w, h = meta["size"]
    source_fps = float(meta.get("fps") or 0) or FOLDER_FPS
    duration = float(meta.get("duration") or 0)
    out_fps = fps or source_fps
    expected = int(round(duration * out_fps)) if duration > 0 else 0
    return VideoInfo(path, False, out_fps, source_fps, fit_size(w, h, max_size), (w, h),
                     expected, int(meta.get("rotate") or 0))


def read_frames(info: VideoInfo, first: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Yields RGB uint8 `[H, W, 3]` frames `first .. stop-1` at `info.size` and `info.fps`.

    Frame numbers count frames after resampling to `info.fps`. Frames before
    `first` are decoded and dropped (decoding is cheap next to detection).
    """
    w, h = info.size
    if info.is_folder:
        import cv2

        images = list_images(info.path)
        step = FOLDER_FPS / info.fps
        n = int(len(images) / step)
        for i in range(first, n if stop is None else min(n, stop)):
            path = images[int(i * step)]
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise UserError(f"{path} is not a readable image; remove or re-export it")
            if bgr.shape[1::-1] != info.source_size:
                raise UserError(f"{path} is {bgr.shape[1]}x{bgr.shape[0]} but the first frame is "
                                f"{info.source_size[0]}x{info.source_size[1]}; all frames of a "
                                "folder must have one size")
            if (bgr.shape[1], bgr.shape[0]) != (w, h):
                bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
            yield np.ascontiguousarray(bgr[..., ::-1])
        return

    import imageio_ffmpeg

    # Always resample to a constant rate: a file whose timestamps have holes (a cut, a
    # variable-rate phone video) otherwise decodes to more frames than its rate says,
    # and every later stage would see the wrong time per frame.
    filters = [f"fps={info.fps:.6f}"]
    if (w, h) != info.source_size:
        filters.append(f"scale={w}:{h}:flags=area")
    output_params = ["-vf", ",".join(filters)] if filters else []
    gen = imageio_ffmpeg.read_frames(str(info.path), pix_fmt="rgb24", output_params=output_params)
    try:
        meta = next(gen)
        if tuple(meta["size"]) != (w, h):
            raise RuntimeError(f"ffmpeg produced {meta['size']} instead of {(w, h)}")
        for i, buf in enumerate(gen):
            if stop is not None and i >= stop:
                break
            if i < first:
                continue
            yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
    except (OSError, RuntimeError) as e:
        raise UserError(f"{info.path} could not be decoded ({str(e).strip().splitlines()[-1]}); "
                        "re-encode it, e.g. ffmpeg -i IN -c:v libx264 fixed.mp4") from None
    finally:
        gen.close()
