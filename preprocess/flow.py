"""Ground-truth optical flow between consecutive stored frames.

Both estimators return the *backward* flow of frame N (N -> N-1, in pixels),
the direction documented in `vid2vid.flow_png`: `frame_N[p] ~ frame_N-1[p + flow[p]]`.

- DIS (OpenCV, default): fast on a CPU (~100 frames/s at 512 px, medium preset).
- RAFT (torchvision, `--flow raft`): more accurate, needs its pretrained
  weights in the torch hub cache; without them preprocessing says so once and
  uses DIS. Runs on the GPU when there is one.

`FlowPerThread` lets the pipelines' writer threads share one estimator.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np


class DISFlow:
    """OpenCV's Dense Inverse Search flow on grayscale frames."""

    name = "dis"

    def __init__(self, preset: str = "medium"):
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                   "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(presets[preset])

    def __call__(self, gray: np.ndarray, prev_gray: np.ndarray, rgb=None, prev_rgb=None) -> np.ndarray:
        """`[H, W]` uint8 frames N and N-1 -> backward flow `[H, W, 2]` float32."""
        return self._dis.calc(gray, prev_gray, None)


def raft_weights_file() -> Path:
    """Where torchvision keeps RAFT-large's weights once downloaded."""
    import torch
    from torchvision.models.optical_flow import Raft_Large_Weights

    url = Raft_Large_Weights.C_T_SKHT_V2.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


class RAFTFlow:
    """torchvision's RAFT-large with its C+T+Sintel+KITTI+HD1K weights."""

    name = "raft"

    def __init__(self):
        import torch
        from torchvision.models.optical_flow import Raft_Large_Weights, raft_large

        self.torch = torch
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        weights = Raft_Large_Weights.C_T_SKHT_V2
        self.model = raft_large(weights=weights, progress=False).eval().to(self.device)

    def __call__(self, gray, prev_gray, rgb: np.ndarray, prev_rgb: np.ndarray) -> np.ndarray:
        torch = self.torch
        h, w = rgb.shape[:2]
        # RAFT needs sides divisible by 8 and at least 128 (its correlation pyramid).
        ph = max(128, -(-h // 8) * 8) - h
        pw = max(128, -(-w // 8) * 8) - w

        def prep(x: np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float()
            t = torch.nn.functional.pad(t / 127.5 - 1.0, (0, pw, 0, ph), mode="replicate")
            return t.to(self.device)

        with torch.inference_mode():
            flow = self.model(prep(rgb), prep(prev_rgb), num_flow_updates=12)[-1]
        return flow[0, :, :h, :w].permute(1, 2, 0).cpu().numpy().astype(np.float32)


def make_flow(method: str, warn) -> DISFlow | RAFTFlow:
    """The estimator for `--flow METHOD`; RAFT falls back to DIS (saying so) without weights."""
    if method == "raft":
        path = raft_weights_file()
        if path.exists():
            return RAFTFlow()
        warn(f"RAFT weights not found at {path}; using OpenCV DIS flow instead "
             "(download them once with torchvision to use RAFT)")
    return DISFlow()


class FlowPerThread:
    """One estimator for several worker threads: DIS keeps state per call, so each thread
    gets its own; RAFT (one model, maybe on the GPU) is shared behind a lock."""

    def __init__(self, flow: DISFlow | RAFTFlow):
        self.flow = flow
        self.name = flow.name
        self._local = threading.local()
        self._lock = threading.Lock()

    def __call__(self, gray: np.ndarray, prev_gray: np.ndarray, rgb: np.ndarray,
                 prev_rgb: np.ndarray) -> np.ndarray:
        """As the estimator's own call: frames N and N-1 -> backward flow `[H, W, 2]`."""
        if self.flow.name == "raft":
            with self._lock:
                return self.flow(gray, prev_gray, rgb, prev_rgb)
        est = getattr(self._local, "flow", None)
        if est is None:
            est = self._local.flow = type(self.flow)()
        return est(gray, prev_gray)
