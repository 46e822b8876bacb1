"""Face crop boxes from OpenPose keypoints, and a batched crop-and-resize.

Shared by training (face discriminator) and evaluation. Keypoints are in the
OpenPose layout of the dataset's `pose/*.json`: BODY_25 [25, 3] and face
[70, 3] rows of (x, y, confidence) in frame pixels, confidence 0 = missing.
Coordinates follow the keypoints: pixel centres at integers, so a box edge at
-0.5 is the left border of the frame.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["face_boxes", "crop_and_resize", "BODY_HEAD", "BODY_NECK", "BODY_NOSE"]

BODY_NOSE, BODY_NECK = 0, 1
BODY_HEAD = (0, 15, 16, 17, 18)  # nose, right eye, left eye, right ear, left ear
FACE_OUTLINE = slice(0, 68)  # the 68 dlib-style points; 68/69 are the pupils
MIN_FACE_POINTS = 10


def _as_keypoints(x: Any, n: int, name: str) -> Tensor:
    t = torch.as_tensor(x)
    t = t.float() if not t.is_floating_point() else t
    if t.dim() < 2 or tuple(t.shape[-2:]) != (n, 3):
        raise ValueError(
            f"face_boxes: {name} keypoints must be [..., {n}, 3], got {tuple(t.shape)}"
        )
    return t


def _masked_extent(xy: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Min and max over valid points. xy [..., P, 2], valid [..., P] -> [..., 2] each."""
    big = torch.finfo(xy.dtype).max
    lo = torch.where(valid[..., None], xy, torch.full_like(xy, big)).amin(dim=-2)
    hi = torch.where(valid[..., None], xy, torch.full_like(xy, -big)).amax(dim=-2)
    return lo, hi


def face_boxes(
    body: Optional[Any],
    face: Optional[Any],
    image_size: tuple[int, int],
    scale: float = 2.5,
    min_confidence: float = 0.1,
    min_side: float = 8.0,
) -> tuple[Tensor, Tensor]:
    """Square face boxes from face keypoints, falling back to the body's head points.

    With at least 10 confident face points: the box is centred on the face
    points' horizontal middle and at 2/5 of the way from their top (brows) to
    their bottom (chin), so the forehead and hair are in; its side is `scale`
    times the larger extent of the points (imaginaire's face crop uses 2.5).
    Otherwise, from BODY_25's nose, eyes and ears (and the neck for size): the
    centre is the mean of the confident head points, the side `scale` times
    the larger of their extent and 0.8 * |nose - neck|. Boxes are shrunk to
    fit the frame if needed and shifted inside it.

    Args:
        body: BODY_25 keypoints or None.
        face: face-70 keypoints or None (at least one of the two).
        image_size: (H, W) of the frame in pixels.
        scale: box side / face size.
        min_confidence: keypoints below this are treated as missing.
        min_side: faces smaller than this (pixels, before `scale`) are invalid.

    Returns:
        boxes: (x0, y0, x1, y1) edges, float; invalid entries hold a centred
            box of a quarter of the frame so that cropping still works.
        valid: True where a face was found.

    Shape:
        - body: [..., 25, 3]; face: [..., 70, 3] (same leading dims)
        - boxes: [..., 4]; valid: [...]
    """
    if body is None and face is None:
        raise ValueError("face_boxes: pass body and/or face keypoints")
    h, w = image_size
    kp_body = _as_keypoints(body, 25, "body") if body is not None else None
    kp_face = _as_keypoints(face, 70, "face") if face is not None else None
    ref = kp_face if kp_face is not None else kp_body
    assert ref is not None
    lead = ref.shape[:-2]
    if kp_body is not None and kp_face is not None and kp_body.shape[:-2] != kp_face.shape[:-2]:
        raise ValueError(
            f"face_boxes: body {tuple(kp_body.shape)} and face {tuple(kp_face.shape)} "
            "keypoints must share leading dims"
        )
    center = torch.zeros(*lead, 2, dtype=ref.dtype, device=ref.device)
    size = torch.zeros(*lead, dtype=ref.dtype, device=ref.device)
    valid = torch.zeros(*lead, dtype=torch.bool, device=ref.device)

    if kp_body is not None:
        head = kp_body[..., BODY_HEAD, :]
        ok = head[..., 2] > min_confidence
        n_ok = ok.sum(-1)
        mean = (head[..., :2] * ok[..., None]).sum(-2) / n_ok.clamp_min(1)[..., None]
        lo, hi = _masked_extent(head[..., :2], ok)
        extent = torch.where(n_ok >= 2, (hi - lo).amax(-1), torch.zeros_like(size))
        nose, neck = kp_body[..., BODY_NOSE, :], kp_body[..., BODY_NECK, :]
        both = (nose[..., 2] > min_confidence) & (neck[..., 2] > min_confidence)
        neck_len = torch.where(both, (nose[..., :2] - neck[..., :2]).norm(dim=-1) * 0.8,
                               torch.zeros_like(size))
        body_size = torch.maximum(extent, neck_len)
        body_ok = (n_ok >= 1) & (body_size >= min_side)
        center = torch.where(body_ok[..., None], mean, center)
        size = torch.where(body_ok, body_size, size)
        valid = valid | body_ok

    if kp_face is not None:
        pts = kp_face[..., FACE_OUTLINE, :]
        ok = pts[..., 2] > min_confidence
        lo, hi = _masked_extent(pts[..., :2], ok)
        face_size = (hi - lo).amax(-1)
        face_ok = (ok.sum(-1) >= MIN_FACE_POINTS) & (face_size >= min_side)
        cx = (lo[..., 0] + hi[..., 0]) / 2
        cy = (3 * lo[..., 1] + 2 * hi[..., 1]) / 5
        # Face keypoints, when usable, win over the coarser body estimate.
        center = torch.where(face_ok[..., None], torch.stack([cx, cy], -1), center)
        size = torch.where(face_ok, face_size, size)
        valid = valid | face_ok

    limit = float(min(h, w))
    side = torch.where(valid, (size * scale).clamp(max=limit), torch.full_like(size, limit / 4))
    default_center = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=ref.dtype, device=ref.device)
    center = torch.where(valid[..., None], center, default_center)
    # Shift inside the frame [-0.5, W - 0.5] x [-0.5, H - 0.5].
    x0 = (center[..., 0] - side / 2).clamp(min=-0.5)
    x0 = torch.minimum(x0, w - 0.5 - side)
    y0 = (center[..., 1] - side / 2).clamp(min=-0.5)
    y0 = torch.minimum(y0, h - 0.5 - side)
    boxes = torch.stack([x0, y0, x0 + side, y0 + side], dim=-1)
    return boxes, valid


