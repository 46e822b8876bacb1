"""A tiny pose run with a drawing option, and the maps transfer draws for its data next
to the training loader's: tests of how a run draws its maps share this."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from infer.pose_driving import DrivingPoses, read_source
from infer.trained import TrainedGenerator, load_trained
from infer.transfer import TransferOptions
from tests.helpers_video import make_synthetic_dataset
from train.trainer import train
from vid2vid.config import ModelConfig, TrainConfig
from vid2vid.data import ClipDataset, index_dataset, no_augment


def tiny_pose_run(tmp_path: Path, **keys) -> tuple[Path, Path, TrainedGenerator]:
    """(dataset, run, loaded model) of a 2-step tiny run at 64 px with `keys` set."""
    figure = make_synthetic_dataset(tmp_path, n=12, w=64, h=64)
    torch.manual_seed(0)
    cfg = TrainConfig(data=(str(figure),), preset="tiny", model=ModelConfig.preset("tiny"),
                      size=64, frames=2, bptt=2, steps=2, workers=0, log_every=1,
                      sample_every=100, checkpoint_minutes=60.0, **keys)
    run = train(cfg, run_dir=tmp_path / "run", progress=False)
    return figure, run, load_trained(run, torch.device("cpu"))


def transfer_and_loader_maps(figure: Path, model: TrainedGenerator, frames=(0, 5)):
    """Per frame: (the dataset's own keypoints in model pixels, as transfer reads them,
    the training loader's maps [H, W, C] drawn the run's way)."""
    video = replace(index_dataset(figure, holdout=0.2), task=model.task)
    ds = ClipDataset([video], 1, (64, 64), augment=no_augment(), with_flow=False)
    options = TransferOptions(max_frames=max(frames) + 1)
    clip = read_source(figure / "pose", options, progress=False)
    driving = DrivingPoses(clip, figure, video.size, (64, 64), normalize=False, smooth=False,
                           smoothing=options.smoothing, limb_width=model.task.limb_width)
    return [(driving.model_keypoints(clip.poses[k]),
             ds.frames_at(0, [k]).maps[0].permute(1, 2, 0).numpy()) for k in frames]


def assert_close(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and np.allclose(a, b, atol=1e-6)
