"""The pose pipeline: a video (or frame folder) -> a dataset directory of body poses.

The work streams through three kinds of workers so both cores stay busy and
memory stays flat however long the video is:

    ffmpeg process  --frames-->  main thread: pose + mask (mediapipe, in order)
                                      |
                                      +--> 2 worker threads: flow, edges, encode + write files

Frames are committed strictly in order: a line in `.progress.jsonl` is appended
only once every file of that frame has been renamed into place, so after
Ctrl-C or kill -9 the next run resumes from the first uncommitted frame and
never trusts a half-written file. meta.json gets `"complete": true` last
(`preprocess.dataset_writer` holds these pieces, shared with the other tasks).

With `--smooth` a last pass smooths the stored keypoints over the whole video,
zero phase (`vid2vid.smoothing.smooth_track`, as transfer does its driving
poses): the maps then move with the body, not with the detector's jitter, and
lag it by nothing. The raw keypoints are kept in `.pose_raw.npy` until
meta.json is complete, so a pass cut short is redone from them, never from
half-smoothed files.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from preprocess.dataset_writer import (JPEG_QUALITY, FrameDecoder, PreprocessOptions, Summary,
                                       Journal, WarningLog, base_meta, check_truncation,
                                       complete_meta, end_pass, identify, imwrite_atomic,
                                       make_dirs, probe_range, progress_total, read_journal)
from preprocess.edges import edge_map
from preprocess.flow import FlowPerThread, make_flow
from preprocess.gaps import GapFiller
from preprocess.mediapipe_to_openpose import VISIBILITY_MIN
from vid2vid.dataset_dir import META, RAW_POSES, frame_path, write_json_atomic
from vid2vid.errors import UserError
from vid2vid.flow_png import write_flow_png
from vid2vid.png import write_png
from vid2vid.pose import Pose, read_openpose_json, write_openpose_json
from vid2vid.pose_stats import PoseStatsAccumulator
from vid2vid.render import preview
from vid2vid.smoothing import OneEuroParams, smooth_track


def _smooth_stored(out: Path, n: int, fps: float, params: OneEuroParams) -> None:
    """Rewrites pose/ 0..n-1 with the whole track smoothed zero phase (module docstring)."""
    from vid2vid.data import array_to_pose, pose_to_array   # torch: only when smoothing

    raw_path = out / RAW_POSES
    if raw_path.exists():            # an earlier pass was cut short: pose/ may be half done
        track = np.load(raw_path)
    else:
        track = np.stack([pose_to_array(read_openpose_json(frame_path(out, "pose", k)))
                          for k in range(n)])
        tmp = out / (RAW_POSES + ".partial.npy")
        np.save(tmp, track)
        os.replace(tmp, raw_path)
    smoothed = smooth_track(track, fps, params)
    for k in range(n):
        write_openpose_json(frame_path(out, "pose", k), array_to_pose(smoothed[k]))


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
        flow = None if flow_method is None else make_flow(flow_method, warn)
        self.flow = None if flow is None else FlowPerThread(flow)
        self.flow_name = None if flow is None else flow.name

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
            write_flow_png(frame_path(out, "flow", k), self.flow(gray, prev_gray, rgb, prev_rgb))


def preprocess_video(source: Path, out: Path, options: PreprocessOptions,
                     overwrite: bool = False, progress: bool = True) -> Summary:
    """Writes the dataset of one input; resumes or returns at once when work exists."""
    t0 = time.time()
    info, first, stop = probe_range(source, options)
    identity, existing = identify(source, out, options, overwrite)
    if existing is not None and existing.get("complete"):
        return Summary.already_complete(out, existing, t0)
    make_dirs(out, options.previews)

    warn = WarningLog()
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
        "smoothing": ({**options.smoothing.to_dict(), "phase": "zero"} if options.smooth
                      else None),
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
        for k, status in enumerate(done):
            if status == "found":
                stats.add(read_openpose_json(frame_path(out, "pose", k)))

    detector = seg_only = None
    if keypoints is None:
        from preprocess.detect import HolisticDetector

        detector = HolisticDetector(coarse_hands=options.coarse_hands,
                                    coarse_face=options.coarse_face)
    else:
        from preprocess.detect import SegmentationOnly

        seg_only = SegmentationOnly()
    filler = GapFiller(options.max_gap)
    decode_from = first + max(resume - 1, 0)
    decoder = FrameDecoder(info, decode_from, stop)
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vid2vid-write",
                              initializer=_lower_priority)
    journal = Journal(out)
    # Frames whose files are being written or whose pose is still undecided, in order.
    inflight: OrderedDict[int, dict] = OrderedDict()
    window = options.max_gap + 16

    total = progress_total(info, first, stop)
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
            journal.commit(k, entry["status"])
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
        end_pass(decoder, pool, journal, bar)
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
    if options.smooth:
        _smooth_stored(out, n, info.fps, options.smoothing)
    complete_meta(out, meta, statuses, truncated, warn.messages,
                  pose_stats.to_dict() if pose_stats else None)
    (out / RAW_POSES).unlink(missing_ok=True)
    return Summary(out, n, found, interpolated, time.time() - t0, truncated=truncated)
