"""Hands and a face for bodies that have none, lent by the person's own training frames.

Two kinds of body come without them: the motion model's dreams (BODY_25 only)
and a transfer SOURCE of OpenPose JSON written without `--hand --face`
(OpenPose's default). The generator that renders them was trained on maps
that also draw both hands and the face (mediapipe's full ones, or the body
model's coarse ones where those missed). A body alone is a map it never saw:
the hands and face come out blurred or missing.

So each dreamed frame borrows them, part by part, from the training frame whose
pose of that part is closest (a hand: the arm's two bones; the face: the head's
points around the nose), moved rigidly onto the dream: a hand turns with the
forearm and hangs from the wrist, the face turns with the head (the rotation
that best maps the lender's neck, eyes and ears onto the dream's, about the
nose). Each part lends only in the form the person's data shows it most
(full or coarse), the form the generator saw most. The borrowed offsets are
smoothed over about 0.1 s, so a change of lender does not make the part jump.
A frame whose body lacks the joint a part hangs from, or every joint that
turns it, gets no such part; the joints it shows turn it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vid2vid.data import N_KEYPOINTS, pose_to_array
from vid2vid.dataset_dir import frame_path
from vid2vid.pose import BODY, read_openpose_json
from vid2vid.smoothing import gaussian

SMOOTH_SECONDS = 0.1        # Gaussian sigma over the borrowed offsets
CONFIDENCE = 0.9            # written for every point made rather than detected (lent, dreamed)

_B = BODY
NECK = _B["Neck"]


@dataclass(frozen=True)
class Part:
    name: str
    points: slice                   # in the [137, 3] layout
    pivot: int                      # BODY_25 joint it hangs from
    levers: tuple[int, ...]         # BODY_25 joints that turn it (about the pivot)
    pose: tuple[int, ...]           # BODY_25 joints whose pose picks the lender


PARTS = (
    Part("face", slice(25, 95), _B["Nose"], (NECK, _B["REye"], _B["LEye"], _B["REar"],
                                             _B["LEar"]),
         (_B["Nose"], _B["REye"], _B["LEye"], _B["REar"], _B["LEar"])),
    Part("left hand", slice(95, 116), _B["LWrist"], (_B["LElbow"],),
         (_B["LShoulder"], _B["LElbow"], _B["LWrist"])),
    Part("right hand", slice(116, 137), _B["RWrist"], (_B["RElbow"],),
         (_B["RShoulder"], _B["RElbow"], _B["RWrist"])),
)


def _nearest(x: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """`[T]`: the row of `bank` closest to each row of `x`, in chunks of about 4M numbers (an
    hour of dream at 50 fps against thousands of lenders would not fit at once)."""
    chunk = max(1, 2 ** 22 // max(bank.size, 1))
    return np.concatenate([((x[s:s + chunk, None] - bank[None]) ** 2).sum(-1).argmin(1)
                           for s in range(0, len(x), chunk)])


def _rotation(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """`[T, 2, 2]`: per frame, the rotation that best maps the offsets `src` `[T, K, 2]` onto
    `dst` (least squares, no scale: one person, one size)."""
    dot = (src * dst).sum((1, 2))
    cross = (src[..., 0] * dst[..., 1] - src[..., 1] * dst[..., 0]).sum(1)
    a = np.arctan2(cross, dot)
    c, s = np.cos(a), np.sin(a)
    return np.stack([np.stack([c, -s], 1), np.stack([s, c], 1)], 1)


def _descriptor(body: np.ndarray, part: Part, torso: float) -> np.ndarray:
    """`[T, 25, 2+]` body -> `[T, D]`: the part's pose joints relative to the first of them
    (in torso lengths), so lenders are picked by the part's pose, not by where it is."""
    pts = body[:, part.pose, :2]
    return ((pts - pts[:, :1]) / torso).reshape(len(body), -1)


