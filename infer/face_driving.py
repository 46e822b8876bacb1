"""Edge-to-face transfer: a driving face video moves a talking-head model.

    driver video --face mesh, tracked (preprocess.face)--> 70 landmarks per frame
      --the driver's own stable square crop, at the target's crop size-->
      --part by part onto the target's mean face shape (infer.face_align)-->
      face sketch + the target's background edges (held still) --> G_ema --> mp4

Aligning each part (jaw, brows, nose, eyes, lips) by scale and translation
against the two mean shapes keeps the target's proportions (a wide mouth stays
wide) while the driver's expressions and head motion carry over. The
background edges (hair, shoulders, backdrop) come from one target frame and do
not move: the driver's own would paste the driver's hair onto the target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from infer.driving import DETECT_MAX_SIZE, Driving, TransferOptions
from infer.face_align import align_faces, mean_face
from infer.trained import TrainedGenerator
from preprocess.face import fill_gaps, track_faces
from preprocess.face_crop import crop_track, place_boxes, to_crop
from preprocess.dataset_writer import PreprocessOptions
from vid2vid.data import centered_geometry, pose_to_array
from vid2vid.dataset_dir import frame_path
from vid2vid.errors import UserError
from vid2vid.pose import Pose, read_openpose_json
from vid2vid.video import probe, read_frames


def target_faces(root: Path, meta: dict) -> tuple[np.ndarray, int]:
    """The target's landmarks `[N, 70, 3]` (stored pixels) and the frame whose background
    edges are held: the first frame with a face."""
    faces, first = [], None
    for k, ok in enumerate(meta["per_frame"]["person"]):
        if not ok:
            continue
        pose = read_openpose_json(frame_path(root, "pose", k))
        if pose is None:
            continue
        faces.append(pose.face)
        if first is None:
            first = k
    if not faces:
        raise UserError(f"{root} has no frame with face landmarks; preprocess the target with "
                        "--task face again")
    return np.stack(faces), first


def _hold_missing(faces: np.ndarray, status: list[str]) -> tuple[np.ndarray, int, int]:
    """Frames still without a face (long gaps, ends) hold the nearest earlier face (the first
    face for a run at the start). Returns (faces, frames held, runs held)."""
    out = faces.copy()
    found = [s != "missing" for s in status]
    first = found.index(True)
    held = runs = 0
    for k in range(len(out)):
        if found[k]:
            continue
        out[k] = out[k - 1] if k > first else out[first]
        held += 1
        runs += k == 0 or found[k - 1]
    return out, held, runs


def face_driving(source: Path, target_root: Path, meta: dict, model: TrainedGenerator,
                 options: TransferOptions, progress: bool) -> Driving:
    """A driving face video -> the target model's maps, one per driver frame."""
    task = model.task
    if not source.exists():
        raise UserError(f"SOURCE {source} does not exist; pass a video of a face talking")
    crop_size = int(meta["size"][0])
    info = probe(source, DETECT_MAX_SIZE, options.fps if source.is_dir() else None)
    stop = options.max_frames
    total = info.expected_frames or None
    if total and stop is not None:
        total = min(total, stop)
    track_options = PreprocessOptions(task="face", smooth=options.smooth,
                                      smoothing=options.smoothing)
    faces, detected = track_faces(info, 0, stop, track_options, total, progress,
                                  "tracking the face")
    if len(faces) == 0:
        raise UserError(f"{source} has no frames; pass a video with at least one frame")
    if not detected.any():
        raise UserError(f"{source}: no face found in any of its {len(faces)} frames; use a "
                        "video showing one face, front on")
    faces, status = fill_gaps(faces, detected, options.max_gap)
    present = np.array([s != "missing" for s in status])
    boxes = place_boxes(crop_track(faces, present, info.fps), info.size)
    faces, held, gaps = _hold_missing(faces, status)
    driver = np.stack([to_crop(f, b, crop_size) for f, b in zip(faces, boxes)])

    tgt_faces, still = target_faces(target_root, meta)
    if options.normalize:
        driver = align_faces(driver, mean_face(driver), mean_face(tgt_faces))

    size = model.frame_size
    geometry = centered_geometry((crop_size, crop_size), size)
    edges = cv2.imread(str(frame_path(target_root, "edges", still)), cv2.IMREAD_UNCHANGED)
    if edges is None:
        raise UserError(f"{frame_path(target_root, 'edges', still)} is missing; preprocess the "
                        "target again with --overwrite")
    background = {"edges": geometry.image(edges, cv2.INTER_AREA)}

    def maps() -> Iterator[np.ndarray]:
        for face in driver:
            kp = geometry.keypoints(pose_to_array(Pose(face=face)))
            yield task.maps(kp, background, size)

    def frames() -> Iterator[np.ndarray]:
        # The driver's own crop, so the comparison shows the face that drives.
        for rgb, (x0, y0, side) in zip(read_frames(info, 0, stop), boxes):
            patch = rgb[y0:y0 + side, x0:x0 + side]
            yield cv2.resize(patch, (crop_size, crop_size), interpolation=cv2.INTER_AREA)

    return Driving(source, info.fps, len(driver), maps, frames, ("driver", "sketch", "result"),
                   None if info.is_folder else source, info.start_time, held, gaps, 0)
