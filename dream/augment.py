"""What the discriminators see: real and fake clips mirrored alike, at random.

Fifty seconds of dance is little data for a GAN: its discriminators learn the
training clips by heart and the generator follows them back into replaying
them (RESULTS.md, "Dream": the judge falls far below what real new motion
scores). Augmenting what D sees, real and fake alike (DiffAugment, ADA), keeps
D from memorising without teaching G the augmentation, as long as the chance
stays below 1 (a mirror is invertible, so G cannot tell which D saw). The
mirror swaps the person's left and right and negates x; one draw per clip, so
a clip's samples stay one motion.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vid2vid.pose import BODY_MIRROR


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
