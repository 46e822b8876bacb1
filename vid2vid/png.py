"""A fast PNG encoder for the dataset's masks, edge maps and 16-bit flow images.

Preprocessing writes three PNGs per frame, and libpng through OpenCV spends
more time compressing them (about 13 ms for one 16-bit flow image at 512 px)
than DIS spends computing the flow. Here every row uses PNG's "Up" filter
(difference to the row above: smooth images become runs of zeros) and the
deflate stream comes from ISA-L (`isal`), which is several times faster than
zlib at equal ratio. The result is a standard PNG that any reader opens: about
7x faster and slightly smaller than OpenCV's level-1 output on flow images.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
from isal import isal_zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE = {1: 0, 3: 2, 4: 6}  # channels -> gray, RGB, RGBA


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(image: np.ndarray, level: int = 1) -> bytes:
    """uint8 or uint16 `[H, W]` / `[H, W, 1|3|4]` (channels in RGB order) -> PNG bytes."""
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG needs uint8 or uint16, got {image.dtype}")
    img = image[..., None] if image.ndim == 2 else image
    if img.ndim != 3 or img.shape[2] not in _COLOR_TYPE:
        raise ValueError(f"expected [H, W] or [H, W, 1|3|4], got {image.shape}")
    h, w, c = img.shape
    raw = img.astype(">u2" if img.dtype == np.uint16 else np.uint8, copy=False)
    raw = np.ascontiguousarray(raw).view(np.uint8).reshape(h, -1)
    rows = np.empty((h, raw.shape[1] + 1), np.uint8)
    rows[:, 0] = 2  # filter type "Up"
    rows[0, 1:] = raw[0]
    np.subtract(raw[1:], raw[:-1], out=rows[1:, 1:])  # wraps mod 256, as PNG specifies
    header = struct.pack(">IIBBBBB", w, h, 8 * img.dtype.itemsize, _COLOR_TYPE[c], 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", isal_zlib.compress(rows, level)) + _chunk(b"IEND", b""))


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Writes `image` as PNG atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(encode_png(image))
    os.replace(tmp, path)
