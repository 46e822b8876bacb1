"""`vid2vid transfer SOURCE TARGET`: the target performing the source's motion.

    SOURCE --the task's driving (below)--> the model's maps, frame by frame
      --> G_ema frame by frame (vid2vid.generate.Synthesizer) --> H.264 mp4 (+ source audio)

What SOURCE is depends on the target dataset's task (`vid2vid.tasks`), and
each task turns it into a `Driving` (`infer.driving`) of its own: a dancer's
video or poses move a body (`infer.pose_driving`: detect, fill gaps, smooth,
normalise onto the target), a face video moves a talking head
(`infer.face_driving`: landmarks aligned part by part to the target's face,
sketched over the target's background edges), and a folder of label maps
renders a scene (`infer.label_driving`). This module runs the one generation
loop over any of them.

Two passes, constant memory. The first pass (the driving) keeps only
keypoints or file names, never frames. The second pass generates; with
`--compare` it decodes the source again for the left panel. No frame is ever
held beyond the one being worked on, and nothing is written but the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from infer.driving import TransferOptions
from infer.face_driving import face_driving
from infer.label_driving import label_driving
from infer.pose_driving import pose_driving
from infer.trained import (TrainedGenerator, autocast_dtype, load_trained, newest_checkpoint,
                           resolve_device)
from vid2vid.dataset_dir import META, load_dataset
from vid2vid.errors import UserError
from vid2vid.cpu_share import CpuShare
from vid2vid.generate import Synthesizer
from vid2vid.tasks import task_of_dataset
from vid2vid.video_writer import VideoWriter, has_audio, side_by_side

__all__ = ["TransferResult", "transfer", "dataset_root", "default_output", "DRIVERS"]


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


# What SOURCE is, per task: the one place transfer depends on the task.
DRIVERS = {"pose": pose_driving, "face": face_driving, "labels": label_driving}


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
    # Compiled, G is traced twice: the first frame in image mode, then video mode.
    generator = torch.compile(model.generator) if options.compile else model.generator
    synth = Synthesizer(generator, temporal=model.temporal,
                        autocast_dtype=autocast_dtype(options.precision),
                        video=model.plate_for(target_root))
    n = driving.count
    t_gen = time.time()
    writer = VideoWriter(out, driving.fps, (w, h), audio_from=driving.audio,
                         audio_start=driving.audio_start)
    side = None
    share = CpuShare(device).__enter__()   # fewer threads while other vid2vid jobs run
    try:
        with tqdm(total=n, unit="frame", desc="generating", disable=not progress,
                  dynamic_ncols=True, mininterval=0.5) as bar:
            source_frames = (driving.frames() if compare is not None and driving.frames
                             else None)
            for k, frame_maps in enumerate(driving.maps()):
                share.poll()
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
    finally:
        share.__exit__(None, None, None)
    generate_seconds = time.time() - t_gen
    audio = driving.audio is not None and has_audio(out)
    return TransferResult(out, compare, n, driving.fps, time.time() - t0, generate_seconds,
                          model.checkpoint, driving.held, driving.gaps, driving.empty, audio)
