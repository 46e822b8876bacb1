"""`vid2vid transfer SOURCE TARGET`: the target person performing the source's motion.

    source video --(mediapipe, in memory)--> keypoints --fill short gaps--> zero-phase smoothing
      --> global normalisation onto the target (infer/normalize.py)
      --> the target's centred model geometry + the training's rendering (vid2vid.data)
      --> G_ema frame by frame (vid2vid.generate.Synthesizer) --> H.264 mp4 (+ source audio)

Two passes, constant memory. The first pass detects poses and keeps only the
keypoints (137 x 3 floats, 1.6 KB a frame), because the source's pose
statistics (normalisation) need the whole clip before the first frame can be
drawn. The second pass generates; with `--compare` it decodes the source
again for the left panel. No frame is ever held beyond the one being worked
on, and nothing is written but the result.

SOURCE kinds:
- a video file (or a folder of frames): poses detected with the
  preprocessing's detector (`preprocess.detect.HolisticDetector`), no flow,
  no files; fps and size are the video's;
- a folder of OpenPose JSON (one file per frame, natural sort order), or a
  dataset directory (its pose/ folder is used). fps and frame size come from
  the dataset's meta.json when the folder is a dataset's pose/ folder, else
  from `--fps` and `--source-size WxH`.

Frames without a person: a run of at most `max_gap` such frames holds the last
pose seen (a run at the very start holds the first pose found); longer runs
are drawn empty (the generator draws no one) and both counts are reported.
A source with no person in any frame is an error.

Other tasks (the target dataset's, `vid2vid.tasks`) drive the same generation
loop through their own `Driving`: a face video moves a talking head
(`infer.face_driving`: landmarks aligned part by part to the target's face,
sketched over the target's background edges), and a folder of label maps
renders a scene (`infer.label_driving`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from infer.normalize import PoseNormalizer, dataset_pose_stats, stats_from_poses
from infer.trained import (Precision, TrainedGenerator, autocast_dtype, load_trained,
                           newest_checkpoint, resolve_device)
from vid2vid.data import array_to_pose, centered_geometry, pose_to_array, render_maps
from vid2vid.dataset_dir import META, frame_path, load_dataset, read_meta
from vid2vid.errors import UserError
from vid2vid.generate import Synthesizer
from vid2vid.pose import read_openpose_json
from vid2vid.render import render_pose
from vid2vid.smoothing import OneEuroParams, smooth_track
from vid2vid.tasks import task_of_dataset
from vid2vid.video import IMAGE_SUFFIXES, natural_key, probe, read_frames
from vid2vid.video_writer import VideoWriter, has_audio, side_by_side

__all__ = ["TransferOptions", "TransferResult", "transfer", "dataset_root", "SourceClip",
           "read_source", "fill_gaps", "Driving", "DRIVERS"]

DETECT_MAX_SIZE = 1024   # longest side a source video is decoded at for detection (as preprocess)


@dataclass(frozen=True)
class TransferOptions:
    """What `vid2vid transfer` can change; the defaults are the command's."""

    checkpoint: str | None = None       # run dir or ckpt file; None: newest run of the target
    compare: bool = False
    normalize: bool = True
    smooth: bool = True
    smoothing: OneEuroParams = OneEuroParams()
    max_gap: int = 5
    max_frames: int | None = None
    device: str = "auto"
    precision: Precision = "fp32"
    fps: float | None = None             # pose folders outside a dataset
    source_size: tuple[int, int] | None = None   # (w, h), pose folders outside a dataset
    instances: str | None = None         # labels: instance maps of the driving label folder
    runs_root: Path = Path("runs")


@dataclass
class TransferResult:
    output: Path
    compare: Path | None
    frames: int
    fps: float
    seconds: float     # the whole command
    generate_seconds: float
    checkpoint: Path
    held: int          # frames without a person that held a pose
    gaps: int          # runs of such frames
    empty: int         # frames without a person drawn empty (runs longer than max_gap)
    audio: bool

    def line(self) -> str:
        rate = self.frames / max(self.generate_seconds, 1e-9)
        text = (f"{self.output}: {self.frames} frames at {self.fps:g} fps "
                f"({self.frames / self.fps:.1f} s of video, {'with' if self.audio else 'no'} "
                f"audio), generated at {rate:.1f} frames/s, {self.seconds:.1f} s in all; "
                f"checkpoint {self.checkpoint}")
        if self.compare is not None:
            text += f"; comparison: {self.compare}"
        if self.held or self.empty:
            text += (f"; no person in {self.held + self.empty} frames: held the last pose for "
                     f"{self.held} ({self.gaps} short gaps), {self.empty} drawn empty")
        return text


