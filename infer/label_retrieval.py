"""The nearest-training-frame baseline for label-to-scene: answer a label map with the
training frame whose label map is most alike.

The scene counterpart of `infer.retrieval.PoseIndex`: a generator that only
memorised its training frames would do this, so the evaluation puts it beside
the model to show what the model adds beyond look-up.

Label distance = the share of pixels whose class differs, with both maps first
shrunk to a small grid (`size`, default 32x64) by nearest neighbour. The small
grid keeps the layout of the scene (road below, buildings and sky above, a car
on the left) and drops the exact outlines, which no training frame shares with
a new one anyway; it also makes a query against thousands of frames one
vectorised comparison of `[M, 32, 64]` bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from vid2vid.dataset_dir import frame_path, load_dataset
from vid2vid.errors import UserError

__all__ = ["LabelIndex"]

_CHUNK = 4096  # frames compared at once: bounds the temporary [chunk, h, w] bool array


class LabelIndex:
    """Training label maps, ready for nearest-map queries.

    Args:
        label_maps: one `[H, W]` uint8 class-ID map per training frame (any size;
            maps of different sizes are all brought to `size`).
        size: (height, width) of the grid the maps are compared on.
        frames: the dataset frame index of each map, returned by `nearest`
            (default 0, 1, 2, ...).
    """

    def __init__(self, label_maps: Sequence[np.ndarray], size: tuple[int, int] = (32, 64),
                 frames: Sequence[int] | None = None):
        self.size = (int(size[0]), int(size[1]))
        if min(self.size) < 1:
            raise ValueError(f"size must be positive (height, width), got {size}")
        if frames is not None and len(frames) != len(label_maps):
            raise ValueError(f"{len(frames)} frame numbers for {len(label_maps)} label maps")
        h, w = self.size
        self.maps = (np.stack([self._small(m) for m in label_maps]) if len(label_maps)
                     else np.zeros((0, h, w), np.uint8))
        self.frames = np.asarray(range(len(label_maps)) if frames is None else frames, np.int64)

    def __len__(self) -> int:
        return len(self.maps)

    def _small(self, labels: np.ndarray) -> np.ndarray:
        """`[H, W]` class IDs -> `[h, w]` uint8 by nearest neighbour (IDs are never blended)."""
        if labels.ndim != 2:
            raise ValueError(f"a label map must be [H, W], got {labels.shape}")
        if labels.dtype != np.uint8:
            if labels.size and (labels.min() < 0 or labels.max() > 255):
                raise ValueError("label maps hold 8-bit class IDs (0-255)")
            labels = labels.astype(np.uint8)
        h, w = self.size
        if labels.shape == (h, w):
            return labels
        return cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)

    def distances(self, query: np.ndarray) -> np.ndarray:
        """Share of differing pixels from `query` `[H, W]` to every indexed map: `[M]` float."""
        q = self._small(query)
        out = np.empty(len(self.maps), np.float64)
        for s in range(0, len(self.maps), _CHUNK):
            block = self.maps[s:s + _CHUNK]
            out[s:s + len(block)] = (block != q).mean(axis=(1, 2))
        return out

    def nearest(self, query: np.ndarray) -> int:
        """The frame index of the training map closest to `query` (the first on a tie)."""
        if len(self.maps) == 0:
            raise ValueError("the label index is empty")
        return int(self.frames[int(np.argmin(self.distances(query)))])

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Label distance of two `[H, W]` maps: the share of differing pixels on the grid."""
        return float((self._small(a) != self._small(b)).mean())

    @staticmethod
    def from_dataset(root: str | Path, start: int = 0, stop: int | None = None,
                     size: tuple[int, int] = (32, 64)) -> "LabelIndex":
        """The label maps of dataset frames `start .. stop-1` (e.g. the training split)."""
        root = Path(root)
        meta = load_dataset(root)
        if meta.get("task") != "labels":
            raise UserError(f"{root} is a {meta.get('task', 'pose')!r} dataset without label "
                            "maps; the label baseline needs a dataset made with --task labels")
        n = int(meta["frames"])
        stop = n if stop is None else min(stop, n)
        if not 0 <= start < stop:
            raise UserError(f"frame range {start}..{stop} is empty for {root} ({n} frames); "
                            "pick a range inside the dataset")
        maps = []
        for i in range(start, stop):
            path = frame_path(root, "labels", i)
            labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if labels is None:
                raise UserError(f"{path} is missing or unreadable; run vid2vid preprocess "
                                f"again on {root}")
            maps.append(labels)
        return LabelIndex(maps, size, frames=range(start, stop))
