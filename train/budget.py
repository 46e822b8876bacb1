"""A wall-clock budget turned into a step count, once, before training (`--minutes`).

The step count is fixed from a short calibration and then recorded in the
run's config, so a budgeted run is as deterministic as one given `--steps`
(the same steps reproduce it exactly, on any machine) while still fitting the
minutes on this one. Calibration times the trainer's own step
(`train.bench.TrainingStep`: same networks, losses and optimisers) on a
synthetic clip of each distinct stage shape (size, frames, levels) of the
schedule, a warm-up step and two timed ones each, and weighs each shape by
its share of the schedule's steps:

    steps = (budget - calibration) / (sum_i share_i * seconds_per_step_i) / OVERHEAD

OVERHEAD covers what the timed step leaves out (data loading, sample grids,
stage videos, checkpoints); 1.15 is what the demo and the CPU runs of
RESULTS.md spent beyond their steps.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from train.bench import FP32, TrainingStep, synthetic_clip
from train.schedule import Stage
from vid2vid.config import TrainConfig

OVERHEAD = 1.15
TIMED_STEPS = 2


@dataclasses.dataclass(frozen=True)
class Budget:
    steps: int
    seconds_per_step: dict[tuple[int, int, int], float]   # (size, frames, levels) -> s
    calibration_seconds: float

    def line(self, minutes: float, total_steps: int | None = None) -> str:
        """What the calibration found; `total_steps`: the run's steps to repeat it with (an
        extended run's old steps plus these), default these steps."""
        shapes = ", ".join(f"{s}px x{t} {sec:.2f} s" for (s, t, _), sec in
                           sorted(self.seconds_per_step.items()))
        return (f"budget {minutes:g} min -> {self.steps} steps (calibrated in "
                f"{self.calibration_seconds:.0f} s: {shapes} per step); reproduce it with "
                f"--steps {total_steps or self.steps}")


def seconds_per_step(cfg: TrainConfig, map_channels: int, part: bool, size: int, width: int,
                     frames: int, levels: int, device: torch.device) -> float:
    """Mean time of the trainer's step on one synthetic clip of this shape (after a warm-up)."""
    torch_state = torch.get_rng_state()   # calibration must not change the run's randomness
    try:
        step = TrainingStep(dataclasses.replace(cfg, face_d=cfg.face_d and part), map_channels,
                            levels + 1, device, FP32)
        if cfg.model.background_plate:   # the trainer sets the videos' plates; any costs the same
            for net in (step.G, step.G_ema):
                net.set_background(torch.zeros(1, 3, size, width))
        clip = synthetic_clip(cfg.batch_size, frames, size, map_channels, device, width=width)
        step(clip)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(TIMED_STEPS):
            step(clip)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - t0) / TIMED_STEPS
    finally:
        torch.set_rng_state(torch_state)


def steps_for_minutes(cfg: TrainConfig, stages: list[Stage], minutes: float, map_channels: int,
                      part: bool, width: int, device: torch.device) -> Budget:
    """Steps that fit `minutes` when laid out as `stages` are (their shares of the steps).

    `stages` is any schedule of the run's shape (e.g. `build_stages(1000, ...)`):
    only each stage's shape and share of the steps are read. `width` is the
    final frame width; stages at a lower size scale it down.
    """
    t0 = time.perf_counter()
    total = max(sum(s.last_step - s.first_step for s in stages), 1)
    per_shape: dict[tuple[int, int, int], float] = {}
    weighted = 0.0
    for s in stages:
        shape = (s.size, s.frames, s.levels)
        if shape not in per_shape:
            per_shape[shape] = seconds_per_step(cfg, map_channels, part, s.size,
                                                max(16, width * s.size // cfg.size), s.frames,
                                                s.levels, device)
        weighted += per_shape[shape] * (s.last_step - s.first_step) / total
    spent = time.perf_counter() - t0
    left = max(minutes * 60.0 - spent, 0.0)
    steps = max(1, int(left / (max(weighted, 1e-9) * OVERHEAD)))
    return Budget(steps, per_shape, spent)
