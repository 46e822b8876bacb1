"""Per-frame quality metrics for generated video (the quality protocol, DESIGN.md section 8).

Images are float tensors `[N, 3, H, W]` in [0, 1], one row per frame; every
function returns one value per frame (`[N]`), so callers can plot them and
average them as they like, and stream a long video in chunks. Devices and
dtypes follow the inputs. A frame whose region is empty (no person box)
scores NaN; average with `nanmean`.

- `psnr`: 10 log10(1 / MSE), capped at `max_db` (100 dB by default) so that
  identical frames give a finite number that still averages sensibly.
- `ssim`: kornia's SSIM map (11x11 Gaussian window, sigma 1.5, reflect
  padding, no epsilon so identical frames score exactly 1), averaged over
  the frame or the region. The map is computed on the whole frame, so the
  pixels just inside a box see their true neighbours.
- `warp_error`: temporal flicker as in Lai et al. (ECCV 2018): the squared
  difference, averaged over channels, between frame t and frame t-1 warped by
  the *real* video's backward flow t -> t-1, averaged over the pixels that
  `occlusion_mask` keeps. Computed for the real frames with the same mask, it
  is the floor a perfect generator would reach.
- `occlusion_mask`: the dataset stores only backward flow, so there is no
  forward-backward check; instead a pixel counts when (1) the flow is valid
  (the PNG's valid channel), (2) it points inside the previous frame, and (3)
  the real frames agree there after warping: mean |real_t - warp(real_t-1)|
  over channels <= `threshold` (0.1 by default, about 25 grey levels: far above
  JPEG noise, far below what an occlusion or a wrong flow leaves).
- `pose_consistency`: poses re-detected on generated frames against the poses
  that drove them: detection rate, and the mean distance of body keypoints
  present in both, over the driving pose's torso length (neck to mid-hip).

Regions are person boxes `[N, 4]` as (x0, y0, x1, y1) in pixels, a pixel
(x, y) belonging to its box when x0 <= x < x1 and y0 <= y < y1; a row of NaN
means "no box this frame". `pose_boxes` makes them from poses, `mask_boxes`
from masks (a scene's foreground classes). `psnr` and `ssim` also take a
pixel mask `[N, 1, H, W]` (bool), alone or with a box (the pixels in both);
`background_mask` makes one from a person mask: the pixels outside it once
it is grown by a few pixels, so that the person's edge (where a soft mask and
a slightly misplaced figure disagree) does not count as background.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from vid2vid.models.warp import warp
from vid2vid.pose import BODY, Pose

__all__ = [
    "to_tensor", "pose_box", "pose_boxes", "mask_boxes", "box_mask", "background_mask", "psnr",
    "ssim", "occlusion_mask", "warp_error", "torso_length", "PoseConsistency", "pose_consistency",
]

MAX_PSNR_DB = 100.0


def _check_images(name: str, x: Tensor, channels: int | None = 3) -> None:
    if x.dim() != 4 or (channels is not None and x.shape[1] != channels):
        c = "C" if channels is None else str(channels)
        raise ValueError(f"{name} must be [N, {c}, H, W], got shape {tuple(x.shape)}")


def _check_same(names: str, a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")


def to_tensor(frames: np.ndarray | Sequence[np.ndarray], device: torch.device | str = "cpu"
              ) -> Tensor:
    """RGB uint8 frames -> float32 images in [0, 1].

    Shape:
        - frames: [N, H, W, 3] (an array or a list of [H, W, 3])
        - output: [N, 3, H, W]
    """
    arr = np.stack(frames) if not isinstance(frames, np.ndarray) else frames
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [N, H, W, 3], got {arr.dtype} {arr.shape}")
    t = torch.from_numpy(np.ascontiguousarray(arr)).to(device)
    return t.permute(0, 3, 1, 2).float().div_(255.0)


def pose_box(pose: Pose | None, size: tuple[int, int], margin: float = 0.1
             ) -> tuple[float, float, float, float] | None:
    """The person's box: all present keypoints (body, face, hands), grown by `margin`.

    The box is widened by `margin` times its height on every side (keypoints
    stop at the brows and ankles; the hair and feet lie beyond), then clipped
    to the `size = (width, height)` frame. None when fewer than two points.
    """
    if pose is None:
        return None
    pts = np.concatenate([a[a[:, 2] > 0, :2] for a in pose.parts().values()])
    if len(pts) < 2:
        return None
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    pad = margin * max(y1 - y0, x1 - x0)
    w, h = size
    box = (max(0.0, x0 - pad), max(0.0, y0 - pad), min(float(w), x1 + pad + 1),
           min(float(h), y1 + pad + 1))
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    return tuple(float(v) for v in box)


def pose_boxes(poses: Sequence[Pose | None], size: tuple[int, int], margin: float = 0.1
               ) -> Tensor:
    """`pose_box` for each frame, NaN rows where there is none.

    Shape:
        - output: [N, 4] float32 (x0, y0, x1, y1)
    """
    rows = [pose_box(p, size, margin) or (math.nan,) * 4 for p in poses]
    return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), 4)


def mask_boxes(masks: Tensor, margin: float = 0.1) -> Tensor:
    """The box of each mask's set pixels, grown by `margin` times its longer side on every
    side and clipped to the frame; a NaN row where a mask is empty.

    Shape:
        - masks: [N, 1, H, W], bool or float (set where > 0.5)
        - output: [N, 4] float32 (x0, y0, x1, y1), on the masks' device
    """
    if masks.dim() != 4 or masks.shape[1] != 1:
        raise ValueError(f"masks must be [N, 1, H, W], got shape {tuple(masks.shape)}")
    n, _, h, w = masks.shape
    on = (masks > 0.5) if masks.dtype != torch.bool else masks
    cols, rows = on[:, 0].any(1), on[:, 0].any(2)                 # [N, W], [N, H]
    xs = torch.arange(w, device=masks.device, dtype=torch.float32)
    ys = torch.arange(h, device=masks.device, dtype=torch.float32)
    inf = torch.tensor(math.inf, device=masks.device)
    x0 = torch.where(cols, xs, inf).amin(1)
    x1 = torch.where(cols, xs, -inf).amax(1) + 1
    y0 = torch.where(rows, ys, inf).amin(1)
    y1 = torch.where(rows, ys, -inf).amax(1) + 1
    pad = margin * torch.maximum(x1 - x0, y1 - y0)
    box = torch.stack([(x0 - pad).clamp_min(0), (y0 - pad).clamp_min(0),
                       (x1 + pad).clamp_max(w), (y1 + pad).clamp_max(h)], 1)
    empty = ~cols.any(1)
    return torch.where(empty[:, None], torch.full_like(box, math.nan), box)


def box_mask(boxes: Tensor, height: int, width: int) -> Tensor:
    """Boolean masks of boxes; a NaN box gives an empty mask.

    Shape:
        - boxes: [N, 4] (x0, y0, x1, y1) in pixels
        - output: [N, 1, H, W] bool, on the boxes' device
    """
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be [N, 4] (x0, y0, x1, y1), got shape {tuple(boxes.shape)}")
    b = boxes.float()
    xs = torch.arange(width, device=b.device, dtype=b.dtype)
    ys = torch.arange(height, device=b.device, dtype=b.dtype)
    # Comparisons with NaN are False, so a NaN box selects nothing.
    in_x = (xs >= b[:, 0:1]) & (xs < b[:, 2:3])            # [N, W]
    in_y = (ys >= b[:, 1:2]) & (ys < b[:, 3:4])            # [N, H]
    return (in_y[:, :, None] & in_x[:, None, :]).unsqueeze(1)


def background_mask(person: Tensor, grow: int) -> Tensor:
    """The pixels outside a person mask dilated by `grow` pixels (a square of side 2 grow + 1).

    Shape:
        - person: [N, 1, H, W], bool or float (set where > 0.5)
        - output: [N, 1, H, W] bool, on the mask's device
    """
    if person.dim() != 4 or person.shape[1] != 1:
        raise ValueError(f"person must be [N, 1, H, W], got shape {tuple(person.shape)}")
    if grow < 0:
        raise ValueError(f"grow must be >= 0 pixels, got {grow}")
    on = (person > 0.5) if person.dtype != torch.bool else person
    if grow:
        on = torch.nn.functional.max_pool2d(on.float(), 2 * grow + 1, stride=1,
                                            padding=grow) > 0
    return ~on


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Per-frame mean of `values` [N, C, H, W] over `mask` [N, 1, H, W]; NaN where it is empty."""
    if mask is None:
        return values.flatten(1).mean(1)
    m = mask.to(values.dtype).expand_as(values)
    total = m.flatten(1).sum(1)
    mean = (values * m).flatten(1).sum(1) / total.clamp_min(1)
    return torch.where(total > 0, mean, torch.full_like(mean, math.nan))


