"""The generator's output layer: a BODY_25 skeleton built bone by bone from the neck.

Instead of 25 free points, G outputs where the neck is and, per bone, a
direction and a length squeezed into the range the training data showed
(`lo + (hi - lo) * sigmoid`). Bones cannot stretch past what was seen (2D
lengths vary with foreshortening, so a range, not one length), and a limb
keeps its joints together. At initialisation G outputs the data's mean pose.

Shapes: raw `[B, T, 2 + 3 * bones]` -> features `[B, T, 50]` (dream.pose_frame).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from dream.pose_frame import NECK
from vid2vid.pose import BODY_LIMBS

BONES = len(BODY_LIMBS)       # 24, parents before children, rooted at the neck
RAW_DIM = 2 + 3 * BONES


def bone_vectors(features: np.ndarray) -> np.ndarray:
    """`[N, 50]` features -> `[N, bones, 2]` child minus parent (torso lengths)."""
    rel = features.reshape(len(features), 25, 2).copy()
    rel[:, NECK] = 0.0
    return np.stack([rel[:, b] - rel[:, a] for a, b in BODY_LIMBS], 1)


class Kinematics(nn.Module):
    """Raw outputs -> features, through the skeleton (see the module docstring)."""

    def __init__(self, features: np.ndarray | None = None):
        super().__init__()
        for name, shape in (("lo", (BONES,)), ("hi", (BONES,)), ("direction", (BONES, 2)),
                            ("length_logit", (BONES,)), ("root", (2,))):
            self.register_buffer(name, torch.zeros(shape))
        if features is not None:
            self.fit(features)

    @torch.no_grad()
    def fit(self, features: np.ndarray) -> None:
        """Bone ranges, mean directions and the mean neck from training `[N, 50]` features."""
        vec = bone_vectors(features)
        length = np.linalg.norm(vec, axis=2)
        lo, hi = length.min(0), length.max(0)
        mean_dir = (vec / np.maximum(length[..., None], 1e-6)).mean(0)
        mean_dir /= np.maximum(np.linalg.norm(mean_dir, axis=1, keepdims=True), 1e-6)
        frac = ((length.mean(0) - lo) / np.maximum(hi - lo, 1e-6)).clip(0.05, 0.95)
        self.lo.copy_(torch.from_numpy(lo))
        self.hi.copy_(torch.from_numpy(hi))
        self.direction.copy_(torch.from_numpy(mean_dir))
        self.length_logit.copy_(torch.from_numpy(np.log(frac / (1 - frac))))
        self.root.copy_(torch.from_numpy(features[:, 2 * NECK:2 * NECK + 2].mean(0)))

    def forward(self, raw: Tensor) -> Tensor:
        root = raw[..., :2] + self.root
        d = raw[..., 2:2 + 2 * BONES].unflatten(-1, (BONES, 2)) + self.direction
        d = d / torch.sqrt((d * d).sum(-1, keepdim=True) + 1e-4)
        length = self.lo + (self.hi - self.lo) * torch.sigmoid(raw[..., 2 + 2 * BONES:]
                                                               + self.length_logit)
        bones = d * length[..., None]
        joints: list[Tensor | None] = [None] * 25
        joints[NECK] = torch.zeros_like(root)
        for k, (a, b) in enumerate(BODY_LIMBS):
            joints[b] = joints[a] + bones[..., k, :]
        joints[NECK] = root                 # the neck's row holds where the neck is
        return torch.stack(joints, -2).flatten(-2)
