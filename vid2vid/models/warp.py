"""Backward warping of images by optical flow in pixels, and flow chaining.

Convention used everywhere in vid2vid: a flow is *backward*, from frame t to
frame t-1, in pixels, channel 0 = x (horizontal, to the right) and channel 1 =
y (down). Warping the previous frame by it brings that frame onto frame t:

    warp(prev, flow)[p] = prev[p + flow[p]]

Pixel centres sit at integer coordinates 0..W-1 and 0..H-1, which is
`grid_sample`'s `align_corners=True` (the semantics of the 2018 code, where it
was PyTorch's default). With it an integer flow moves pixels by exactly that
many pixels; `align_corners=False` would instead treat the frame edges as
pixel borders and the mapping from pixels to grid units would differ by half
a pixel at each edge. Samples falling outside the frame take the nearest border
pixel (`padding_mode="border"`), as in the 2018 code, so pixels entering the
frame are filled by stretching the edge rather than by black.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["warp", "compose_flows"]


def _check_pair(image: Tensor, flow: Tensor) -> None:
    if image.dim() != 4:
        raise ValueError(f"warp: image must be [B, C, H, W], got shape {tuple(image.shape)}")
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"warp: flow must be [B, 2, H, W], got shape {tuple(flow.shape)}")
    if image.shape[0] != flow.shape[0] or image.shape[-2:] != flow.shape[-2:]:
        raise ValueError(
            "warp: image and flow must share batch and size, got "
            f"{tuple(image.shape)} and {tuple(flow.shape)}"
        )
    if image.shape[-1] < 2 or image.shape[-2] < 2:
        raise ValueError(f"warp: frames must be at least 2x2 pixels, got {tuple(image.shape[-2:])}")


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Sample `image` at `p + flow[p]` (bilinear, border padding, align_corners=True).

    Differentiable with respect to both the image and the flow. The sampling
    grid is built in at least float32 even under bf16 autocast: in bf16 a
    coordinate near 512 is only representable to +-2 pixels.

    Args:
        image: the frame to pull pixels from (usually frame t-1).
        flow: backward flow t -> t-1 in pixels; channel 0 = x, 1 = y.

    Returns:
        The warped image, in `image`'s dtype and memory format.

    Shape:
        - image: [B, C, H, W]
        - flow: [B, 2, H, W]
        - output: [B, C, H, W]
    """
    _check_pair(image, flow)
    b, _, h, w = image.shape
    dtype = torch.promote_types(torch.promote_types(image.dtype, flow.dtype), torch.float32)
    # Autocast would otherwise choose grid_sample's dtype for us; we want >= fp32.
    with torch.autocast(device_type=image.device.type, enabled=False):
        ys = torch.linspace(-1.0, 1.0, h, device=image.device, dtype=dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=image.device, dtype=dtype)
        base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [H, W, 2] as (x, y)
        # Pixels -> grid units: with align_corners=True, W-1 pixels span 2 units. Python
        # scalars, not a tensor made from a list: that would be a blocking host copy on CUDA.
        f = flow.to(dtype)
        step = torch.stack((f[:, 0] * (2.0 / (w - 1)), f[:, 1] * (2.0 / (h - 1))), dim=-1)
        grid = base.unsqueeze(0) + step
        out = F.grid_sample(
            image.to(dtype), grid, mode="bilinear", padding_mode="border", align_corners=True
        )
    if image.is_contiguous(memory_format=torch.channels_last) and not image.is_contiguous():
        out = out.contiguous(memory_format=torch.channels_last)
    return out.to(image.dtype)


def compose_flows(flows: Tensor) -> Tensor:
    """Chain consecutive backward flows into one flow spanning all of them.

    `flows[:, i]` is the backward flow from frame i+1 to frame i (the layout
    of a clip's ground-truth flows). The result maps frame N to frame 0 where
    N = flows.shape[1]: a pixel p of frame N lands at q = p + f_N(p) in frame
    N-1, then at q + f_{N-1}(q) in frame N-2, and so on, so
    F = f_N; F <- F + warp(f_k, F) for k = N-1 .. 1. Only meaningful where
    the pixel stays visible; occlusions are not detected.

    Shape:
        - flows: [B, N, 2, H, W] with N >= 1
        - output: [B, 2, H, W]
    """
    if flows.dim() != 5 or flows.shape[2] != 2 or flows.shape[1] < 1:
        raise ValueError(
            f"compose_flows: flows must be [B, N, 2, H, W] with N >= 1, got {tuple(flows.shape)}"
        )
    total = flows[:, -1]
    for k in range(flows.shape[1] - 2, -1, -1):
        total = total + warp(flows[:, k], total)
    return total