class _Lenders(NamedTuple):
    part: Part                  # with the levers and pose joints the dreams show
    keys: np.ndarray            # [N, D] each lender's pose of the part (_descriptor)
    anchors: np.ndarray         # [N, 1 + levers, 2] its pivot, then its levers
    shapes: np.ndarray          # [N, points, 2] the part's points
    form: np.ndarray            # [points] bool: the form lent (the data's most common)


class DetailLender:
    """The training frames that lend each part (see the module docstring).

    keypoints: `[N, 137, 3]` training keypoints of one person in the frame the
    dream is written in; torso: that frame's torso length in pixels; joints:
    which BODY_25 joints its dreams show (PoseFrame.joints).
    """

    def __init__(self, keypoints: np.ndarray, torso: float, joints: tuple[bool, ...]):
        self.torso = float(torso)
        self.lenders: dict[str, _Lenders] = {}
        kp = np.asarray(keypoints, np.float32)
        for part in PARTS:
            # Only joints the dreams show can place or pick a part.
            part = Part(part.name, part.points, part.pivot,
                        tuple(j for j in part.levers if joints[j]),
                        tuple(j for j in part.pose if joints[j]))
            if not joints[part.pivot] or not part.levers or len(part.pose) < 2:
                continue
            needed = (part.pivot,) + part.levers + part.pose
            present = kp[:, part.points, 2] > 0
            usable = present.any(1) & (kp[:, needed, 2] > 0).all(1)
            if not usable.any():
                continue
            # The form the data shows most: which of the part's points are there.
            forms, counts = np.unique(present[usable], axis=0, return_counts=True)
            form = forms[counts.argmax()]
            lent = kp[usable & (present == form).all(1)]
            self.lenders[part.name] = _Lenders(
                part, _descriptor(lent, part, self.torso),
                lent[:, (part.pivot,) + part.levers, :2], lent[:, part.points, :2], form)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.lenders)

    def lend(self, body: np.ndarray, fps: float) -> np.ndarray:
        """`[T, 25, 3]` body -> `[T, 137, 3]` with the parts borrowed (those no training
        frame can lend stay missing; so does a part where a frame lacks its pivot or every
        lever)."""
        out = np.zeros((len(body), 137, 3), np.float32)
        out[:, :25] = body
        if not len(body):
            return out
        for part, keys, anchors, shapes, form in self.lenders.values():
            pick = _nearest(_descriptor(body, part, self.torso), keys)
            pivot = body[:, part.pivot, None, :2]
            # Levers a frame lacks (an ear in profile) take no part in turning it.
            shown = (body[:, list(part.levers), 2] > 0)[..., None]
            levers = (body[:, list(part.levers), :2] - pivot) * shown
            # Turn the lender's part so its levers point where the body's do, about the pivot.
            turn = _rotation((anchors[pick, 1:] - anchors[pick, :1]) * shown, levers)
            offsets = np.einsum("tij,tkj->tki", turn, shapes[pick] - anchors[pick, :1])
            # Smoothed along the body's first lever, not the image axes: a part that spins
            # would shrink towards its pivot.
            axis = _rotation(np.broadcast_to(np.float32([[1.0, 0.0]]), levers[:, :1].shape),
                             levers[:, :1])
            local = gaussian(np.einsum("tji,tkj->tki", axis, offsets), SMOOTH_SECONDS * fps)
            offsets = np.einsum("tij,tkj->tki", axis, local)
            out[:, part.points, :2] = np.where(form[None, :, None], pivot + offsets, 0.0)
            placed = (body[:, part.pivot, 2] > 0) & shown.any((1, 2))
            out[:, part.points, :2] *= placed[:, None, None]
            out[:, part.points, 2] = np.where(form[None] & placed[:, None], CONFIDENCE, 0.0)
        return out


def read_dataset_keypoints(root: Path, n: int) -> np.ndarray:
    """`[n, 137, 3]` keypoints of a pose dataset's frames 0..n-1 (a frame without a file:
    zeros)."""
    keypoints = np.zeros((n, N_KEYPOINTS, 3), np.float32)
    for k in range(n):
        path = frame_path(root, "pose", k)
        if path.exists():
            keypoints[k] = pose_to_array(read_openpose_json(path))
    return keypoints
