"""Augmentations: clips mirrored for the discriminators; real clips with swapped limbs.

Fifty seconds of dance is little data for a GAN: its discriminators learn the
training clips by heart and the generator follows them back into replaying
them (RESULTS.md, "Dream": the judge falls far below what real new motion
scores). Augmenting what D sees, real and fake alike (DiffAugment, ADA), keeps
D from memorising without teaching G the augmentation, as long as the chance
stays below 1 (a mirror is invertible, so G cannot tell which D saw). The
mirror swaps the person's left and right and negates x; one draw per clip, so
a clip's samples stay one motion.

Limb swaps augment the data itself (G learns them): a real clip keeps its
torso and head and takes each arm and leg from another moment of the dance, at
the same time gaps, each limb placed at its own shoulder or hip. Bones keep
their lengths and each limb its own motion. New dancing mostly recombines
moves a dancer already made: on dancer.avi such clips lie closer to the
held-out motion than the training clips themselves, but they are harder to
learn: the dreams grow more novel and less like the held-out motion (RESULTS.md,
"Dream", limb swaps), so the option is off; dream.model's limb streams
recombine limbs at sampling time instead, which needs no learning.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vid2vid.pose import BODY, BODY_MIRROR

# (where the limb hangs, the limb's joints): each moves with its own shoulder or hip.
LIMBS = tuple((BODY[root], tuple(BODY[j] for j in joints)) for root, joints in (
    ("RShoulder", ("RElbow", "RWrist")),
    ("LShoulder", ("LElbow", "LWrist")),
    ("RHip", ("RKnee", "RAnkle", "RBigToe", "RSmallToe", "RHeel")),
    ("LHip", ("LKnee", "LAnkle", "LBigToe", "LSmallToe", "LHeel"))))


def mirror(poses: Tensor) -> Tensor:
    """`[..., 50]` features (dream.pose_frame) -> the same poses in a mirror image."""
    xy = poses.unflatten(-1, (25, 2))[..., list(BODY_MIRROR), :]
    return (xy * xy.new_tensor([-1.0, 1.0])).flatten(-2)


def random_mirror(clips: Tensor, chance: float) -> Tensor:
    """`[B, k, 50]` -> each clip mirrored with probability `chance` (torch's global RNG)."""
    if chance <= 0:
        return clips
    flip = torch.rand(clips.shape[0], device=clips.device) < chance
    return torch.where(flip[:, None, None], mirror(clips), clips)


def swap_limbs(poses: np.ndarray, donors: list[np.ndarray]) -> np.ndarray:
    """`[k, 50]` features (dream.pose_frame) with limb n taken from `donors[n]` (`[k, 50]`,
    the same instants elsewhere in the dance), hung from this clip's own shoulder or hip."""
    out = poses.reshape(len(poses), 25, 2).copy()
    for (root, joints), donor in zip(LIMBS, donors):
        d = donor.reshape(len(donor), 25, 2)
        out[:, list(joints)] = out[:, root:root + 1] + d[:, list(joints)] - d[:, root:root + 1]
    return out.reshape(poses.shape)


def swap_limbs_elsewhere(features: np.ndarray, frames: np.ndarray, starts,
                         rng: np.random.Generator) -> np.ndarray:
    """The poses at `frames` of a `[N, 50]` sequence, each limb taken from the same instants
    shifted to a first frame drawn from `starts` (one draw per limb)."""
    shifts = rng.choice(starts, len(LIMBS)) - frames[0]
    return swap_limbs(features[frames], [features[frames + d] for d in shifts])
