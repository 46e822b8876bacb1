"""Reading videos and frame folders as a stream of RGB frames.

Video files are decoded by the ffmpeg binary that imageio-ffmpeg ships, in a
separate process: it applies rotation metadata (ffmpeg autorotates), resizes
and resamples the frame rate itself, so decoding runs beside the Python work
and memory stays flat however long the video is. Folders of frames (jpg/png)
are read in natural sort order (`frame2.png` before `frame10.png`).

Timing comes from PyAV, which reads the video stream's packets (no decoding,
a fraction of a second for minutes of video) before anything is decoded:

- A constant-rate video yields exactly its own frames at the stream's own
  rate (never an average over the container, which audio lengthens), with no
  copy added at either end: a duplicated frame would shift every later frame
  against OpenPose JSON made from the same file and be a zero-motion pair for
  the temporal losses.
- A variable-rate video (a phone's, a screen recording) and `--fps` are
  resampled to a constant rate, starting at the first video timestamp.
- `VideoInfo.start_time` is where the first frame sits in the container, so
  a video written from these frames can put the source's audio back in sync.
- `VideoInfo.header_frames` is what the container promises; fewer packets
  than that is a truncated file, reported by preprocessing.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from vid2vid.errors import UserError

# imageio-ffmpeg logs a warning whenever frames are read at another size than the
# source's, which is what --max-size asks for.
logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)

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
    source_fps: float        # the stream's own rate (for a variable-rate file: its average)
    size: tuple[int, int]    # (w, h) of the frames we yield
    source_size: tuple[int, int]  # (w, h) of the source after rotation
    expected_frames: int     # frames read_frames will yield (exact for folders and
                             # constant-rate videos, an estimate when resampling)
    rotation: int            # degrees of rotation metadata that was applied
    start_time: float = 0.0  # seconds from the container's start to the first frame
    constant_rate: bool = True   # the stream's frames are evenly spaced
    header_frames: int = 0   # frames the container's header promises (0: it does not say)
    packets: int = 0         # video packets actually in the file

    @property
    def resampled(self) -> bool:
        """Whether frames are resampled in time (variable rate, or --fps other than the rate)."""
        if self.is_folder:
            return self.fps != self.source_fps
        return not self.constant_rate or abs(self.fps - self.source_fps) > 1e-3 * self.source_fps

    @property
    def truncated(self) -> bool:
        """The file holds clearly fewer frames than its header promises (a cut download)."""
        if self.is_folder or not self.header_frames:
            return False
        return self.packets < self.header_frames - max(2, 0.01 * self.header_frames)


@dataclass(frozen=True)
class StreamTiming:
    """The video stream's timing, read from its packets by PyAV."""

    rate: float
    constant: bool
    start_time: float
    header_frames: int
    packets: int


def stream_timing(path: Path) -> StreamTiming:
    """Frame rate, regularity, first timestamp and packet count of `path`'s video stream.

    Only packets are read (no decoding). Regular means that nearly every
    interval between consecutive timestamps is the stream's frame period: a
    few irregular intervals (an encoder's first B-frame, one dropped frame)
    do not make a file variable-rate, and resampling it would add copies.
    """
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise UserError(f"{path} is not a video PyAV can open ({e}); pass a video file "
                        "(mp4, avi, mov, mkv, webm) or a folder of frames") from None
    with container:
        if not container.streams.video:
            raise UserError(f"{path} has no video stream; pass a video file or a folder of frames")
        stream = container.streams.video[0]
        tb = float(stream.time_base)
        pts = []
        try:
            for packet in container.demux(stream):
                if packet.pts is not None and packet.size:
                    pts.append(packet.pts)
        except (av.error.FFmpegError, OSError):
            pass  # a truncated or damaged tail: the packets before it are what the file holds
        container_start = (container.start_time or 0) / 1e6
        nominal = float(stream.guessed_rate or stream.base_rate or stream.average_rate or 0)
        header = int(stream.frames or 0)
        if not header and stream.duration and nominal:
            header = int(round(stream.duration * tb * nominal))
    times = np.sort(np.asarray(pts, np.float64)) * tb
    if len(times) < 2:
        rate = nominal or FOLDER_FPS
        return StreamTiming(rate, True, float(times[0] - container_start) if len(times) else 0.0,
                            header, len(times))
    intervals = np.diff(times)
    period = float(np.median(intervals))
    if nominal and abs(1.0 / nominal - period) <= 0.02 * period:
        rate = nominal           # the header's exact rate (29.97 stays 30000/1001)
    else:
        rate = 1.0 / period
    irregular = np.abs(intervals - 1.0 / rate) > 0.1 / rate
    constant = float(irregular.mean()) <= 0.05
    if not constant:
        rate = float(stream_average(times))
    return StreamTiming(rate, constant, float(times[0] - container_start), header, len(times))


def stream_average(times: np.ndarray) -> float:
    """Mean frame rate over a sorted array of frame timestamps (seconds)."""
    span = float(times[-1] - times[0])
    return (len(times) - 1) / span if span > 0 else FOLDER_FPS


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
                         n, 0, header_frames=len(images), packets=len(images))

    import imageio_ffmpeg

    try:
        # ffmpeg's own view of the first frame: its size after autorotation.
        gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(gen)
        gen.close()
    except (OSError, RuntimeError, StopIteration, ValueError) as e:
        first_line = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise UserError(f"{path} is not a video ffmpeg can decode ({first_line}); "
                        "pass a video file (mp4, avi, mov, mkv, webm) or a folder of frames") from None
    w, h = meta["size"]
    timing = stream_timing(path)
    out_fps = fps or timing.rate
    info = VideoInfo(path, False, out_fps, timing.rate, fit_size(w, h, max_size), (w, h),
                     timing.packets, int(meta.get("rotate") or 0), timing.start_time,
                     timing.constant, timing.header_frames, timing.packets)
    if info.resampled:
        # The fps filter emits one frame per output period over the stream's span.
        span = timing.packets / timing.rate
        info = dataclasses.replace(info, expected_frames=int(round(span * out_fps)))
    return info


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

    filters = []
    if info.resampled:
        # A constant output rate from the first video frame on (not from the container's
        # zero, which audio may set earlier: that would repeat the first frame).
        filters.append(f"fps=fps={info.fps:.6f}:start_time={info.start_time:.6f}")
    if (w, h) != info.source_size:
        filters.append(f"scale={w}:{h}:flags=area")
    # passthrough: every decoded frame once, none repeated or dropped to fill the
    # container's duration (the fps filter, when used, already set the timing).
    output_params = ["-fps_mode", "passthrough"]
    if filters:
        output_params += ["-vf", ",".join(filters)]
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
