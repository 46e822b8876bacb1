"""`vid2vid preprocess`: a video (or frame folder) -> a dataset directory.

The work streams through three kinds of workers so both cores stay busy and
memory stays flat however long the video is:

    ffmpeg process  --frames-->  main thread: pose + mask (mediapipe, in order)
                                      |
                                      +--> 2 worker threads: flow, edges, encode + write files

Frames are committed strictly in order: a line in `.progress.jsonl` is appended
only once every file of that frame has been renamed into place, so after
Ctrl-C or kill -9 the next run resumes from the first uncommitted frame and
never trusts a half-written file. meta.json gets `"complete": true` last.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from preprocess.edges import edge_map
from preprocess.flow import make_flow
from preprocess.gaps import GapFiller
from preprocess.mediapipe_to_openpose import VISIBILITY_MIN
from vid2vid import __version__
from vid2vid.dataset_dir import (ALL_SUBDIRS, FORMAT_VERSION, META, PROGRESS, SUBDIRS, frame_path,
                                 read_meta, write_json_atomic)
from vid2vid.errors import UserError
from vid2vid.flow_png import write_flow_png
from vid2vid.png import write_png
from vid2vid.pose import Pose, write_openpose_json
from vid2vid.pose_stats import PoseStatsAccumulator
from vid2vid.render import preview
from vid2vid.smoothing import OneEuroParams, PoseSmoother
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
    smooth: bool = False
    smoothing: OneEuroParams = field(default_factory=OneEuroParams)
    max_gap: int = 5
    previews: bool = False
    task: str = "pose"              # pose | face | labels (vid2vid.tasks)
    crop_size: int = 256            # face: side of the stored square face crop, pixels
    labels: str | None = None       # labels: folder of per-frame 8-bit class-ID PNGs
    instances: str | None = None    # labels: optional folder of per-frame instance-ID PNGs
    num_classes: int | None = None  # labels: None = Cityscapes' 35
    fg_classes: tuple[int, ...] | None = None  # labels: None = Cityscapes' persons and vehicles

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in ("keypoints", "labels", "instances"):
            if d[name] is not None:
                d[name] = str(Path(d[name]).resolve())
        if d["fg_classes"] is not None:
            d["fg_classes"] = list(d["fg_classes"])
        # Only the options of the chosen task identify a dataset, so pose datasets made
        # before tasks existed still match their options.
        irrelevant = {"pose": ("task", "crop_size", "labels", "instances", "num_classes",
                               "fg_classes"),
                      "face": ("keypoints", "labels", "instances", "num_classes", "fg_classes"),
                      "labels": ("keypoints", "crop_size", "smooth", "smoothing")}[self.task]
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

    def line(self) -> str:
        note = ""
        if self.truncated:
            note = (f"; truncated file: {self.truncated['source_frames']} of the "
                    f"{self.truncated['promised_frames']} frames its header promises")
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


def preprocess_many(inputs: list[str], out: str | None, options: PreprocessOptions,
                    overwrite: bool = False) -> list[Summary]:
    """Preprocesses each input into `out` (one input), `out/<stem>` (several) or `data/<stem>`."""
    summaries = []
    if options.task == "labels" and len(inputs) > 1:
        raise UserError("--labels names one folder of label maps, so give one VIDEO with it "
                        "(run vid2vid preprocess once per video)")
    run = _TASK_PIPELINES[options.task]()
    stems = [Path(p).stem if Path(p).suffix else Path(p).name for p in inputs]
    if len(set(stems)) != len(stems):
        raise UserError("several inputs share a name (" + ", ".join(sorted(
            {s for s in stems if stems.count(s) > 1})) + "); preprocess them one at a time with -o")
    for path, stem in zip(inputs, stems):
        if out is None:
            target = Path("data") / stem
        elif len(inputs) == 1:
            target = Path(out)
        else:
            target = Path(out) / stem
        summary = run(Path(path), target, options, overwrite=overwrite)
        print(summary.line(), flush=True)
        summaries.append(summary)
    return summaries


def _face_pipeline():
    from preprocess.face import preprocess_face_video

    return preprocess_face_video


def _labels_pipeline():
    from preprocess.labels import import_labels

    return import_labels


# The pipeline of each task (imported on use: the face and label modules are only needed
# for their task).
_TASK_PIPELINES = {"pose": lambda: preprocess_video, "face": _face_pipeline,
                   "labels": _labels_pipeline}


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
    for f in (META, PROGRESS):
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


def _lower_priority() -> None:
    """Runs in each worker thread: yield the CPU to the detector, the pipeline's critical path.

    Detection must run frame after frame in one thread; everything else can lag
    behind in the queue, so on a busy machine the workers should wait, not it.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not permitted: only slower
        pass


