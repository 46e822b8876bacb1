"""`vid2vid preprocess --task face`: a talking-head video -> a dataset of face crops.

vid2vid's edge-to-face model works on a square crop around the face, so this
stage writes the same dataset layout as the pose pipeline (`vid2vid.dataset_dir`)
with every file in crop pixels:

    frames/k.jpg  the crop, resized to crop_size x crop_size
    pose/k.json   OpenPose JSON whose face part holds the 70 landmarks (body and
                  hands empty); the toolkit draws the face sketch from these, so
                  changing the drawing never needs a new preprocessing run
    seg/k.png     the face region (255 inside): the hull of the 68 landmarks with
                  the brows raised so the forehead is in; the foreground target
    edges/k.png   Canny edges OUTSIDE the slightly dilated face region only (hair,
                  shoulders, background), the part of vid2vid's face input that
                  landmarks cannot give
    flow/k.png    backward flow k -> k-1 between the stored crops (none for 0)

It runs in two passes because the crop of a frame depends on the frames after
it: pass 1 tracks the landmarks through the whole video (mediapipe FaceMesh in
tracking mode, converted to OpenPose's face-70 layout), fills short gaps and
smooths the crop track with zero-phase filters; pass 2 decodes again, crops and
writes. Pass 1's result is saved as `.face_track.npz` in the output folder, so
a run interrupted in pass 2 resumes there from its journal without tracking
again (see `preprocess.dataset_writer` for the journal and atomic writes).
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from preprocess.dataset_writer import (JPEG_QUALITY, FrameDecoder, Journal, PreprocessOptions,
                                       Summary, WarningLog, base_meta, check_truncation,
                                       complete_meta, end_pass, identify, imwrite_atomic,
                                       make_dirs, probe_range, progress_total, read_journal)
from preprocess.detect import filter_native_logs
from preprocess.edges import CANNY_HIGH, CANNY_LOW
from preprocess.face_crop import (CENTER_SIGMA_S, CROP_RAISE, FACE_CROP_SCALE, FOREHEAD_RAISE,
                                  SIDE_MEDIAN_S, SIDE_SIGMA_S, background_edges, crop_track,
                                  face_region, inside, place_boxes, to_crop)
from preprocess.flow import FlowPerThread, make_flow
from preprocess.gaps import interpolate
from preprocess.mediapipe_to_openpose import face70_from_mesh
from vid2vid.dataset_dir import META, PROGRESS, frame_path, write_json_atomic
from vid2vid.errors import UserError
from vid2vid.flow_png import write_flow_png
from vid2vid.png import write_png
from vid2vid.pose import Pose, write_openpose_json
from vid2vid.render import draw_face_sketch, stroke_width
from vid2vid.smoothing import OneEuroFilter
from vid2vid.video import VideoInfo

TRACK_FILE = ".face_track.npz"
WRITERS = 2              # pass-2 writer threads (the two cores of a small machine)
STATUSES = ("found", "interpolated", "missing")


class FaceMeshDetector:
    """RGB uint8 `[H, W, 3]` -> OpenPose face `[70, 3]` in that image's pixels, or None.

    mediapipe FaceMesh with refined landmarks (irises, for the pupils 68/69),
    one face. `static=False` tracks from frame to frame (steadier and faster,
    for a video fed in order); `static=True` detects every image on its own.
    """

    def __init__(self, static: bool = False):
        filter_native_logs()  # mediapipe's native start-up chatter
        from mediapipe.python.solutions import face_mesh

        self._mesh = face_mesh.FaceMesh(static_image_mode=static, max_num_faces=1,
                                        refine_landmarks=True)

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        found = self._mesh.process(rgb).multi_face_landmarks
        if not found:
            return None
        mesh = np.array([(p.x, p.y) for p in found[0].landmark], np.float32)
        return face70_from_mesh(mesh, rgb.shape[1], rgb.shape[0])

    def close(self) -> None:
        self._mesh.close()


def fill_gaps(faces: np.ndarray, detected: np.ndarray, max_gap: int
              ) -> tuple[np.ndarray, list[str]]:
    """Interpolates runs of at most `max_gap` frames without a face between two with one.

    Same rule as the pose pipeline (`preprocess.gaps`): runs at the ends or
    longer than `max_gap` stay missing, so training never uses them as targets.
    Shape: faces `[N, 70, 3]`, detected `[N]` bool -> (`[N, 70, 3]`, N statuses).
    """
    faces = faces.copy()
    status = ["found" if d else "missing" for d in detected]
    idx = np.flatnonzero(detected)
    for a, b in zip(idx[:-1], idx[1:]):
        if not 1 <= b - a - 1 <= max_gap:
            continue
        for j in range(a + 1, b):
            face = interpolate(Pose(face=faces[a]), Pose(face=faces[b]), (j - a) / (b - a)).face
            if (face[:, 2] > 0).any():
                faces[j], status[j] = face, "interpolated"
    return faces, status


def _crop(rgb: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    x0, y0, side = (int(v) for v in box)
    patch = rgb[y0:y0 + side, x0:x0 + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(patch, (size, size), interpolation=interp))


def track_faces(info: VideoInfo, first: int, stop: int | None, options: PreprocessOptions,
           total: int | None, progress: bool, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """Pass 1: the face `[N, 70, 3]` of every frame (frame pixels) and whether one was found."""
    from tqdm import tqdm

    detector = FaceMeshDetector(static=False)
    smoother = OneEuroFilter(info.fps, options.smoothing) if options.smooth else None
    faces: list[np.ndarray] = []
    decoder = FrameDecoder(info, first, stop)
    bar = tqdm(total=total or None, unit="frame", disable=not progress, desc=desc,
               dynamic_ncols=True, mininterval=0.5)
    decoder.start()
    try:
        for rgb in decoder:
            face = detector(rgb)
            if face is None:
                face = np.zeros((70, 3), np.float32)
            if smoother is not None:
                face = smoother(face)  # a missing face resets the filter
            faces.append(face)
            bar.update(1)
    finally:
        decoder.halt.set()
        bar.close()
        detector.close()
    arr = np.stack(faces) if faces else np.zeros((0, 70, 3), np.float32)
    return arr, (arr[..., 2] > 0).any(axis=1)


def _save_track(out: Path, sha256: str, options: dict, faces: np.ndarray, status: list[str],
                boxes: np.ndarray) -> None:
    tmp = out / (TRACK_FILE + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, faces=faces, status=np.array([STATUSES.index(s) for s in status], np.int8),
                 boxes=boxes, sha256=np.array(sha256), options=np.array(json.dumps(options)))
    os.replace(tmp, out / TRACK_FILE)


def _load_track(out: Path, sha256: str, options: dict):
    """Pass 1's saved result when it belongs to this input and these options, else None."""
    path = out / TRACK_FILE
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            if str(z["sha256"]) != sha256 or json.loads(str(z["options"])) != options:
                return None
            return z["faces"], [STATUSES[i] for i in z["status"]], z["boxes"]
    except (OSError, ValueError, KeyError):  # torn or foreign file: track again
        return None