def crop_and_resize(images: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Crop one box per image and resize it to size x size (bilinear).

    Differentiable with respect to the images (the face D's gradient reaches
    the generator). Areas of a box outside the frame repeat the border.
    Bilinear sampling does not low-pass: crops much larger than `size` alias.

    Args:
        images: the frames.
        boxes: (x0, y0, x1, y1) edges in pixel coordinates (pixel centres at
            integers), e.g. from `face_boxes`.
        size: output side in pixels.

    Shape:
        - images: [N, C, H, W]
        - boxes: [N, 4]
        - output: [N, C, size, size]
    """
    if images.dim() != 4:
        raise ValueError(f"crop_and_resize: images must be [N, C, H, W], got {tuple(images.shape)}")
    if boxes.shape != (images.shape[0], 4):
        raise ValueError(
            f"crop_and_resize: boxes must be [N, 4] with N = {images.shape[0]}, "
            f"got {tuple(boxes.shape)}"
        )
    n, _, h, w = images.shape
    dtype = torch.promote_types(images.dtype, torch.float32)
    b = boxes.to(device=images.device, dtype=dtype)
    # The centre of output pixel j lies at fraction (j + 0.5) / size across the
    # box; in grid_sample's align_corners=False units the frame's outer edges
    # (-0.5 and W - 0.5 in pixel coordinates) are -1 and 1.
    t = (torch.arange(size, device=images.device, dtype=dtype) + 0.5) / size  # [S]
    xs = b[:, 0:1] + t * (b[:, 2:3] - b[:, 0:1])  # [N, S] pixel coordinates
    ys = b[:, 1:2] + t * (b[:, 3:4] - b[:, 1:2])
    gx = (xs + 0.5) / w * 2 - 1
    gy = (ys + 0.5) / h * 2 - 1
    grid = torch.stack(
        [gx[:, None, :].expand(n, size, size), gy[:, :, None].expand(n, size, size)], dim=-1
    )
    with torch.autocast(device_type=images.device.type, enabled=False):
        out = F.grid_sample(images.to(dtype), grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
    return out.to(images.dtype)
