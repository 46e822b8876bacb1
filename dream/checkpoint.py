"""motion.pt: the motion model on its own (config, frames, weights), so sampling needs
no training code (nanoGPT's habit: the checkpoint carries its constructor arguments).

    {"format": "vid2vid-motion", "version": 1, "config": MotionConfig dict,
     "datasets": [paths], "frames": [PoseFrame dicts, one per dataset],
     "generator": G_ema state_dict, "steps": int, "seconds": float,
     "temperature": the noise scale to dream at by default (missing in older files: 1.0)}

Written atomically (temp file + rename). Where it lives: `vid2vid dream --train`
writes runs/motion-<dataset>-<date>/motion.pt, or RUN/motion.pt with --run RUN.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from dream.config import MotionConfig
from dream.model import MotionGenerator
from dream.pose_frame import PoseFrame
from vid2vid.errors import UserError

MOTION_FILE = "motion.pt"
FORMAT = "vid2vid-motion"


@dataclass
class MotionModel:
    generator: MotionGenerator
    config: MotionConfig
    datasets: tuple[str, ...]
    frames: tuple[PoseFrame, ...]
    path: Path
    steps: int
    seconds: float
    temperature: float = 1.0


def save_motion(path: Path, G: MotionGenerator, datasets: list[str], frames: list[PoseFrame],
                steps: int, seconds: float, temperature: float = 1.0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "version": 1, "config": G.cfg.to_dict(),
            "datasets": [str(d) for d in datasets], "frames": [f.to_dict() for f in frames],
            "generator": G.state_dict(), "steps": steps, "seconds": seconds,
            "temperature": float(temperature)}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)
    return path


def load_motion_model(path: Path, device: torch.device = torch.device("cpu")) -> MotionModel:
    """motion.pt (or a folder holding one) -> the generator in eval mode; one-line errors."""
    path = Path(path)
    if path.is_dir():
        path = path / MOTION_FILE
    if not path.exists():
        raise UserError(f"{path} does not exist; train a motion model with vid2vid dream "
                        "--train DATASET")
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:   # torch raises many kinds for a damaged file
        raise UserError(f"{path} is not a readable motion model ({type(e).__name__}); train it "
                        "again with vid2vid dream --train DATASET") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{path} is not a vid2vid motion model; train one with vid2vid dream "
                        "--train DATASET")
    cfg = MotionConfig.from_dict(data["config"])
    G = MotionGenerator(cfg).to(device)
    G.load_state_dict(data["generator"])
    G.eval().requires_grad_(False)
    return MotionModel(G, cfg, tuple(data["datasets"]),
                       tuple(PoseFrame.from_dict(f) for f in data["frames"]), path,
                       int(data["steps"]), float(data["seconds"]),
                       float(data.get("temperature", 1.0)))
