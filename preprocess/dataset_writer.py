"""What every preprocessing pipeline shares: the options and the writing of a dataset directory.

The three pipelines (`preprocess.pose_pipeline`, `preprocess.face`,
`preprocess.labels`) write the layout of `vid2vid.dataset_dir` the same way,
with the pieces here: the check of the output folder against the input's
identity (content hash + options), the folders, the journal `.progress.jsonl`
(a frame's line is appended only once all its files are renamed into place, so
a rerun resumes from the first uncommitted frame and never trusts a
half-written file), atomic image writes, the decoder thread, the meta.json
skeleton and its "complete" block (written last), the truncation check, the
warnings of a run and the one-line summary.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from vid2vid import __version__
from vid2vid.dataset_dir import (ALL_SUBDIRS, FORMAT_VERSION, META, PROGRESS, RAW_POSES,
                                 SUBDIRS, read_meta, write_json_atomic)
from vid2vid.errors import UserError
from vid2vid.smoothing import OneEuroParams
from vid2vid.video import VideoInfo, list_images, parse_position, probe, read_frames

JPEG_QUALITY = 95


@dataclass(frozen=True)
class PreprocessOptions:
    """Everything that changes what `preprocess` writes (recorded in meta.json)."""

    max_size: int = 1024
    fps: float | None = None
    start: str | None = None
    end: str | None = None
    keypoints: str | None = None
    flow: str | None = "dis"
    smooth: bool | None = None      # None: on for pose (zero phase), off for face (causal)
    smoothing: OneEuroParams = field(default_factory=OneEuroParams)
    max_gap: int = 5
    previews: bool = False
    coarse_hands: bool = True       # pose: the body model's hand points where hands are missed
    coarse_face: bool = True        # pose: the body model's face points where the face is missed
    task: str = "pose"              # pose | face | labels (vid2vid.tasks)
    crop_size: int = 256            # face: side of the stored square face crop, pixels
    labels: str | None = None       # labels: folder of per-frame 8-bit class-ID PNGs
    instances: str | None = None    # labels: optional folder of per-frame instance-ID PNGs
    num_classes: int | None = None  # labels: None = Cityscapes' 35
    fg_classes: tuple[int, ...] | None = None  # labels: None = Cityscapes' persons and vehicles

    def __post_init__(self) -> None:
        if self.smooth is None:     # the pose default since the twenty-second ablation
            object.__setattr__(self, "smooth", self.task == "pose")

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in ("keypoints", "labels", "instances"):
            if d[name] is not None:
                d[name] = str(Path(d[name]).resolve())
        if d["fg_classes"] is not None:
            d["fg_classes"] = list(d["fg_classes"])
        if self.smooth and self.task == "pose":   # not the causal filter of older datasets
            d["smoothing"]["phase"] = "zero"
        # Only the options of the chosen task identify a dataset, so pose datasets made
        # before tasks existed still match their options.
        irrelevant = {"pose": ("task", "crop_size", "labels", "instances", "num_classes",
                               "fg_classes"),
                      "face": ("keypoints", "labels", "instances", "num_classes", "fg_classes",
                               "coarse_hands", "coarse_face"),
                      "labels": ("keypoints", "crop_size", "smooth", "smoothing",
                                 "coarse_hands", "coarse_face")}[self.task]
        # Datasets made before coarse hands (face) existed have none, and match
        # --no-coarse-hands (--no-coarse-face); imported keypoints are not detected, so
        # the options say nothing about them.
        for name in ("coarse_hands", "coarse_face"):
            if self.task == "pose" and (not getattr(self, name) or self.keypoints is not None):
                irrelevant += (name,)
        for name in irrelevant:
            d.pop(name)
        return d


@dataclass
class Summary:
    out: Path
    frames: int
    found: int
    interpolated: int
    seconds: float
    skipped: bool = False
    subject: str = "person"     # what was looked for: "person", or "face" for --task face
    truncated: dict | None = None  # meta.json's "truncated" record

    @classmethod
    def already_complete(cls, out: Path, meta: dict, t0: float) -> "Summary":
        """The summary of a finished dataset found again (nothing done)."""
        counts = meta["counts"]
        return cls(out, meta["frames"], counts["found"], counts["interpolated"],
                   time.time() - t0, skipped=True, truncated=meta.get("truncated"))

    def truncation_note(self) -> str:
        """"; truncated file: ..." for a summary line, or "" for a whole file."""
        if not self.truncated:
            return ""
        return (f"; truncated file: {self.truncated['source_frames']} of the "
                f"{self.truncated['promised_frames']} frames its header promises")

    def line(self) -> str:
        note = self.truncation_note()
        if self.skipped:
            return f"{self.out}: already complete ({self.frames} frames{note}); nothing to do"
        pct = 100.0 * self.found / max(self.frames, 1)
        fps = self.frames / max(self.seconds, 1e-9)
        return (f"{self.out}: {self.frames} frames, {self.subject} found in {pct:.1f}% "
                f"({self.interpolated} interpolated), {self.seconds:.1f} s, "
                f"{fps:.1f} frames/s{note}")


def check_truncation(source: Path, info: VideoInfo, kept: int, first: int, stop: int | None,
                     warn) -> dict | None:
    """meta.json's "truncated" record when the file ends before its header says (else None).

    A cut download still holds good frames, so they are kept and the run
    succeeds; `warn` says so once, naming the file. A range that ends before
    the cut (--end) is not affected and gets no record.
    """
    if not info.truncated or (stop is not None and first + kept >= stop):
        return None
    seconds = info.packets / max(info.source_fps, 1e-9)
    warn(f"{source} ends after {info.packets} frames ({seconds:.1f} s) of the "
         f"{info.header_frames} its header promises (a truncated or damaged file); kept the "
         f"{kept} frames decoded; re-download or re-encode it for the rest")
    return {"source_frames": info.packets, "promised_frames": info.header_frames,
            "seconds": round(seconds, 3), "kept": kept}


def input_sha256(path: Path) -> str:
    h = hashlib.sha256()
    files = list_images(path) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"vid2vid": __version__}
    for name in ("mediapipe", "opencv-python-headless", "numpy", "imageio-ffmpeg", "torch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def prepare_output(out: Path, identity: dict, overwrite: bool) -> dict | None:
    """Checks `out` against this input; returns the existing meta when it can be reused."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file, not a folder; choose another output with -o")
    existing = read_meta(out) if out.is_dir() else None
    if existing is None and out.is_dir() and any(out.iterdir()) and not overwrite:
        if any((out / d).exists() for d in ALL_SUBDIRS):
            raise UserError(f"{out} holds dataset files but no meta.json; pass --overwrite to "
                            "replace them or -o to write elsewhere")
    if existing is not None:
        same = (existing.get("source", {}).get("sha256") == identity["sha256"]
                and existing.get("options") == identity["options"])
        if same:
            return existing
        if not overwrite:
            what = ("another video's dataset ("
                    f"{existing.get('source', {}).get('path', '?')})"
                    if existing.get("source", {}).get("sha256") != identity["sha256"]
                    else "a dataset of this video made with other options")
            raise UserError(f"{out} holds {what}; pass --overwrite to replace it or -o to "
                            "write elsewhere")
    if overwrite and out.is_dir():
        clear_dataset(out)
    return None