class _FrameWriter:
    """Per-frame work for the worker threads: flow, edges, masks, encoding, files."""

    def __init__(self, out: Path, flow_method: str | None, warn):
        self.out = out
        self.flow = None if flow_method is None else make_flow(flow_method, warn)
        self.flow_name = None if self.flow is None else self.flow.name
        self._local = threading.local()
        self._lock = threading.Lock()

    def _estimator(self):
        # DIS keeps state per call, so each worker thread gets its own; RAFT is shared.
        if self.flow is None or self.flow.name == "raft":
            return self.flow
        est = getattr(self._local, "flow", None)
        if est is None:
            est = self._local.flow = type(self.flow)()
        return est

    def write(self, k: int, rgb: np.ndarray, mask: np.ndarray, pose: Pose | None,
              prev_rgb: np.ndarray | None) -> None:
        out = self.out
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        prev_gray = None if prev_rgb is None else cv2.cvtColor(prev_rgb, cv2.COLOR_RGB2GRAY)
        imwrite_atomic(frame_path(out, "frames", k), rgb[..., ::-1],
                        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        write_png(frame_path(out, "seg", k), mask)
        write_png(frame_path(out, "edges", k), edge_map(gray, pose))
        if self.flow is not None and prev_gray is not None:
            est = self._estimator()
            if est.name == "raft":
                with self._lock:
                    flow = est(gray, prev_gray, rgb, prev_rgb)
            else:
                flow = est(gray, prev_gray)
            write_flow_png(frame_path(out, "flow", k), flow)


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


def preprocess_video(source: Path, out: Path, options: PreprocessOptions,
                     overwrite: bool = False, progress: bool = True) -> Summary:
    """Writes the dataset of one input; resumes or returns at once when work exists."""
    t0 = time.time()
    info, first, stop = probe_range(source, options)
    identity, existing = identify(source, out, options, overwrite)
    if existing is not None and existing.get("complete"):
        return Summary.already_complete(out, existing, t0)
    make_dirs(out, options.previews)

    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        print(f"warning: {msg}", flush=True)

    keypoints = None
    if options.keypoints is not None:
        from preprocess.keypoints_import import KeypointFolder

        keypoints = KeypointFolder(options.keypoints, info.source_size, info.size)
    writer = _FrameWriter(out, options.flow, warn)
    meta = base_meta("pose", source, info, identity, first, stop, writer.flow_name)
    meta["pose"] = {
        "detector": ("openpose-json" if keypoints else
                     "mediapipe-holistic (model_complexity 1, tracking, refined face)"),
        "visibility_min": None if keypoints else VISIBILITY_MIN,
        "smoothing": options.smoothing.to_dict() if options.smooth else None,
        "max_gap": options.max_gap,
        "layout": "OpenPose BODY_25 + face 70 + hands 21, stored-frame pixels",
    }
    write_json_atomic(out / META, meta)

    done = read_journal(out)
    resume = len(done)
    if resume:
        print(f"{out}: resuming after {resume} finished frames", flush=True)
    statuses: list[str] = list(done)
    stats = PoseStatsAccumulator()
    if resume:
        from vid2vid.pose import read_openpose_json

        for k, status in enumerate(done):
            if status == "found":
                stats.add(read_openpose_json(frame_path(out, "pose", k)))

    detector = seg_only = None
    if keypoints is None:
        from preprocess.detect import HolisticDetector

        detector = HolisticDetector()
    else:
        from preprocess.detect import SegmentationOnly

        seg_only = SegmentationOnly()
    smoother = PoseSmoother(info.fps, options.smoothing) if options.smooth else None
    filler = GapFiller(options.max_gap)
    decode_from = first + max(resume - 1, 0)
    decoder = FrameDecoder(info, decode_from, stop)
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vid2vid-write",
                              initializer=_lower_priority)
    journal = open(out / PROGRESS, "a")
    # Frames whose files are being written or whose pose is still undecided, in order.
    inflight: OrderedDict[int, dict] = OrderedDict()
    window = options.max_gap + 16

    total = None
    if info.expected_frames:
        total = max((min(stop, info.expected_frames) if stop else info.expected_frames) - first, 0)
    from tqdm import tqdm

    bar = tqdm(total=total or None, initial=resume, unit="frame", disable=not progress,
               desc=out.name, dynamic_ncols=True, mininterval=0.5)

    def decide(k: int, pose: Pose | None, status: str) -> None:
        entry = inflight[k]
        entry["futures"].append(pool.submit(write_openpose_json, frame_path(out, "pose", k), pose))
        entry["status"] = status
        if status == "found":
            stats.add(pose)
        if options.previews:
            entry["futures"].append(pool.submit(
                imwrite_atomic, frame_path(out, "maps", k),
                preview(entry.pop("rgb"), pose)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90]))

    def commit(block: bool) -> None:
        while inflight:
            k, entry = next(iter(inflight.items()))
            if "status" not in entry:
                return
            futures: list[Future] = entry["futures"]
            if not block and not all(f.done() for f in futures):
                return
            for f in futures:
                f.result()  # re-raises a worker's error (disk full, ...)
            journal.write(json.dumps({"i": k, "status": entry["status"]}) + "\n")
            journal.flush()
            statuses.append(entry["status"])
            inflight.popitem(last=False)
            bar.update(1)

    decoder.start()
    prev_rgb = None
    k = resume - 1 if resume else 0
    decoded = 0
    try:
        for rgb in decoder:
            decoded += 1
            if resume and decoded == 1:
                # The frame before the resume point: only needed as flow's previous frame.
                prev_rgb, k = rgb, resume
                continue
            if keypoints is not None:
                pose = keypoints(k)
                mask = seg_only(rgb)
            else:
                pose, mask = detector(rgb)
            if smoother is not None:
                pose = smoother(pose)
            inflight[k] = {"futures": [pool.submit(writer.write, k, rgb, mask, pose, prev_rgb)]}
            if options.previews:
                inflight[k]["rgb"] = rgb
            for j, p, status in filler.push(k, pose):
                decide(j, p, status)
            commit(block=len(inflight) > window)
            prev_rgb = rgb
            k += 1
        for j, p, status in filler.finish():
            decide(j, p, status)
        commit(block=True)
    finally:
        decoder.halt.set()
        pool.shutdown(wait=True, cancel_futures=True)
        journal.close()
        bar.close()
        for closer in (detector, seg_only):
            if closer is not None:
                closer.close()

    n = len(statuses)
    if n == 0:
        raise UserError(f"{source} has no frames in the chosen range; check --start/--end "
                        "or the file")
    truncated = check_truncation(source, info, n, first, stop, warn)
    if keypoints is not None:
        keypoints.check_count(n, truncated=truncated is not None)
    found = statuses.count("found")
    interpolated = statuses.count("interpolated")
    if found == 0:
        raise UserError(f"no person found in any frame of {source}; use a video where one "
                        "person is in full view (or pass --keypoints)")
    pose_stats = stats.summarize()
    meta.update({
        "complete": True,
        "frames": n,
        "counts": {"found": found, "interpolated": interpolated,
                   "missing": n - found - interpolated},
        "per_frame": {"person": [s != "missing" for s in statuses],
                      "interpolated": [s == "interpolated" for s in statuses]},
        "pose_stats": pose_stats.to_dict() if pose_stats else None,
        "truncated": truncated,
        "warnings": warnings,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    write_json_atomic(out / META, meta)
    (out / PROGRESS).unlink(missing_ok=True)
    return Summary(out, n, found, interpolated, time.time() - t0, truncated=truncated)