# -- target --------------------------------------------------------------------------


def dataset_root(path: str | Path, what: str = "TARGET", collection: bool = False) -> Path:
    """A dataset directory given as itself or as its pose/ folder; UserError otherwise.

    With `collection`, a folder of datasets (the sequences `preprocess
    --from-vid2vid` writes) stands for its first dataset: they share a model.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist; pass a dataset directory written by "
                        "vid2vid preprocess (data/<name>) or its pose/ folder")
    for root in (path, path.parent) if path.name == "pose" else (path,):
        if root.is_dir() and (root / META).exists():
            load_dataset(root)       # unfinished or foreign meta.json: its own clear error
            return root
    if collection and path.is_dir():
        inside = sorted(d for d in path.iterdir() if (d / META).exists())
        if inside:
            load_dataset(inside[0])
            return inside[0]
    raise UserError(f"{what} {path} is not a dataset directory (no {META}); pass the folder "
                    "vid2vid preprocess wrote (data/<name>) or its pose/ folder")


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
    fps = options.fps or (float(meta["fps"]) if meta else None)
    size = options.source_size or (tuple(int(v) for v in meta["size"]) if meta else None)
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


def _video_source(path: Path, options: TransferOptions, progress: bool) -> SourceClip:
    from tqdm import tqdm

    from preprocess.detect import HolisticDetector

    info = probe(path, DETECT_MAX_SIZE, options.fps if path.is_dir() else None)
    stop = options.max_frames
    total = info.expected_frames or None
    if total and stop is not None:
        total = min(total, stop)
    detector = HolisticDetector()
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


def read_source(source: str | Path, options: TransferOptions, progress: bool = True
                ) -> SourceClip:
    """Keypoints of every source frame (detected for videos, read for pose folders)."""
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
    return _video_source(path, options, progress)


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
    half-body videos) is printed once.
    """

    def __init__(self, source: SourceClip, target_root: Path, target_size: tuple[int, int],
                 model_size: tuple[int, int], normalize: bool, smooth: bool,
                 smoothing: OneEuroParams):
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
        self.geometry = centered_geometry(target_size if normalize else source.size, model_size)
        self.model_size = model_size

    def __call__(self, kp: np.ndarray) -> np.ndarray:
        """One frame of `self.poses` (in order) -> pose map RGB uint8 `[H, W, 3]`."""
        if self.normalizer is not None and (kp[:25, 2] > 0).any():
            kp = pose_to_array(self.normalizer(array_to_pose(kp)))
        return render_maps(self.geometry.keypoints(kp), self.model_size)


# -- the command -------------------------------------------------------------------------


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] in [-1, 1] -> [H, W, 3] uint8 RGB."""
    x = ((image[0].float().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8)
    return x.permute(1, 2, 0).cpu().numpy()


def default_output(source: Path, target_root: Path) -> Path:
    stem = source.stem if source.suffix else source.name
    if stem == "pose":
        stem = source.parent.name
    return Path(f"{stem}_to_{target_root.name}.mp4")


@dataclass
class Driving:
    """What drives the generator, whatever the task: the model-size maps of every frame.

    maps: a function returning a fresh iterator of `[H, W, C]` float32 maps in
        [0, 1] (the task's channels), one per output frame, in order.
    frames: a function returning an iterator of the source's own frames (RGB
        uint8) for the comparison video's first panel, or None (e.g. a label
        sequence has no picture of its own).
    panels: the comparison video's panel titles (source?, maps, result).
    held/gaps/empty: frames without a person/face, as `fill_gaps` counts them.
    """

    path: Path
    fps: float
    count: int
    maps: Callable[[], Iterator[np.ndarray]]
    frames: Callable[[], Iterator[np.ndarray]] | None
    panels: tuple[str, ...]
    audio: Path | None = None
    audio_start: float = 0.0       # seconds into `audio` of the first frame
    held: int = 0
    gaps: int = 0
    empty: int = 0


def pose_driving(source: Path, target_root: Path, meta: dict, model: TrainedGenerator,
                 options: TransferOptions, progress: bool) -> Driving:
    """A video or OpenPose folder -> the target's pose maps (detect, fill, smooth, normalise)."""
    target_size = tuple(int(v) for v in meta["size"])
    clip = read_source(source, options, progress)
    clip.poses, held, gaps, empty = fill_gaps(clip.poses, options.max_gap,
                                              f"SOURCE {clip.path}")
    driving = DrivingPoses(clip, target_root, target_size, model.frame_size, options.normalize,
                           options.smooth, options.smoothing)

    def maps() -> Iterator[np.ndarray]:
        for kp in driving.poses:
            yield driving(kp).astype(np.float32) / 255.0

    return Driving(clip.path, clip.fps, len(clip.poses), maps, clip.frames,
                   ("source", "pose", "result"), clip.audio, clip.audio_start, held, gaps,
                   empty)