def clear_dataset(out: Path) -> None:
    """Removes every folder and file a preprocessing run of any task writes into `out`."""
    for d in ALL_SUBDIRS:
        shutil.rmtree(out / d, ignore_errors=True)
    for f in (META, PROGRESS, RAW_POSES):
        (out / f).unlink(missing_ok=True)


def make_dirs(out: Path, previews: bool, folders: tuple[str, ...] = SUBDIRS) -> None:
    """Creates the dataset's folders and checks `out` is writable (one-line errors)."""
    try:
        for d in (*folders, *(("maps",) if previews else ())):
            (out / d).mkdir(parents=True, exist_ok=True)
        probe_file = out / ".write_test"
        probe_file.write_bytes(b"ok")
        probe_file.unlink()
    except PermissionError:
        raise UserError(f"cannot write to {out} (permission denied); choose another folder "
                        "with -o") from None
    except OSError as e:
        if e.errno == 28:
            raise
        raise UserError(f"cannot write to {out} ({e.strerror}); choose another folder "
                        "with -o") from None


def read_journal(out: Path) -> list[str]:
    """Statuses of the frames already committed (a torn last line is ignored)."""
    path = out / PROGRESS
    if not path.exists():
        return []
    statuses = []
    with open(path) as f:
        for expected, line in enumerate(f):
            try:
                entry = json.loads(line)
            except ValueError:
                break
            if entry.get("i") != expected:
                break
            statuses.append(entry["status"])
    return statuses