def _first_pass(source: Path, info: VideoInfo, first: int, stop: int | None,
                options: PreprocessOptions, progress: bool, desc: str
                ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Pass 1 with its checks: (faces `[N, 70, 3]` frame pixels, statuses, boxes `[N, 3]`)."""
    total = progress_total(info, first, stop)
    raw, detected = track_faces(info, first, stop, options, total, progress, desc)
    n = len(raw)
    if n == 0:
        raise UserError(f"{source} has no frames in the chosen range; check --start/--end "
                        "or the file")
    faces, status = fill_gaps(raw, detected, options.max_gap)
    present = np.array([s != "missing" for s in status])
    try:
        track = crop_track(faces, present, info.fps)
    except ValueError:  # no frame with a face (of at least 3 points inside the frame)
        raise UserError(f"no face found in any frame of {source}; use a video where one "
                        "face is in view, large enough and lit") from None
    return faces, status, place_boxes(track, info.size)


def preprocess_face_video(source: Path, out: Path, options: PreprocessOptions,
                          overwrite: bool = False, progress: bool = True) -> Summary:
    """Writes the face dataset of one input; resumes or returns at once when work exists."""
    t0 = time.time()
    if options.crop_size < 16:
        raise UserError(f"--crop-size {options.crop_size} is too small; use 128 or more")
    info, first, stop = probe_range(source, options)
    identity, existing = identify(source, out, options, overwrite)
    if existing is not None and existing.get("complete"):
        return Summary.already_complete(out, existing, t0)
    make_dirs(out, options.previews)
    saved = (_load_track(out, identity["sha256"], identity["options"])
             if existing is not None else None)
    if saved is None:  # a journal is only valid with the track its frames were cut from
        (out / PROGRESS).unlink(missing_ok=True)
        (out / TRACK_FILE).unlink(missing_ok=True)

    warn = WarningLog()
    flow = None if options.flow is None else make_flow(options.flow, warn)
    size = options.crop_size
    meta = base_meta("face", source, info, identity, first, stop, flow and flow.name,
                     (size, size))
    meta["pose"] = {
        "detector": "mediapipe-face-mesh (refined)",
        "smoothing": options.smoothing.to_dict() if options.smooth else None,
        "max_gap": options.max_gap,
        "layout": "OpenPose face 70, crop pixels",
    }
    write_json_atomic(out / META, meta)

    if saved is None:
        faces, status, boxes = _first_pass(source, info, first, stop, options, progress,
                                           f"{out.name} landmarks")
        _save_track(out, identity["sha256"], identity["options"], faces, status, boxes)
    else:
        faces, status, boxes = saved
    n = len(faces)
    truncated = check_truncation(source, info, n, first, stop, warn)

    done = read_journal(out)
    resume = len(done)
    if resume:
        print(f"{out}: resuming after {resume} finished frames", flush=True)
    _cut(info, first, stop, out, faces, status, boxes, size, flow, options.previews, resume,
         progress)

    found, interpolated = status.count("found"), status.count("interpolated")
    capped = float(np.mean(boxes[:, 2] >= min(info.size)))
    record = {  # meta.json's "face": where each crop was cut, and how
        "crop_scale": FACE_CROP_SCALE,
        "crop_size": size,
        "boxes": boxes.tolist(),
        "box_units": "[x0, y0, side] in pixels of the decoded frames "
                     f"({info.size[0]}x{info.size[1]}, the source unless --max-size shrank it)",
        "smoothing": (f"zero-phase over the whole track: centre Gaussian sigma "
                      f"{CENTER_SIGMA_S} s, side running median {SIDE_MEDIAN_S} s then "
                      f"Gaussian sigma {SIDE_SIGMA_S} s; centre raised {CROP_RAISE} of the "
                      "landmark box height; frames without a face interpolated"),
        "borders": "no padding: side capped at the frame's shorter side, box shifted "
                   "inside the frame",
        "side_capped": round(capped, 4),
        "seg": f"hull of the 68 landmarks, brows raised {FOREHEAD_RAISE} of brow-to-chin",
        "edges": f"Canny ({CANNY_LOW}, {CANNY_HIGH}) outside the face region dilated by "
                 f"{max(1, round(size / 64))} px; the face sketch is drawn from pose/",
    }
    complete_meta(out, meta, status, truncated, warn.messages, face=record)
    (out / TRACK_FILE).unlink(missing_ok=True)
    return Summary(out, n, found, interpolated, time.time() - t0, subject="face",
                   truncated=truncated)


def _write_frame(out: Path, k: int, crop: np.ndarray, face: np.ndarray | None,
                 prev: np.ndarray | None, flow, previews: bool) -> None:
    """All files of frame k (face: `[70, 3]` in crop pixels, unclipped, or None)."""
    size = crop.shape[0]
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    region = face_region(face, size) if face is not None else np.zeros((size, size), np.uint8)
    stored = None if face is None else inside(face, size)
    imwrite_atomic(frame_path(out, "frames", k), crop[..., ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    write_openpose_json(frame_path(out, "pose", k), None if stored is None else Pose(face=stored))
    write_png(frame_path(out, "seg", k), region)
    write_png(frame_path(out, "edges", k), background_edges(gray, region))
    if flow is not None and prev is not None:
        prev_gray = cv2.cvtColor(prev, cv2.COLOR_RGB2GRAY)
        write_flow_png(frame_path(out, "flow", k), flow(gray, prev_gray, crop, prev))
    if previews:
        canvas = (crop.astype(np.uint16) * 2 // 5).astype(np.uint8)
        if stored is not None:
            draw_face_sketch(canvas, stored, stroke_width(size, 1 / 200))
        imwrite_atomic(frame_path(out, "maps", k), canvas[..., ::-1],
                        [cv2.IMWRITE_JPEG_QUALITY, 90])


def _cut(info: VideoInfo, first: int, stop: int | None, out: Path, faces: np.ndarray,
         status: list[str], boxes: np.ndarray, size: int, flow, previews: bool, resume: int,
         progress: bool) -> None:
    """Pass 2: decodes again from the resume point, crops and writes, journalling each frame.

    Two worker threads write (flow dominates; OpenCV releases the GIL), and a
    frame enters the journal only once it and every frame before it are on disk.
    """
    from tqdm import tqdm

    n = len(faces)
    decoder = FrameDecoder(info, first + max(resume - 1, 0), stop)
    bar = tqdm(total=n, initial=resume, unit="frame", disable=not progress,
               desc=f"{out.name} crops", dynamic_ncols=True, mininterval=0.5)
    journal = Journal(out)
    pool = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="vid2vid-face")
    flow = None if flow is None else FlowPerThread(flow)
    pending: deque[tuple[int, Future]] = deque()

    def commit(block: bool) -> None:
        while pending and (block or pending[0][1].done()):
            j, future = pending.popleft()
            future.result()  # re-raises a worker's error (disk full, ...)
            journal.commit(j, status[j])
            bar.update(1)

    prev = None
    k = max(resume - 1, 0)
    decoder.start()
    try:
        for rgb in decoder:
            if k >= n:
                break
            crop = _crop(rgb, boxes[k], size)
            if k < resume:  # the frame before the resume point: only flow's previous frame
                prev, k = crop, k + 1
                continue
            face = None if status[k] == "missing" else to_crop(faces[k], boxes[k], size)
            pending.append((k, pool.submit(_write_frame, out, k, crop, face, prev, flow,
                                           previews)))
            commit(block=False)
            while len(pending) > 8:  # bounded memory: wait for the oldest frame
                pending[0][1].result()
                commit(block=False)
            prev, k = crop, k + 1
        commit(block=True)
    finally:
        end_pass(decoder, pool, journal, bar)
    if k < n:
        raise UserError(f"{info.path} decoded to {k} frames the second time but {n} the first; "
                        "re-encode it (ffmpeg -i IN -c:v libx264 fixed.mp4) and run again")
