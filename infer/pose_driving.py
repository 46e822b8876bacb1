"""The pose task's SOURCE: a video, a frame folder or OpenPose JSON -> the target's pose maps.

    source video --(mediapipe, in memory)--> keypoints --fill short gaps--> zero-phase smoothing
      --> global normalisation onto the target (infer/normalize.py)
      --> hands and face the source never shows, lent by the target's frames (infer/details.py)
      --> the target's centred model geometry + the training's rendering (vid2vid.data)

SOURCE kinds:
- a video file (or a folder of frames): poses detected with the
  preprocessing's detector (`preprocess.detect.HolisticDetector`), no flow,
  no files; fps and size are the video's;
- a folder of OpenPose JSON (one file per frame, natural sort order), or a
  dataset directory (its pose/ folder is used). fps and frame size come from
  the dataset's meta.json when the folder is a dataset's pose/ folder, else
  from the folder's `clip.yaml` (`fps: 25`, `size: [w, h]`; `vid2vid dream`
  writes one), else from `--fps` and `--source-size WxH` (which win over both).

Only the keypoints are kept (137 x 3 floats, 1.6 KB a frame): the source's
pose statistics (normalisation) need the whole clip before the first frame
can be drawn, and the frames are decoded again for the comparison video.

Frames without a person: a run of at most `max_gap` such frames holds the last
pose seen (a run at the very start holds the first pose found); longer runs
are drawn empty (the generator draws no one) and both counts are reported.
A source with no person in any frame is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from infer.details import PARTS, DetailLender, read_dataset_keypoints
from infer.driving import DETECT_MAX_SIZE, Driving, TransferOptions
from infer.normalize import PoseNormalizer, dataset_pose_stats, stats_from_poses
from infer.trained import TrainedGenerator
from vid2vid.data import array_to_pose, centered_geometry, pose_to_array, render_maps
from vid2vid.dataset_dir import META, frame_path, read_meta
from vid2vid.errors import UserError
from vid2vid.metrics import torso_length
from vid2vid.pose import read_openpose_json
from vid2vid.render import LIMB_WIDTH, render_pose
from vid2vid.smoothing import OneEuroParams, smooth_track
from vid2vid.video import IMAGE_SUFFIXES, natural_key, probe, read_frames


# -- source --------------------------------------------------------------------------


@dataclass
class SourceClip:
    """The driving motion: keypoints of every frame and how to show the source.

    poses: `[137, 3]` float32 per frame in source pixels (all zero: no person).
    frames: a function returning a fresh iterator over the source frames as RGB
        uint8 (for the comparison video), one per pose.
    audio: the file whose audio the result gets, or None.
    audio_start: seconds into `audio` where the first frame sits (a video stream
        may start after the audio does; the result's sound must not be early).
    """

    path: Path
    kind: str                      # "video", "frames", "poses"
    fps: float
    size: tuple[int, int]          # (w, h) of the pixels the poses are in
    poses: list[np.ndarray]
    frames: Callable[[], Iterator[np.ndarray]]
    audio: Path | None = None
    audio_start: float = 0.0


POSE_CLIP = "clip.yaml"     # beside a pose folder's JSON files: its fps and frame size


def write_pose_clip(folder: Path, fps: float, size: tuple[int, int], **notes) -> Path:
    """Writes folder/clip.yaml: the frame rate and (w, h) frame size of its poses."""
    import yaml

    path = Path(folder) / POSE_CLIP
    path.write_text(yaml.safe_dump({"fps": float(fps), "size": [int(size[0]), int(size[1])],
                                    **notes}, sort_keys=False))
    return path


def read_pose_clip(folder: Path) -> tuple[float | None, tuple[int, int] | None]:
    """(fps, (w, h)) from folder/clip.yaml, (None, None) without one."""
    import yaml

    path = Path(folder) / POSE_CLIP
    if not path.exists():
        return None, None
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return float(data["fps"]), (int(data["size"][0]), int(data["size"][1]))
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, IndexError) as e:
        raise UserError(f"{path} is unreadable ({type(e).__name__}); it should hold "
                        "'fps: 25' and 'size: [w, h]', or delete it and pass --fps and "
                        "--source-size") from None


def _json_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() == ".json"),
                  key=lambda p: natural_key(p.name))


def _pose_source(folder: Path, options: TransferOptions) -> SourceClip:
    files = _json_files(folder)
    if not files:
        raise UserError(f"{folder} has no OpenPose .json files; pass a video, or a folder of "
                        "OpenPose JSON (one file per frame)")
    if options.max_frames is not None:
        files = files[:options.max_frames]
    dataset = folder.parent if folder.name == "pose" and (folder.parent / META).exists() else None
    meta = read_meta(dataset) if dataset is not None else None
    clip_fps, clip_size = read_pose_clip(folder)
    fps = options.fps or (float(meta["fps"]) if meta else clip_fps)
    size = options.source_size or (tuple(int(v) for v in meta["size"]) if meta else clip_size)
    if fps is None or size is None:
        missing = " and ".join(n for n, v in (("--fps", fps), ("--source-size WxH", size))
                               if v is None)
        raise UserError(f"{folder} is not a dataset's pose/ folder (no ../{META}), so its frame "
                        f"rate and frame size are unknown; pass {missing}")
    poses = [pose_to_array(read_openpose_json(p)) for p in files]

    if dataset is not None:
        n = len(poses)

        def frames() -> Iterator[np.ndarray]:
            import cv2

            for k in range(n):
                bgr = cv2.imread(str(frame_path(dataset, "frames", k)), cv2.IMREAD_COLOR)
                yield (np.zeros((size[1], size[0], 3), np.uint8) if bgr is None
                       else np.ascontiguousarray(bgr[..., ::-1]))
    else:
        def frames() -> Iterator[np.ndarray]:
            # No picture to show: the source's own skeleton, as it was given.
            for kp in poses:
                yield render_pose(array_to_pose(kp), size)

    return SourceClip(folder, "poses", float(fps), (int(size[0]), int(size[1])), poses, frames)


def _video_source(path: Path, options: TransferOptions, progress: bool,
                  coarse: dict[str, bool]) -> SourceClip:
    from tqdm import tqdm

    from preprocess.detect import HolisticDetector

    info = probe(path, DETECT_MAX_SIZE, options.fps if path.is_dir() else None)
    stop = options.max_frames
    total = info.expected_frames or None
    if total and stop is not None:
        total = min(total, stop)
    detector = HolisticDetector(**coarse)
    poses: list[np.ndarray] = []
    try:
        with tqdm(total=total, unit="frame", desc="detecting poses", disable=not progress,
                  dynamic_ncols=True, mininterval=0.5) as bar:
            for rgb in read_frames(info, 0, stop):
                pose, _ = detector(rgb)
                poses.append(pose_to_array(pose))
                bar.update(1)
    finally:
        detector.close()
    if not poses:
        raise UserError(f"{path} has no frames; pass a video with at least one frame")
    return SourceClip(path, "frames" if info.is_folder else "video", info.fps, info.size, poses,
                      lambda: read_frames(info, 0, stop),
                      audio=None if info.is_folder else path, audio_start=info.start_time)


def read_source(source: str | Path, options: TransferOptions, progress: bool = True,
                coarse: dict[str, bool] | None = None) -> SourceClip:
    """Keypoints of every source frame (detected for videos, read for pose folders).

    `coarse`: `coarse_hands` and `coarse_face` as the target's dataset was detected with
    (`preprocess --coarse-hands --coarse-face`), so that the maps draw hands and face the
    way the model learnt them; None: neither."""
    path = Path(source)
    if not path.exists():
        raise UserError(f"SOURCE {path} does not exist; pass a video or a folder of OpenPose "
                        "JSON")
    if path.is_dir():
        if (path / META).exists() and (path / "pose").is_dir():
            return _pose_source(path / "pose", options)       # a whole dataset directory
        if _json_files(path):
            return _pose_source(path, options)
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            raise UserError(f"{path} holds neither OpenPose .json files nor frames; pass a video, "
                            "a folder of OpenPose JSON or a folder of frames")
    return _video_source(path, options, progress, coarse or {})


# -- driving poses ---------------------------------------------------------------------


def fill_gaps(poses: list[np.ndarray], max_gap: int, name: str = "the source"
              ) -> tuple[list[np.ndarray], int, int, int]:
    """Frames without a person hold a pose across runs of at most `max_gap` frames.

    Returns (poses, frames held, runs held, frames left empty). A run at the
    start holds the first pose found (there is no earlier one). UserError
    naming `name` when no frame has a person.
    """
    found = [bool((p[:25, 2] > 0).any()) for p in poses]
    if not any(found):
        raise UserError(f"{name}: no person found in any of its {len(poses)} frames; use a "
                        "video (or poses) showing a person")
    out = list(poses)
    held = runs = empty = 0
    k, n = 0, len(poses)
    while k < n:
        if found[k]:
            k += 1
            continue
        end = k
        while end < n and not found[end]:
            end += 1
        length = end - k
        if length <= max_gap:
            fill = out[k - 1] if k > 0 else poses[end]
            for j in range(k, end):
                out[j] = fill
            held += length
            runs += 1
        else:
            empty += length
        k = end
    return out, held, runs, empty


class DrivingPoses:
    """Source keypoints -> the generator's maps at model size, frame by frame.

    Smoothing, then normalisation onto the target (its pixels), then the
    target's centred model geometry and the training's rendering. Without
    normalisation the source frame itself goes through the centred geometry,
    as a stored frame of that size would.

    The whole clip is in memory, so it is smoothed at once, zero phase
    (`vid2vid.smoothing.smooth_track`): preprocessing's causal One-Euro would
    make the body trail the source by a few frames. `self.poses` holds the
    smoothed keypoints, the frames `__call__` takes, in order. With
    normalisation, the reference it uses (ankles, or shoulders and neck for
    half-body videos) is printed once. `lender` (with normalisation): the
    parts `lend` names are lent to every frame, and `self.poses` then holds
    the normalised keypoints in the target's pixels.
    """

    def __init__(self, source: SourceClip, target_root: Path, target_size: tuple[int, int],
                 model_size: tuple[int, int], normalize: bool, smooth: bool,
                 smoothing: OneEuroParams, limb_width: float = LIMB_WIDTH,
                 lender: DetailLender | None = None, lend: tuple[str, ...] = ()):
        self.poses = source.poses
        if smooth and source.poses:
            self.poses = list(smooth_track(np.stack(source.poses), source.fps, smoothing))
        self.normalizer = None
        if normalize:
            src_stats = stats_from_poses((array_to_pose(p) if (p[:25, 2] > 0).any() else None
                                          for p in self.poses), f"SOURCE {source.path}")
            self.normalizer = PoseNormalizer(src_stats, dataset_pose_stats(target_root),
                                             source.size, target_size)
            print(self.normalizer.description, flush=True)
            if lender is not None and lend and self.poses:
                # The lender works in the target's pixels: normalise first, once.
                placed = np.stack([self._normalized(kp) for kp in self.poses])
                lent = lender.lend(placed[:, :25], source.fps)
                for part in PARTS:
                    if part.name in lend:
                        placed[:, part.points] = lent[:, part.points]
                self.poses, self.normalizer = list(placed), None
        self.geometry = centered_geometry(target_size if normalize else source.size, model_size)
        self.model_size = model_size
        self.limb_width = limb_width

    def _normalized(self, kp: np.ndarray) -> np.ndarray:
        if self.normalizer is not None and (kp[:25, 2] > 0).any():
            return pose_to_array(self.normalizer(array_to_pose(kp)))
        return kp

    def model_keypoints(self, kp: np.ndarray) -> np.ndarray:
        """One frame of `self.poses` (in order) -> `[137, 3]` keypoints in model pixels."""
        return self.geometry.keypoints(self._normalized(kp))

    def __call__(self, kp: np.ndarray) -> np.ndarray:
        """One frame of `self.poses` (in order) -> pose map RGB uint8 `[H, W, 3]`."""
        return render_maps(self.model_keypoints(kp), self.model_size, limb_width=self.limb_width)


def detail_lender(clip: SourceClip, target_root: Path, meta: dict, options: TransferOptions
                  ) -> tuple[DetailLender | None, tuple[str, ...]]:
    """The lender of the parts (face, hands) that no SOURCE frame shows, and their names,
    from all of the target's frames; (None, ()) when the source shows every part, the
    target shows none of the missing ones, or `options.lend` is off. Says what it does."""
    poses = np.stack(clip.poses)
    missing = tuple(p.name for p in PARTS if not (poses[:, p.points, 2] > 0).any())
    if not missing or not options.lend:
        return None, ()
    if not options.normalize:
        print(f"SOURCE {clip.path} shows no {', '.join(missing)}; lending them from the "
              "target needs normalisation (drop --no-normalize)", flush=True)
        return None, ()
    keypoints = read_dataset_keypoints(target_root, int(meta["frames"]))
    torsos = [t for t in (torso_length(array_to_pose(kp)) for kp in keypoints) if t]
    lender = DetailLender(keypoints, float(np.median(torsos)) if torsos else 1.0, (True,) * 25)
    lend = tuple(name for name in missing if name in lender.parts)
    if lend:
        print(f"SOURCE {clip.path} shows no {', '.join(lend)}: lent by {target_root}'s "
              "frames (--no-lend: drawn without)", flush=True)
    return (lender, lend) if lend else (None, ())


def pose_driving(source: Path, target_root: Path, meta: dict, model: TrainedGenerator,
                 options: TransferOptions, progress: bool) -> Driving:
    """A video or OpenPose folder -> the target's pose maps (detect, fill, smooth, normalise)."""
    target_size = tuple(int(v) for v in meta["size"])
    made = meta.get("options", {})      # a dataset made before an option lacks it: off
    clip = read_source(source, options, progress,
                       {k: bool(made.get(k, False)) for k in ("coarse_hands", "coarse_face")})
    clip.poses, held, gaps, empty = fill_gaps(clip.poses, options.max_gap,
                                              f"SOURCE {clip.path}")
    lender, lend = detail_lender(clip, target_root, meta, options)
    driving = DrivingPoses(clip, target_root, target_size, model.frame_size, options.normalize,
                           options.smooth, options.smoothing, model.task.limb_width,
                           lender, lend)

    def maps() -> Iterator[np.ndarray]:
        for kp in driving.poses:     # the run's own drawing (skeleton width, surface)
            yield model.task.maps(driving.model_keypoints(kp), {}, model.frame_size)

    return Driving(clip.path, clip.fps, len(clip.poses), maps, clip.frames,
                   ("source", "pose", "result"), clip.audio, clip.audio_start, held, gaps,
                   empty)
