"""What drives the generator in `vid2vid transfer`, whatever the task, and the command's options.

Each task turns its SOURCE into a `Driving` (`infer.pose_driving`,
`infer.face_driving`, `infer.label_driving`): the model-size maps of every
frame, the source's own frames for the comparison video, its audio and how
many frames had no person or face. `infer.transfer` runs the one generation
loop over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from infer.trained import Precision
from vid2vid.smoothing import OneEuroParams

DETECT_MAX_SIZE = 1024   # longest side a source video is decoded at for detection (as preprocess)


@dataclass(frozen=True)
class TransferOptions:
    """What `vid2vid transfer` can change; the defaults are the command's."""

    checkpoint: str | None = None       # run dir or ckpt file; None: newest run of the target
    compare: bool = False
    normalize: bool = True
    smooth: bool = True
    smoothing: OneEuroParams = OneEuroParams()
    lend: bool = True                    # pose: parts the source never shows, from the target
    max_gap: int = 5
    max_frames: int | None = None
    device: str = "auto"
    precision: Precision = "fp32"
    compile: bool = False                # torch.compile the generator (pays off on GPUs)
    fps: float | None = None             # pose folders outside a dataset
    source_size: tuple[int, int] | None = None   # (w, h), pose folders outside a dataset
    instances: str | None = None         # labels: instance maps of the driving label folder
    runs_root: Path = Path("runs")


@dataclass
class Driving:
    """What drives the generator, whatever the task: the model-size maps of every frame.

    maps: a function returning a fresh iterator of `[H, W, C]` float32 maps in
        [0, 1] (the task's channels), one per output frame, in order.
    frames: a function returning an iterator of the source's own frames (RGB
        uint8) for the comparison video's first panel, or None (e.g. a label
        sequence has no picture of its own).
    panels: the comparison video's panel titles (source?, maps, result).
    held/gaps/empty: frames without a person/face, as `fill_gaps` counts them.
    """

    path: Path
    fps: float
    count: int
    maps: Callable[[], Iterator[np.ndarray]]
    frames: Callable[[], Iterator[np.ndarray]] | None
    panels: tuple[str, ...]
    audio: Path | None = None
    audio_start: float = 0.0       # seconds into `audio` of the first frame
    held: int = 0
    gaps: int = 0
    empty: int = 0