def _region(box: Tensor | None, like: Tensor, mask: Tensor | None = None) -> Tensor | None:
    """The pixels of `box` and of `mask` (both when both are given); None: every pixel."""
    region = None
    if box is not None:
        if box.shape[0] != like.shape[0]:
            raise ValueError(f"box has {box.shape[0]} rows for {like.shape[0]} frames")
        region = box_mask(box.to(like.device), like.shape[-2], like.shape[-1])
    if mask is not None:
        expected = (like.shape[0], 1, *like.shape[-2:])
        if tuple(mask.shape) != expected:
            raise ValueError(f"mask must be [N, 1, H, W] = {expected}, got {tuple(mask.shape)}")
        mask = mask.to(like.device, torch.bool)
        region = mask if region is None else region & mask
    return region


def psnr(generated: Tensor, real: Tensor, box: Tensor | None = None,
         max_db: float = MAX_PSNR_DB, mask: Tensor | None = None) -> Tensor:
    """Peak signal-to-noise ratio in dB per frame (peak 1.0), capped at `max_db`.

    Shape:
        - generated, real: [N, 3, H, W] in [0, 1]
        - box: [N, 4] or None (whole frame)
        - mask: [N, 1, H, W] bool or None (every pixel); with a box, the pixels in both
        - output: [N]
    """
    _check_images("generated", generated)
    _check_same("generated and real", generated, real)
    mse = _masked_mean((generated - real) ** 2, _region(box, generated, mask))
    db = 10 * torch.log10(1.0 / mse)          # mse 0 -> inf -> capped; NaN stays NaN
    return db.clamp(max=max_db)