class Journal:
    """`.progress.jsonl`, appended to: a frame's line goes in only once all its files are
    in place, in frame order (`read_journal` reads it back on the next run)."""

    def __init__(self, out: Path):
        self._file = open(out / PROGRESS, "a")

    def commit(self, k: int, status: str) -> None:
        self._file.write(json.dumps({"i": k, "status": status}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def imwrite_atomic(path: Path, image: np.ndarray, params=()) -> None:
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    if not cv2.imwrite(str(tmp), image, list(params)):
        raise OSError(f"could not write {tmp}")
    os.replace(tmp, path)


class FrameDecoder(threading.Thread):
    """Runs the frame reader in its own thread, handing frames over through a small queue."""

    def __init__(self, info: VideoInfo, first: int, stop: int | None):
        super().__init__(daemon=True)
        self.info, self.first, self.stop_at = info, first, stop
        self.frames: queue.Queue = queue.Queue(maxsize=16)
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            for rgb in read_frames(self.info, self.first, self.stop_at):
                while not self.halt.is_set():
                    try:
                        self.frames.put(rgb, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self.halt.is_set():
                    return
            self.frames.put(None)
        except BaseException as e:  # handed to the main thread, which raises it
            self.frames.put(e)

    def __iter__(self):
        while True:
            item = self.frames.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def end_pass(decoder: FrameDecoder, pool: ThreadPoolExecutor, journal: Journal, bar) -> None:
    """Closes a writing pass however it ended: the decoder stops, the writers finish the
    frames they started (queued ones are dropped: the journal never named them), then
    the journal and the progress bar close."""
    decoder.halt.set()
    pool.shutdown(wait=True, cancel_futures=True)
    journal.close()
    bar.close()


def probe_range(source: Path, options: PreprocessOptions) -> tuple[VideoInfo, int, int | None]:
    """The input's decoding info and the frame range [first, stop) of --start/--end."""
    info = probe(source, options.max_size, options.fps)
    start = parse_position(options.start, "--start")
    end = parse_position(options.end, "--end")
    first = start.to_frame(info.fps) if start else 0
    stop = end.to_frame(info.fps) if end else None
    if stop is not None and stop <= first:
        raise UserError(f"--end ({options.end}) is not after --start ({options.start or 0})")
    return info, first, stop


def identify(source: Path, out: Path, options: PreprocessOptions, overwrite: bool
             ) -> tuple[dict, dict | None]:
    """The input's identity (content hash + options) and, when `out` already holds the
    dataset of that identity, its meta.json (see `prepare_output`)."""
    identity = {"sha256": input_sha256(source), "options": options.to_dict()}
    return identity, prepare_output(out, identity, overwrite)


def base_meta(task: str, source: Path, info: VideoInfo, identity: dict, first: int,
              stop: int | None, flow_name: str | None, size: tuple[int, int] | None = None
              ) -> dict:
    """The meta.json keys every task writes (the task adds its own block, e.g. "pose")."""
    return {
        "format": "vid2vid-dataset",
        "version": FORMAT_VERSION,
        "complete": False,
        "task": task,
        "source": {"path": str(source.resolve()), "sha256": identity["sha256"],
                   "kind": "frames" if info.is_folder else "video", "fps": info.source_fps,
                   "size": list(info.source_size), "rotation": info.rotation,
                   # where frame 0 sits in the container, and whether frames were resampled
                   "start_time": round(info.start_time, 6), "constant_rate": info.constant_rate,
                   "resampled": info.resampled},
        "fps": info.fps,
        "size": list(size or info.size),
        "range": {"first": first, "stop": stop},
        "options": identity["options"],
        "flow": {
            "method": flow_name and ("dis-medium" if flow_name == "dis" else "raft-large"),
            "direction": "backward: flow/N maps frame N to frame N-1, "
                         "frame_N[p] ~ frame_N-1[p + flow_N[p]]; frame 0 has none",
            "encoding": "KITTI 16-bit PNG: (u, v, valid), value = (raw - 32768) / 64",
            "units": "pixels of the stored frames",
        },
        "libraries": library_versions(),
    }


class WarningLog:
    """The warnings of one run: each printed as it comes, all kept for meta.json."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, msg: str) -> None:
        self.messages.append(msg)
        print(f"warning: {msg}", flush=True)


def progress_total(info: VideoInfo, first: int, stop: int | None) -> int | None:
    """The frames [first, stop) should decode to, for a progress bar (None: unknown)."""
    if not info.expected_frames:
        return None
    return max((min(stop, info.expected_frames) if stop else info.expected_frames) - first, 0)


def complete_meta(out: Path, meta: dict, statuses: list[str], truncated: dict | None,
                  warnings: list[str], pose_stats: dict | None = None,
                  **task_block: dict) -> None:
    """Marks the dataset finished: meta.json gets its counts and `"complete": true`, last,
    and the journal goes. `statuses` holds "found", "interpolated" or "missing" per frame;
    `task_block` adds the task's own record (e.g. face=...) after "pose_stats"."""
    n = len(statuses)
    found, interpolated = statuses.count("found"), statuses.count("interpolated")
    meta.update({
        "complete": True,
        "frames": n,
        "counts": {"found": found, "interpolated": interpolated,
                   "missing": n - found - interpolated},
        "per_frame": {"person": [s != "missing" for s in statuses],
                      "interpolated": [s == "interpolated" for s in statuses]},
        "pose_stats": pose_stats,
        **task_block,
        "truncated": truncated,
        "warnings": warnings,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    write_json_atomic(out / META, meta)
    (out / PROGRESS).unlink(missing_ok=True)