def _face_driving(*args) -> Driving:
    from infer.face_driving import face_driving

    return face_driving(*args)


def _label_driving(*args) -> Driving:
    from infer.label_driving import label_driving

    return label_driving(*args)


# What SOURCE is, per task: the one place transfer depends on the task.
DRIVERS = {"pose": pose_driving, "face": _face_driving, "labels": _label_driving}


def transfer(source: str | Path, target: str | Path, out: str | Path | None = None,
             options: TransferOptions = TransferOptions(), progress: bool = True
             ) -> TransferResult:
    """Drives the model of `target` with `source`; writes `out` (mp4).

    Bodies: the target person performs the source's motion. Faces: the target
    face speaks as the source face does. Labels: the target's scene is rendered
    from a label sequence. See the module docstring for the steps. Returns what
    was written.
    """
    t0 = time.time()
    target_root = dataset_root(target, collection=True)
    meta = load_dataset(target_root)
    task = task_of_dataset(meta)
    if options.max_frames is not None and options.max_frames < 1:
        raise UserError(f"--max-frames must be at least 1, got {options.max_frames}")
    if options.max_gap < 0:
        raise UserError(f"--max-gap must be >= 0, got {options.max_gap}")
    source_path = Path(source)
    out = Path(out) if out is not None else default_output(source_path, target_root)
    if out.exists() and source_path.exists() and out.resolve() == source_path.resolve():
        raise UserError(f"-o {out} is the source itself; choose another output file")
    compare = out.with_name(f"{out.stem}_compare.mp4") if options.compare else None

    # The model first: a missing or unusable checkpoint fails before a long detection pass.
    device = resolve_device(options.device)
    ckpt = options.checkpoint or newest_checkpoint(target_root, options.runs_root)
    model: TrainedGenerator = load_trained(ckpt, device)
    if model.task != task:
        raise UserError(f"{model.checkpoint} is a {model.task.name!r} model but {target_root} "
                        f"is a {task.name!r} dataset; pass a checkpoint trained on it with "
                        "--checkpoint")
    driving = DRIVERS[task.name](source_path, target_root, meta, model, options, progress)

    from tqdm import tqdm

    h, w = model.frame_size
    synth = Synthesizer(model.generator, temporal=model.temporal,
                        autocast_dtype=autocast_dtype(options.precision))
    n = driving.count
    t_gen = time.time()
    writer = VideoWriter(out, driving.fps, (w, h), audio_from=driving.audio,
                         audio_start=driving.audio_start)
    side = None
    try:
        with tqdm(total=n, unit="frame", desc="generating", disable=not progress,
                  dynamic_ncols=True, mininterval=0.5) as bar:
            source_frames = (driving.frames() if compare is not None and driving.frames
                             else None)
            for k, frame_maps in enumerate(driving.maps()):
                maps = torch.from_numpy(frame_maps).permute(2, 0, 1)[None].float()
                result = _to_uint8(synth(maps.to(device)))
                writer.write(result)
                if compare is not None:
                    picture = _to_uint8(task.picture(maps) * 2 - 1)
                    panels = [picture, result]
                    if source_frames is not None:
                        src = next(source_frames, None)
                        if src is None:
                            raise RuntimeError(f"{driving.path} gave fewer frames on the second "
                                               f"pass than the first ({k} < {n})")
                        panels.insert(0, src)
                    # At least 256 px tall, so a small model's frames stay visible.
                    panel = side_by_side(panels, list(driving.panels[-len(panels):]),
                                         height=max(h, 256))
                    if side is None:
                        side = VideoWriter(compare, driving.fps,
                                           (panel.shape[1], panel.shape[0]),
                                           audio_from=driving.audio,
                                           audio_start=driving.audio_start)
                    side.write(panel)
                bar.update(1)
            if source_frames is not None:
                source_frames.close()       # stops the second decoder (an ffmpeg process)
        writer.close()
        if side is not None:
            side.close()
    except BaseException:
        writer.abort()
        if side is not None:
            side.abort()
        raise
    generate_seconds = time.time() - t_gen
    audio = driving.audio is not None and has_audio(out)
    return TransferResult(out, compare, n, driving.fps, time.time() - t0, generate_seconds,
                          model.checkpoint, driving.held, driving.gaps, driving.empty, audio)
