"""Which G_ema snapshot to keep: the one whose motion is closest to the training motion.

GAN motion does not improve steadily: on dancer.avi the Fréchet distance of
G_ema's 16-frame windows to the held-out ones went 84, 38, 25, 34, 35, 30 at
1000..6000 steps (one run). The same distance to the *training* windows
follows it (104, 45, 26, 31, 32, 27), so it picks the snapshot without looking
at held-out data, as StyleGAN picks snapshots by FID against its training set.

With several `select_temperatures` it also picks the noise scale the snapshot
dreams at by default: GAN motion is narrower than its data, and more noise
brings it back towards the training motion's spread (RESULTS.md, "Dream").
"""

from __future__ import annotations

import numpy as np

from dream.motion_data import MotionSequence
from dream.motion_metrics import PCA, frechet, window_features

PCA_DIMS = 24           # as benchmarks/bench_dream.py's table
STRETCHES = 8           # stretches of motion per judgement, spread over [0, max_time)
SECONDS = 15.0          # each
SEED = 0


class SnapshotJudge:
    """Scores a generator by the Fréchet distance of its windows to the training windows."""

    def __init__(self, motions: list[MotionSequence]):
        windows = [w for w in (window_features(m.features, 1, m.valid) for m in motions) if len(w)]
        self.fps = motions[0].frame.fps
        self.real = None
        if sum(len(w) for w in windows) > PCA_DIMS:
            windows = np.concatenate(windows)
            self.pca = PCA(windows, PCA_DIMS)
            self.real = self.pca(windows)

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
