"""A trained generator as transfer and evaluation use it: found, loaded, checked, sized.

Everything comes from the checkpoint alone (`vid2vid.checkpoint.load_generator`
rebuilds G_ema from the model config stored inside it); the run directory is
only where the newest checkpoint of a dataset is looked up.

Frame size. A checkpoint records the run's final frame size and the size its
generator works at now (`stage_frame_size`): a run stopped mid-way through
progressive training has fewer levels than the final model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from vid2vid.checkpoint import latest_checkpoint, load_generator
from vid2vid.errors import UserError
from vid2vid.tasks import Task, task_from_dict
from vid2vid.runs import CONFIG, runs_for_dataset

__all__ = ["TrainedGenerator", "load_trained", "newest_checkpoint", "resolve_device",
           "autocast_dtype", "model_frame_size"]

Precision = Literal["fp32", "bf16"]


def resolve_device(name: str) -> torch.device:
    """"auto" (CUDA when PyTorch sees a GPU, else CPU), "cpu" or "cuda"."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU; use --device "
                        "cpu (or auto)")
    if name not in ("cpu", "cuda"):
        raise UserError(f"--device {name!r} is not one of auto, cpu, cuda")
    return torch.device(name)


def autocast_dtype(precision: Precision) -> torch.dtype | None:
    """None for fp32 (no autocast), bfloat16 for bf16 (CPU and CUDA both support it)."""
    if precision not in ("fp32", "bf16"):
        raise UserError(f"--precision {precision!r} is not one of fp32, bf16")
    return torch.bfloat16 if precision == "bf16" else None


def model_frame_size(info: dict) -> tuple[int, int]:
    """(H, W) the checkpoint's generator generates at: its stage's size (a run stopped
    during progressive training has fewer levels than the final model)."""
    h, w = info.get("stage_frame_size") or info["frame_size"]
    return int(h), int(w)


@dataclass
class TrainedGenerator:
    """G_ema of one checkpoint, ready to synthesise.

    generator: the network, in eval mode on `device`, gradients off.
    checkpoint: the file it came from; run_dir: its folder.
    frame_size: (H, W) it generates at; temporal: whether it was trained with
    its temporal parts (False: the per-frame baseline, every frame in image mode).
    """

    generator: torch.nn.Module
    checkpoint: Path
    run_dir: Path
    frame_size: tuple[int, int]
    temporal: bool
    step: int
    data: tuple[str, ...]
    task: Task

    def plate_for(self, root: Path) -> int | None:
        """The background plate G reads for frames of dataset `root`: the index of
        `root` among the run's training videos; None for a model with at most one
        plate (it reads its only one). UserError for a several-plate model and a
        dataset it was not trained on: it knows no background for it."""
        plates = getattr(self.generator, "plates", 0)
        if plates <= 1:
            return None
        want = Path(root).resolve()
        for k, d in enumerate(self.data):
            if Path(d).resolve() == want:
                return k
        # The data as typed at training time, from another folder, or moved since: its name.
        named = [k for k, d in enumerate(self.data) if Path(d).name == want.name]
        if len(named) == 1:
            return named[0]
        raise UserError(f"{root} is not one of the {plates} videos {self.checkpoint} was "
                        "trained on, and its generator draws the still background of the "
                        "video it is told (model.background_plate); pass one of "
                        + ", ".join(self.data))


def load_trained(path: str | Path, device: torch.device) -> TrainedGenerator:
    """Loads G_ema from a checkpoint file or a run directory (its newest checkpoint).

    UserError (one line) for a missing or damaged checkpoint and for one whose
    maps do not match its task's (a checkpoint of another toolkit or version).
    The task comes from the checkpoint (runs before tasks existed are pose runs).
    """
    G, info = load_generator(Path(path), device)
    ckpt = Path(info["path"])
    task = task_from_dict(info.get("task"))
    channels = int(info.get("map_channels", -1))
    if channels != task.channels:
        raise UserError(f"{ckpt} was trained on {channels}-channel maps, but its task "
                        f"({task.name}) draws {task.channels}; pass a checkpoint made by this "
                        "vid2vid with --checkpoint")
    cfg = info.get("config") or {}
    return TrainedGenerator(
        generator=G, checkpoint=ckpt, run_dir=ckpt.parent, frame_size=model_frame_size(info),
        temporal=bool(cfg.get("temporal", True)), step=int(info.get("step", 0)),
        data=tuple(cfg.get("data") or ()), task=task,
    )


def newest_checkpoint(dataset: Path, runs_root: Path = Path("runs")) -> Path:
    """The newest checkpoint of the newest run (under `runs_root`) trained on `dataset`."""
    for run in runs_for_dataset(dataset, runs_root):
        ckpt = latest_checkpoint(run)
        if ckpt is not None:
            return ckpt
    raise UserError(f"no run under {runs_root}/ was trained on {dataset} (none has a "
                    f"{CONFIG} naming it and a checkpoint); train one with "
                    f"vid2vid train --data {dataset}, or pass --checkpoint RUN_OR_CKPT")
