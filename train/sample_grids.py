"""What a person looks at during training: sample grids and short sample videos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from vid2vid.data import ClipDataset
from vid2vid.generate import Synthesizer
from vid2vid.tasks import Task
from vid2vid.video_writer import VideoWriter, side_by_side


def to_uint8(images: torch.Tensor, signed: bool = True) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] (or [0, 1]) -> [N, H, W, 3] uint8 RGB."""
    x = images.detach().float().cpu()
    x = (x + 1) / 2 if signed else x
    x = (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x[:, :3].permute(0, 2, 3, 1).numpy()


def write_grid(path: Path, task: Task, maps: torch.Tensor, fakes: torch.Tensor,
               reals: torch.Tensor, max_frames: int = 8) -> np.ndarray:
    """Rows: maps (as the task pictures them) | generated | real; columns: the clip's
    frames. Inputs [T, C, H, W].

    Writes the PNG and returns the grid (RGB uint8) for TensorBoard."""
    n = min(max_frames, fakes.shape[0])
    rows = [to_uint8(task.picture(maps[:n]), signed=False), to_uint8(fakes[:n]),
            to_uint8(reals[:n])]
    grid = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
    write_image(path, grid)
    return grid


def write_image(path: Path, image: np.ndarray) -> None:
    """An RGB uint8 image as a PNG, atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    cv2.imwrite(str(tmp), np.ascontiguousarray(image[..., ::-1]))
    tmp.replace(path)


def write_sample_video(path: Path, G: torch.nn.Module, dataset: ClipDataset, video: int,
                       first: int, count: int, device: torch.device, temporal: bool,
                       autocast_dtype: torch.dtype | None, fps: float) -> Path:
    """Held-out poses -> G frames, autoregressively; writes maps | generated | real as mp4."""
    synth = Synthesizer(G, temporal=temporal, autocast_dtype=autocast_dtype, video=video)
    h, w = dataset.size
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, fps, (3 * w, h)) as out:
        for k in range(first, first + count):
            clip = dataset.frames_at(video, [k])
            fake = synth(clip.maps.to(device))
            out.write(side_by_side([to_uint8(dataset.task.picture(clip.maps), signed=False)[0],
                                    to_uint8(fake)[0],
                                    to_uint8(clip.frames)[0]]))
    return path
