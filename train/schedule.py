"""The spatio-temporally progressive schedule, as one pure function of the step.

With `progressive`, training starts on single frames at the base resolution
(the image stage: the generator learns to draw a person from a pose before it
learns to move one, as StyleSV pretrains its frame generator), then alternates

- temporal steps: frames per clip double (4 -> 8 -> 16 ...), and
- spatial steps: the resolution doubles through `Generator.grow()`; the new
  level first trains alone (the coarser levels frozen, as vid2vid's
  `niter_fix_global`), then all levels train jointly,

until the requested size and clip length. Without it there is one stage at
the final size and length. Step budgets are proportional to fixed weights
(image 1, temporal 1, new level alone 0.5, joint 1) so the table only depends
on the config, and `stage_at(step)` is all the training loop reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

StageKind = Literal["image", "temporal", "grow", "joint", "full"]
_WEIGHT = {"image": 1.0, "temporal": 1.0, "grow": 0.5, "joint": 1.0, "full": 1.0}


@dataclass(frozen=True)
class Stage:
    index: int
    kind: StageKind
    size: int            # frame height in pixels
    frames: int          # frames per clip
    levels: int          # generator enhancer levels (0 = base only)
    first_step: int
    last_step: int       # exclusive

    @property
    def train_old_levels(self) -> bool:
        """False while a new level trains alone."""
        return self.kind != "grow"


def spatial_levels(size: int, base_size: int) -> int:
    """Enhancer levels needed to go from `base_size` to `size` by doublings."""
    if size <= base_size:
        return 0
    levels = math.log2(size / base_size)
    if abs(levels - round(levels)) > 1e-9:
        raise ValueError(f"size {size} is not base size {base_size} times a power of two")
    return int(round(levels))


def default_base_size(size: int) -> int:
    """Where progressive training starts: a quarter of the final size, at least 64 px."""
    return min(size, max(64, size // 4))


def build_stages(steps: int, size: int, frames: int, progressive: bool,
                 base_size: int | None = None, first_frames: int = 4) -> list[Stage]:
    """The whole schedule: stages with their step ranges, covering [0, steps)."""
    base_size = default_base_size(size) if base_size is None else base_size
    if not progressive:
        return [Stage(0, "full", size, frames, spatial_levels(size, base_size), 0, steps)]
    n_levels = spatial_levels(size, base_size)
    plan: list[tuple[StageKind, int, int, int]] = [("image", min(size, base_size), 1, 0)]
    res, level = min(size, base_size), 0
    t = min(first_frames, frames)
    if frames > 1:
        plan.append(("temporal", res, t, level))
    while level < n_levels or t < frames:
        if level < n_levels:
            res, level = res * 2, level + 1
            plan.append(("grow", res, t if frames > 1 else 1, level))
            plan.append(("joint", res, t if frames > 1 else 1, level))
        if frames > 1 and t < frames:
            t = min(2 * t, frames)
            plan.append(("temporal", res, t, level))
    total = sum(_WEIGHT[k] for k, *_ in plan)
    stages, start = [], 0
    for i, (kind, res_i, t_i, lvl) in enumerate(plan):
        end = steps if i == len(plan) - 1 else start + int(round(steps * _WEIGHT[kind] / total))
        end = max(end, start)
        stages.append(Stage(i, kind, res_i, t_i, lvl, start, end))
        start = end
    return stages


def extend_stages(stages: list[Stage], steps: int) -> list[Stage]:
    """The same schedule, its last stage running on to `steps` (an extended run).

    Training longer must not change what the first steps did (a resumed run is
    bit-for-bit the old one up to its end), so the layout stays and only the
    last stage, the final size and clip length, gets the extra steps.
    """
    last = stages[-1]
    if steps <= last.last_step:
        return stages
    return [*stages[:-1], replace(last, last_step=steps)]


def lr_scale(step: int, steps: int, decay: float) -> float:
    """The learning rates' multiplier at `step`: 1, then over the last `decay`
    share of `steps` a linear fall towards 0 (pix2pixHD's and vid2vid's
    `niter_decay`), so the last weights are an average, not a GAN's latest
    jump. It reads the run's total steps: an extended run decays again over
    the last share of its new total (its old end had lr near 0, the extra
    steps restart higher), which is a warm restart, not a change of the past."""
    if decay <= 0.0:
        return 1.0
    start = steps * (1.0 - decay)
    if step < start:
        return 1.0
    return max(0.0, (steps - step) / (steps - start))


def stage_at(step: int, stages: list[Stage]) -> Stage:
    """The stage that `step` belongs to (the last stage for steps past the end)."""
    for stage in stages:
        if stage.first_step <= step < stage.last_step:
            return stage
    return stages[-1]


def format_table(stages: list[Stage]) -> str:
    rows = ["stage  kind      steps            size  frames  levels"]
    for s in stages:
        rows.append(f"{s.index:>5}  {s.kind:<8}  {s.first_step:>6} - {s.last_step:<6}  "
                    f"{s.size:>4}  {s.frames:>6}  {s.levels:>6}")
    return "\n".join(rows)
