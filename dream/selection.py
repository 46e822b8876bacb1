"""Which G_ema snapshot to keep: the one whose motion is closest to the training motion.

GAN motion does not improve steadily: on dancer.avi the Fréchet distance of
G_ema's 16-frame windows to the held-out ones went 84, 38, 25, 34, 35, 30 at
1000..6000 steps (one run). The same distance to the *training* windows
follows it (104, 45, 26, 31, 32, 27), so it picks the snapshot without looking
at held-out data, as StyleGAN picks snapshots by FID against its training set.

With several `select_temperatures` it also picks the noise scale the snapshot
dreams at by default: GAN motion is narrower than its data, and more noise
brings it back towards the training motion's spread (RESULTS.md, "Dream").

With `validation` sequences (the config's `validation` share, cut from the end
of the training part and never trained on) it compares with those instead: the
training windows reward a model that replays them, and low noise, which does.
"""

from __future__ import annotations

import numpy as np

from dream.motion_data import MotionSequence
from dream.motion_metrics import PCA, frechet, window_features

PCA_DIMS = 24           # as benchmarks/bench_dream.py's table
STRETCHES = 8           # stretches of motion per judgement, spread over [0, max_time)
SECONDS = 15.0          # each
SEED = 0


def windows_of(motions: list[MotionSequence]) -> np.ndarray:
    """Every 16-frame window with a person throughout, all sequences: `[W, F]` (W may be 0)."""
    windows = [w for w in (window_features(m.features, 1, m.valid) for m in motions) if len(w)]
    return np.concatenate(windows) if windows else np.zeros((0, 1))


def cut_validation(motions: list[MotionSequence], share: float
                   ) -> tuple[list[MotionSequence], list[MotionSequence] | None]:
    """(training sequences, validation sequences or None): the last `share` of each sequence
    is held back for the judge, unless that leaves it too few windows to judge on (a short
    dataset then trains on all its frames and is judged on them)."""
    if share <= 0:
        return motions, None
    parts = [m.split(share) for m in motions]
    train, validation = [t for t, _ in parts], [v for _, v in parts]
    if len(windows_of(validation)) <= PCA_DIMS or len(windows_of(train)) <= PCA_DIMS:
        return motions, None
    return train, validation


class SnapshotJudge:
    """Scores a generator by the Fréchet distance of its windows to the validation windows,
    or to the training windows where there are none."""

    def __init__(self, motions: list[MotionSequence],
                 validation: list[MotionSequence] | None = None):
        train = windows_of(motions)
        reference = windows_of(validation) if validation else train
        self.fps = motions[0].frame.fps
        self.real = None
        if len(train) > PCA_DIMS and len(reference) > PCA_DIMS:
            self.pca = PCA(train, PCA_DIMS)          # the axes of the motion G learns
            self.real = self.pca(reference)

    def __call__(self, G, temperature: float = 1.0) -> float:
        """G's distance (lower is closer); inf where the data have too few windows to judge.

        The stretches lie all over the trained time range: a motion that fades after some
        minutes scores worse than one that keeps going.
        """
        if self.real is None:
            return float("inf")
        n = int(SECONDS * self.fps)
        starts = np.linspace(0.0, G.cfg.max_time - SECONDS, STRETCHES)
        times = np.concatenate([s + np.arange(n) / self.fps for s in starts])
        poses = G.sample(SEED, times, temperature).reshape(STRETCHES, n, -1)
        windows = np.concatenate([window_features(p, stride=2) for p in poses])
        return frechet(self.pca(windows), self.real)
