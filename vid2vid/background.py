"""The background plate: a fixed camera's still background, from the training frames.

For every pixel, the median over up to `samples` training frames (spread
evenly over the video's training part) of the frames where that pixel is not
the person (the `seg/` mask, dilated so that the mask's soft edge stays out). A
pixel the person covers in every sampled frame falls back to the plain median,
which is the person's own colours; with `inpaint` (`ModelConfig.plate_inpaint`)
such pixels, and those fewer than `FILL_BELOW` samples show, are filled from the
background around them instead, so the plate shows no body where a driving pose
leaves the spot free. Held-out frames are never read, so
evaluation stays fair to the retrieval baseline, which sees training frames
only.

The plate is made at the model's frame size through `centered_geometry`, the
geometry of training without augmentation, evaluation and transfer, so it lies
on the model pixels of the background it shows. `ModelConfig.background_plate`
feeds it to the generator.

`seen_background` is the other half of the same samples: the pixels that at
least one of them shows as background. The rest (behind a seated person, say)
no training frame shows, so neither the plate nor any model can know it;
`vid2vid evaluate` scores the background there and on the whole background.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from vid2vid.data import VideoIndex, centered_geometry
from vid2vid.dataset_dir import frame_path
from vid2vid.errors import UserError

SAMPLES = 64
FILL_BELOW = 3  # inpaint: a pixel fewer samples show than this is filled (one sample's
                # median is whatever that frame's mask missed: a thin arm, a hand)
DILATE = 0.03   # of the frame height: the person mask grows by this much on each side


def _samples(video: VideoIndex, samples: int) -> np.ndarray:
    """The training frames the plate reads: up to `samples`, spread evenly, with a person."""
    usable = np.flatnonzero(video.person[:video.train_frames])
    if len(usable) == 0:
        usable = np.arange(video.train_frames)
    if len(usable) == 0:
        raise UserError(f"{video.root} has no training frames to make a background plate "
                        "from; lower --holdout or use a longer video")
    picks = usable[np.linspace(0, len(usable) - 1, min(samples, len(usable))).round().astype(int)]
    return np.unique(picks)


def _person(video: VideoIndex, k: int, size: tuple[int, int], geom, kernel) -> np.ndarray:
    """Frame `k`'s person mask at model size, dilated: `[H, W]` bool (none without seg/)."""
    seg = cv2.imread(str(frame_path(video.root, "seg", k)), cv2.IMREAD_UNCHANGED)
    mask = np.zeros(size, np.uint8) if seg is None else geom.image(seg) > 127
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _geometry(video: VideoIndex, size: tuple[int, int]):
    """The centred geometry and the dilation kernel at model size `size`."""
    radius = max(1, int(round(DILATE * size[0])))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return centered_geometry(video.size, size), kernel


def background_plate(video: VideoIndex, size: tuple[int, int], samples: int = SAMPLES,
                     inpaint: bool = False) -> np.ndarray:
    """The still background of `video` at model size `size` = (H, W): `[H, W, 3]` uint8 RGB.
    `inpaint`: the pixels fewer than FILL_BELOW samples show are filled from around them."""
    geom, kernel = _geometry(video, size)
    frames, person = [], []
    for k in _samples(video, samples):
        path = frame_path(video.root, "frames", int(k))
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise UserError(f"{path} is unreadable; run vid2vid preprocess again on that video "
                            "with --overwrite")
        frames.append(geom.image(bgr[..., ::-1]))
        person.append(_person(video, int(k), size, geom, kernel))
    stack = np.stack(frames).astype(np.float32)            # [N, H, W, 3]
    covered = np.stack(person)[..., None]                  # [N, H, W, 1]
    masked = np.where(covered, np.nan, stack)
    always = covered.all(axis=0)[..., 0]                   # the person in every sample
    masked[:, always] = stack[:, always]
    plate = np.clip(np.nanmedian(masked, axis=0) + 0.5, 0, 255).astype(np.uint8)
    hole = (~covered[..., 0]).sum(axis=0) < min(FILL_BELOW, len(frames))
    if inpaint and hole.any() and not hole.all():
        # Telea's method: from the hole's edge inwards, each pixel a weighted mean of the
        # known ones near it; the radius is the dilation's, what one step may reach.
        radius = max(1, int(round(DILATE * size[0])))
        plate = cv2.inpaint(np.ascontiguousarray(plate), hole.astype(np.uint8), radius,
                            cv2.INPAINT_TELEA)
    return plate


def seen_background(video: VideoIndex, size: tuple[int, int], samples: int = SAMPLES
                    ) -> np.ndarray:
    """The pixels at model size `size` that the plate's training samples show as background
    in at least one frame (outside the dilated person mask): `[H, W]` bool."""
    geom, kernel = _geometry(video, size)
    seen = np.zeros(size, bool)
    for k in _samples(video, samples):
        seen |= ~_person(video, int(k), size, geom, kernel)
    return seen


def plate_tensor(plate: np.ndarray) -> torch.Tensor:
    """`[H, W, 3]` uint8 -> `[3, H, W]` float in [-1, 1], what `Generator.set_background` takes."""
    return torch.from_numpy(np.ascontiguousarray(plate)).permute(2, 0, 1).float() / 127.5 - 1.0