def ssim(generated: Tensor, real: Tensor, box: Tensor | None = None, window_size: int = 11,
         mask: Tensor | None = None) -> Tensor:
    """Structural similarity per frame (kornia's map, mean over channels and pixels).

    Shape:
        - generated, real: [N, 3, H, W] in [0, 1], H and W > window_size // 2
        - box: [N, 4] or None (whole frame)
        - mask: [N, 1, H, W] bool or None (every pixel); with a box, the pixels in both
        - output: [N]
    """
    import kornia

    _check_images("generated", generated)
    _check_same("generated and real", generated, real)
    if min(generated.shape[-2:]) <= window_size // 2:
        raise ValueError(f"ssim needs frames larger than {window_size // 2} pixels, got "
                         f"{tuple(generated.shape[-2:])}")
    smap = kornia.metrics.ssim(generated, real, window_size, max_val=1.0, eps=0.0)
    return _masked_mean(smap, _region(box, generated, mask))


def occlusion_mask(real: Tensor, real_prev: Tensor, flow: Tensor, valid: Tensor | None = None,
                   threshold: float = 0.1) -> Tensor:
    """Pixels of frame t where the backward flow t -> t-1 can be trusted.

    Kept: flow valid (`valid`, e.g. the flow PNG's third channel), pointing
    inside frame t-1, and photometrically consistent on the real frames
    (mean over channels of |real - warp(real_prev, flow)| <= threshold).

    Shape:
        - real, real_prev: [N, 3, H, W] in [0, 1], frames t and t-1
        - flow: [N, 2, H, W] backward flow t -> t-1 in pixels (x, y)
        - valid: [N, 1, H, W] or [N, H, W] bool, or None (all valid)
        - output: [N, 1, H, W] bool
    """
    _check_images("real", real)
    _check_same("real and real_prev", real, real_prev)
    _check_images("flow", flow, channels=2)
    if flow.shape[0] != real.shape[0] or flow.shape[-2:] != real.shape[-2:]:
        raise ValueError(f"flow {tuple(flow.shape)} does not match frames {tuple(real.shape)}")
    n, _, h, w = flow.shape
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype)
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype)
    tx = xs + flow[:, 0]                                   # where each pixel was in t-1
    ty = ys[:, None] + flow[:, 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    residual = (real - warp(real_prev, flow)).abs().mean(1)
    keep = inside & (residual <= threshold)
    if valid is not None:
        keep &= valid.reshape(n, h, w).to(torch.bool)
    return keep.unsqueeze(1)


def warp_error(frame: Tensor, prev: Tensor, flow: Tensor, mask: Tensor | None = None,
               box: Tensor | None = None) -> Tensor:
    """Temporal warping error per frame pair: mean over kept pixels of the squared
    difference, averaged over channels, between frame t and warp(frame t-1, flow).

    Use the real video's flow and `occlusion_mask`, for the generated and the real
    frames alike, so the two numbers are comparable.

    Shape:
        - frame, prev: [N, 3, H, W] in [0, 1], frames t and t-1
        - flow: [N, 2, H, W] backward flow t -> t-1 in pixels
        - mask: [N, 1, H, W] bool or None (every pixel)
        - box: [N, 4] or None (whole frame)
        - output: [N]
    """
    _check_images("frame", frame)
    _check_same("frame and prev", frame, prev)
    _check_images("flow", flow, channels=2)
    err = ((frame - warp(prev, flow)) ** 2).mean(1, keepdim=True)
    region = _region(box, frame)
    if mask is not None:
        if mask.shape != err.shape:
            raise ValueError(f"mask must be [N, 1, H, W] = {tuple(err.shape)}, got "
                             f"{tuple(mask.shape)}")
        region = mask.bool() if region is None else region & mask.bool()
    return _masked_mean(err, region)


def torso_length(pose: Pose | None) -> float | None:
    """Neck to mid-hip distance in pixels, or None when either is missing (or they coincide)."""
    if pose is None:
        return None
    neck, hip = pose.body[BODY["Neck"]], pose.body[BODY["MidHip"]]
    if neck[2] <= 0 or hip[2] <= 0:
        return None
    length = float(np.hypot(*(neck[:2] - hip[:2])))
    return length if length > 0 else None


@dataclass(frozen=True)
class PoseConsistency:
    """Re-detected vs driving poses.

    detection_rate: share of frames with a driving pose where a person was re-detected.
    distance: mean over frames of `per_frame` (NaN when no frame has one).
    per_frame: mean keypoint distance over torso length for each frame; NaN where
        the driving pose is missing, has no torso, nothing was detected, or no
        body keypoint is present in both.
    detected: per frame, whether a person was re-detected.
    """

    detection_rate: float
    distance: float
    per_frame: tuple[float, ...]
    detected: tuple[bool, ...]


def pose_consistency(detected: Sequence[Pose | None], driving: Sequence[Pose | None]
                     ) -> PoseConsistency:
    """Detection rate and torso-normalised keypoint distance (body keypoints present in both)."""
    if len(detected) != len(driving):
        raise ValueError(f"{len(detected)} detected poses for {len(driving)} driving poses")
    found = [d is not None and d.found for d in detected]
    driven = [g is not None and g.found for g in driving]
    per_frame = []
    for det, drv, ok in zip(detected, driving, found):
        torso = torso_length(drv)
        if not ok or torso is None:
            per_frame.append(math.nan)
            continue
        both = (det.body[:, 2] > 0) & (drv.body[:, 2] > 0)
        if not both.any():
            per_frame.append(math.nan)
            continue
        d = np.linalg.norm(det.body[both, :2] - drv.body[both, :2], axis=1)
        per_frame.append(float(d.mean() / torso))
    n_driven = sum(driven)
    rate = sum(f and g for f, g in zip(found, driven)) / n_driven if n_driven else math.nan
    values = [v for v in per_frame if not math.isnan(v)]
    distance = float(np.mean(values)) if values else math.nan
    return PoseConsistency(rate, distance, tuple(per_frame), tuple(found))
