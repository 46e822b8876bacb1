"""Measures of dreamed motion against real motion (benchmarks/bench_dream.py's table).

All inputs are `[T, 50]` feature sequences (dream.pose_frame: torso lengths,
neck relative to the dataset's mean neck, joints relative to the neck) at one
frame rate. Windows are 16 frames.
"""

from __future__ import annotations

import numpy as np
import torch

from dream.pose_frame import NECK
from vid2vid.pose import BODY_LIMBS

WINDOW = 16


def absolute(features: np.ndarray) -> np.ndarray:
    """`[T, 50]` -> `[T, 25, 2]` positions in torso lengths (neck included)."""
    f = features.reshape(len(features), 25, 2).astype(np.float64)
    neck = f[:, NECK].copy()
    out = f + neck[:, None]
    out[:, NECK] = neck
    return out


def window_starts(length: int, stride: int = 1, valid: np.ndarray | None = None) -> list[int]:
    """First frames of the windows `window_features` makes: every `stride`-th, with a person
    in all `WINDOW` frames where `valid` says which frames have one."""
    return [s for s in range(0, length - WINDOW + 1, stride)
            if valid is None or valid[s:s + WINDOW].all()]


def window_features(features: np.ndarray, stride: int = 1, valid: np.ndarray | None = None
                    ) -> np.ndarray:
    """`[W, F]`: per window, joint positions relative to the neck (torso lengths) and the
    velocities of every joint (the neck's too, so travel counts)."""
    rel = features.reshape(len(features), 25, 2).copy()
    rel = np.delete(rel, NECK, axis=1).reshape(len(features), -1)
    vel = np.diff(absolute(features).reshape(len(features), -1), axis=0)
    vel = np.concatenate([np.zeros((1, vel.shape[1])), vel])
    return np.asarray([np.concatenate([rel[s:s + WINDOW].ravel(), vel[s + 1:s + WINDOW].ravel()])
                       for s in window_starts(len(features), stride, valid)])


class PCA:
    """Principal axes fitted on real training windows; Fréchet distances are taken there
    (1500-dim windows, a few hundred held-out ones: covariances need fewer dims)."""

    def __init__(self, x: np.ndarray, dims: int):
        self.mean = x.mean(0)
        _, _, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        self.axes = vt[:dims]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) @ self.axes.T


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to rows of `a` and `b`."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(s1 s2) = sum of the square roots of its (real, >= 0) eigenvalues
    eig = np.linalg.eigvals(s1 @ s2).real.clip(min=0)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2) - 2 * np.sqrt(eig).sum())


def bone_lengths(features: np.ndarray, joints: tuple[bool, ...]) -> np.ndarray:
    """`[T, bones]` lengths (torso lengths) of the limbs whose joints the data shows."""
    p = absolute(features)
    limbs = [(a, b) for a, b in BODY_LIMBS if joints[a] and joints[b]]
    return np.stack([np.linalg.norm(p[:, a] - p[:, b], axis=1) for a, b in limbs], 1)


def joint_speed(features: np.ndarray) -> np.ndarray:
    """`[T-1]` fastest joint's displacement per frame (torso lengths)."""
    p = absolute(features)
    return np.linalg.norm(np.diff(p, axis=0), axis=2).max(1)


def nearest_distance(x: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """RMS distance of each row of `x` to its nearest row of `bank`."""
    xb, bb = torch.from_numpy(x).float(), torch.from_numpy(bank).float()
    out = [torch.cdist(xb[s:s + 1024], bb).min(1).values for s in range(0, len(xb), 1024)]
    return (torch.cat(out) / np.sqrt(x.shape[1])).numpy()


def autocorrelation(features: np.ndarray) -> np.ndarray:
    """`[T]` mean over coordinates of each coordinate's normalised autocorrelation."""
    p = absolute(features).reshape(len(features), -1)
    p = p - p.mean(0)
    n = len(p)
    spec = np.fft.rfft(p, 2 * n, axis=0)
    acf = np.fft.irfft(spec * np.conj(spec), axis=0)[:n]
    acf = acf / np.maximum(acf[:1], 1e-12)
    acf = acf / (n - np.arange(n))[:, None] * n       # unbiased: each lag by its overlap
    return acf.mean(1)
