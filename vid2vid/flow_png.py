"""Optical flow stored as 16-bit PNG in the KITTI encoding.

Each `flow/NNNNNN.png` of a dataset holds the *backward* flow of frame N:
for every pixel p of frame N, the displacement (in pixels of the stored
frames) to where that point was in frame N-1, so that

    frame_N[p] ~= frame_{N-1}[p + flow_N[p]]

which is exactly the flow the generator predicts and `warp` consumes
(`warp(frame_{N-1}, flow_N) ~= frame_N`). Frame 0 has no flow file.

KITTI encoding: three uint16 channels, in RGB order, (u, v, valid) with
u = (R - 2**15) / 64 and v = (G - 2**15) / 64, so values are clipped to about
+-512 pixels; valid is 1 where the flow is defined and 0 elsewhere (a pixel
with valid 0 reads back as flow 0). Any KITTI reader reads our files.

We round the stored values to 1/16 pixel (`STEP`) rather than KITTI's 1/64:
the estimators are accurate to a few tenths of a pixel at best, and the two
random low bits cost 40 % more disk and 20 % more PNG encoding time.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vid2vid.png import write_png

_SCALE = 64.0
_OFFSET = 2**15
_LIMIT = (2**16 - 1 - _OFFSET) / _SCALE  # the largest storable magnitude, ~512 px
STEP = 1 / 16  # stored precision in pixels (a multiple of KITTI's 1/64)
_Q = int(round(STEP * _SCALE))


def encode_flow(flow: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Flow `[H, W, 2]` float (x, y) -> KITTI `[H, W, 3]` uint16 in RGB order.

    Non-finite values are stored as invalid; values are rounded to `STEP`.
    """
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be [H, W, 2], got {flow.shape}")
    # A sum is non-finite when either term is: 3x cheaper than isfinite(...).all(axis=2).
    ok = np.isfinite(flow[..., 0] + flow[..., 1])
    if valid is not None:
        ok &= valid.astype(bool)
    if not ok.all():
        flow = np.where(ok[..., None], flow, 0.0)
    limit = int(_LIMIT / STEP)
    steps = np.rint(flow * (1 / STEP))
    np.clip(steps, -limit, limit, out=steps)
    out = np.empty(flow.shape[:2] + (3,), np.uint16)
    out[..., :2] = steps * _Q + _OFFSET
    out[..., 2] = ok
    return out


def decode_flow(kitti: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KITTI `[H, W, 3]` uint16 in RGB order -> (flow `[H, W, 2]` float32, valid `[H, W]` bool)."""
    if kitti.ndim != 3 or kitti.shape[2] != 3 or kitti.dtype != np.uint16:
        raise ValueError(f"expected a [H, W, 3] uint16 KITTI flow image, got {kitti.shape} {kitti.dtype}")
    valid = kitti[..., 2] > 0
    flow = (kitti[..., :2].astype(np.float32) - _OFFSET) / _SCALE
    flow[~valid] = 0.0
    return flow, valid


def write_flow_png(path: str | Path, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Writes `flow` `[H, W, 2]` to a 16-bit PNG atomically (temp file + rename)."""
    write_png(path, encode_flow(flow, valid))


def read_flow_png(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads a KITTI flow PNG -> (flow `[H, W, 2]` float32 pixels, valid `[H, W]` bool)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read flow image {path}")
    return decode_flow(img[..., ::-1])


FLOW_LIMIT_PX = _LIMIT
