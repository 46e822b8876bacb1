"""Which frames `vid2vid evaluate` scores: each dataset's held-out frames, less a gap.

The run records in config.yaml (`holdout_frames`) where each training video's
held-out share begins; the first `gap` frames of it are left out, as the
protocol asks (`infer.evaluate`: `DEFAULT_GAP`, halved for a short held-out
range). A dataset the run does not record counts its last `holdout` share as
held out. `EvalVideo` is one dataset with the frames chosen, what the frame
loop and the per-task measures (`infer.eval_measures`) read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from infer.transfer import dataset_root
from vid2vid.data import VideoIndex, index_dataset
from vid2vid.dataset_dir import load_dataset
from vid2vid.errors import UserError
from vid2vid.tasks import Task, task_of_dataset

Split = Literal["holdout", "train"]
DEFAULT_GAP = 8            # frames between the last training frame and the first evaluated


@dataclass(frozen=True)
class EvalVideo:
    """One dataset and the frames of it that are evaluated."""

    root: Path
    index: VideoIndex          # train_frames = first held-out frame
    frames: tuple[int, ...]    # the frames evaluated: held out, after the gap
    has_flow: bool
    fps: float
    gap: int = 0               # held-out frames skipped before frames[0]


def _gap(root: Path, requested: int | None, held_out: int) -> tuple[int, str | None]:
    """The gap before a video's evaluated frames, and a note when the default was shortened."""
    if requested is None:
        gap = min(DEFAULT_GAP, held_out // 2)
        if gap < DEFAULT_GAP:
            return gap, (f"{root} has only {held_out} held-out frames: the gap after its last "
                         f"training frame is {gap} frames, not {DEFAULT_GAP} (train with a "
                         f"larger holdout share for the full gap)")
        return gap, None
    if requested >= held_out:
        raise UserError(f"{root}: a gap of {requested} frames leaves none of its {held_out} "
                        f"held-out frames to evaluate; pass a gap below {held_out}")
    return requested, None


def eval_videos(run_dir: Path, cfg: dict, data: str | None, split: Split, task: Task,
                gap: int | None = None) -> tuple[list[EvalVideo], list[str]]:
    """The datasets to evaluate and the frames of each; notes for the report."""
    notes = []
    recorded = {str(Path(k)): v for k, v in (cfg.get("holdout_frames") or {}).items()}
    if data is not None:
        roots = [dataset_root(data, "--data")]
    else:
        roots = []
        for d in cfg.get("data") or []:
            if not Path(d).exists():
                raise UserError(f"{d}, the data {run_dir} was trained on, does not exist; pass "
                                "its new place with --data DIR")
            roots.append(dataset_root(d, "the run's data"))
        if not roots:
            raise UserError(f"{run_dir}/config.yaml names no data; pass --data DIR")
    videos = []
    for root in roots:
        meta = load_dataset(root)
        data_task = task_of_dataset(meta)
        if data_task != task:
            raise UserError(f"{root} is a {data_task.name!r} dataset ({data_task.to_dict()}) "
                            f"but {run_dir} is a {task.name!r} run ({task.to_dict()}); "
                            "evaluate it on data of its own task (--data)")
        # The run's task draws the maps (a pose run's stroke width), not the dataset's.
        index = replace(index_dataset(root, float(cfg.get("holdout", 0.2))), task=task)
        span = recorded.get(str(root.resolve()))
        if span is None:
            notes.append(f"{root} is not recorded in {run_dir}/config.yaml; its last "
                         f"{cfg.get('holdout', 0.2):g} share counts as held out")
            first, stop = index.train_frames, index.frames
        else:
            first, stop = int(span[0]), min(int(span[1]), index.frames)
        if first < 1:
            raise UserError(f"{root}: the run has no training frames to retrieve from "
                            f"(held-out range starts at frame {first})")
        skip = 0
        if split == "holdout" and stop > first:
            skip, note = _gap(root, gap, stop - first)
            notes += [note] if note else []
        frames = range(first + skip, stop) if split == "holdout" else range(0, first)
        if len(frames) == 0:
            raise UserError(f"{root}: no held-out frames in {run_dir} (holdout "
                            f"{cfg.get('holdout')}); evaluate on --split train, or train with "
                            "a held-out share")
        has_flow = bool((meta.get("flow") or {}).get("method"))
        if not has_flow:
            notes.append(f"{root} has no optical flow (preprocessed with --no-flow): no warp "
                         "error")
        videos.append(EvalVideo(root, replace(index, train_frames=first), tuple(frames),
                             has_flow, float(meta.get("fps") or 25.0), skip))
    return videos, notes
