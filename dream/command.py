"""`vid2vid dream RUN`: sample new motion, write it as a pose folder, render it with RUN.

    RUN (a generator run) --its dataset--> the person's pixel frame (dream.pose_frame)
    motion.pt --sample(seed, k / fps)--> BODY_25 poses in that frame
      --hands and face lent by its training frames (infer.details)--> full poses
      --> OUT_pose/NNNNNN.json (OpenPose JSON, as pose/) --infer.transfer--> OUT.mp4

Rendering is transfer's own (infer.transfer): the dreamed folder is a SOURCE
like any OpenPose folder, already in the target's frame, so normalisation and
smoothing are off. Where the motion model is found: `--motion PATH`, else
RUN/motion.pt, else the newest runs/motion-*/motion.pt trained on RUN's dataset.
With `render=False` (--poses-only) RUN may be a motion model's own folder: the
poses are then in its (first) dataset's person's frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dream.checkpoint import MOTION_FILE, MotionModel, load_motion_model
from dream.details import lender_for
from dream.motion_data import read_body_poses
from dream.pose_frame import PoseFrame, measure_frame
from infer.details import DetailLender
from infer.driving import TransferOptions
from infer.pose_driving import write_pose_clip
from infer.transfer import transfer
from vid2vid.data import N_KEYPOINTS, array_to_pose
from vid2vid.errors import UserError
from vid2vid.pose import write_openpose_json
from vid2vid.runs import CONFIG, read_run_config

MOTION_RUNS = "motion-"     # runs/motion-<dataset>-<date>/motion.pt


@dataclass
class DreamResult:
    poses: Path
    video: Path | None
    compare: Path | None
    frames: int
    fps: float
    sample_seconds: float
    seconds: float
    motion: Path
    details: tuple[str, ...] = ()       # parts lent by the training frames (infer.details)

    def line(self) -> str:
        rate = self.frames / max(self.sample_seconds, 1e-9)
        text = (f"dreamed {self.frames} poses ({self.frames / self.fps:.1f} s at {self.fps:g} "
                f"fps, {rate:.0f} poses/s) with {self.motion} -> {self.poses}/")
        text += (f" ({', '.join(self.details)} from the training frames)" if self.details
                 else " (body only: no hands or face)")
        if self.video is not None:
            text += f", {self.video}"
        if self.compare is not None:
            text += f", {self.compare}"
        return text + f"; {self.seconds:.1f} s in all"


def run_dataset(run: Path) -> Path:
    """The (first) dataset a generator run trained on, from its config.yaml."""
    data = (read_run_config(run) or {}).get("data") or []
    if not data:
        raise UserError(f"{run}/config.yaml names no dataset; pass a run vid2vid train wrote")
    return Path(data[0])


def find_motion(run: Path, dataset: Path, motion: str | None, runs_root: Path) -> Path:
    """The motion model for `run` (see the module docstring); a one-line error naming the fix."""
    if motion is not None:
        return Path(motion)
    if (run / MOTION_FILE).exists():
        return run / MOTION_FILE
    target = dataset.resolve()
    found = []
    for path in Path(runs_root).glob(f"{MOTION_RUNS}*/{MOTION_FILE}"):
        try:
            datasets = torch.load(path, map_location="cpu", weights_only=True)["datasets"]
        except Exception:
            continue
        if any(Path(d).resolve() == target for d in datasets):
            found.append(path)
    if found:
        return max(found, key=lambda p: p.stat().st_mtime)
    raise UserError(f"no motion model for {run}: no {run / MOTION_FILE} and none under "
                    f"{runs_root}/{MOTION_RUNS}*/ trained on {dataset}; train one with "
                    f"vid2vid dream --train {dataset} (or pass --motion PATH)")


def person_frame(dataset: Path, model: MotionModel) -> PoseFrame:
    """The run's person's frame, measured on all its frames; the motion model's own first
    frame when the dataset is gone (a run copied without its data)."""
    if not dataset.exists():
        return model.frames[0]
    meta, body = read_body_poses(dataset)
    found = (body[..., 2] > 0).sum(1) >= 5
    return measure_frame(body, found, tuple(meta["size"]), float(meta["fps"]))


def dream_keypoints(model: MotionModel, frame: PoseFrame, seed: int, frames: int, fps: float,
                    temperature: float = 1.0, limb_streams: bool | None = None,
                    lender: DetailLender | None = None) -> np.ndarray:
    """`[frames, 137, 3]` keypoints at k / fps seconds: the body dreamed, hands and face lent
    by `lender` (None: missing); `limb_streams` as MotionGenerator.sample (None: the
    model's config)."""
    features = model.generator.sample(seed, np.arange(frames) / fps, temperature, limb_streams)
    body = frame.to_keypoints(features)
    if lender is not None:
        return lender.lend(body, fps)
    out = np.zeros((frames, N_KEYPOINTS, 3), np.float32)
    out[:, :25] = body
    return out


def write_pose_folder(folder: Path, keypoints: np.ndarray, fps: float, size: tuple[int, int],
                      **notes) -> Path:
    """`[T, 137, 3]` keypoints -> folder/NNNNNN.json (the dataset's pose/ format) and
    folder/clip.yaml (fps, frame size), so `vid2vid transfer folder TARGET` reads it as is."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json"):      # a shorter dream must not keep an older tail
        old.unlink()
    for k, kp in enumerate(keypoints):
        write_openpose_json(folder / f"{k:06d}.json", array_to_pose(kp))
    write_pose_clip(folder, fps, size, **notes)
    return folder


def dream(run: str | Path, seconds: float = 10.0, fps: float | None = None, seed: int = 0,
          out: str | Path | None = None, compare: bool = False, motion: str | None = None,
          device: str = "auto", render: bool = True, runs_root: Path = Path("runs"),
          progress: bool = True, temperature: float | None = None,
          whole_body: bool = False, details: bool = True) -> DreamResult:
    """Dreams `seconds` of motion for RUN's person; writes OUT_pose/ and (render) OUT.mp4.
    `whole_body`: every limb from the same moment (no limb streams, dream.model);
    `details`: hands and face lent by the training frames (infer.details)."""
    t0 = time.time()
    run = Path(run)
    if not run.exists():
        raise UserError(f"RUN {run} does not exist; pass a run directory vid2vid train wrote "
                        "(runs/<name>)")
    if run.is_file():
        run = run.parent          # a checkpoint file (or motion.pt): its folder
    if seconds <= 0:
        raise UserError(f"--seconds must be > 0, got {seconds}")
    # Sampling is tiny (MLPs over keypoints): the CPU does it at 3e4 poses/s.
    motion_only = not (run / CONFIG).exists() and (run / MOTION_FILE).exists()
    if motion_only and render:
        raise UserError(f"{run} holds a motion model but no generator to render with; add "
                        f"--poses-only for the poses alone, or pass a vid2vid train run "
                        f"with --motion {run / MOTION_FILE}")
    if motion_only:
        # A motion model's own folder: poses need no generator, and the frame is its dataset's.
        model = load_motion_model(Path(motion or run / MOTION_FILE), torch.device("cpu"))
        dataset = Path(model.datasets[0])
    else:
        dataset = run_dataset(run)
        model = load_motion_model(find_motion(run, dataset, motion, runs_root),
                                  torch.device("cpu"))
    frame = person_frame(dataset, model)
    temperature = model.temperature if temperature is None else temperature    # training's pick
    fps = float(fps or frame.fps)
    n = max(1, int(round(seconds * fps)))
    out = Path(out) if out is not None else Path(f"dream_{run.name}_seed{seed}.mp4")
    lender = lender_for(dataset, model.config.holdout, frame.torso, frame.joints) \
        if details else None
    ts = time.time()
    streams = model.config.limb_streams and not whole_body
    keypoints = dream_keypoints(model, frame, seed, n, fps, temperature, streams, lender)
    sample_seconds = time.time() - ts
    poses = write_pose_folder(out.with_name(f"{out.stem}_pose"), keypoints, fps, frame.size,
                              made_by="vid2vid dream", run=str(run), seed=seed,
                              temperature=temperature, motion=str(model.path),
                              limb_streams=streams,
                              details=list(lender.parts) if lender else [])
    video = compare_path = None
    if render:
        # The dream lends its own details (or is body-only on purpose): transfer must not.
        options = TransferOptions(checkpoint=str(run), compare=compare, normalize=False,
                                  smooth=False, lend=False, device=device)   # fps, size: clip.yaml
        result = transfer(poses, dataset, out, options, progress=progress)
        video, compare_path = result.output, result.compare
    return DreamResult(poses, video, compare_path, n, fps, sample_seconds, time.time() - t0,
                       model.path, lender.parts if lender else ())
