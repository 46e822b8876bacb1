"""Pose maps drawn at sub-pixel precision (`subpixel_maps`): a stroke moves as little as
its keypoints do, the setting is saved with the run's task, and transfer draws the same."""

from dataclasses import replace

import numpy as np
import torch

from infer.pose_driving import DrivingPoses, read_source
from infer.trained import load_trained
from infer.transfer import TransferOptions
from tests.helpers_video import make_synthetic_dataset
from train.trainer import train
from vid2vid.checkpoint import load_checkpoint
from vid2vid.config import ModelConfig, TrainConfig, saved_train_config
from vid2vid.data import ClipDataset, index_dataset, no_augment
from vid2vid.pose import Pose
from vid2vid.render import render_pose
from vid2vid.tasks import PoseTask, same_task, task_from_dict


def _torso_at(x: float) -> Pose:
    """Neck and mid-hip only: one vertical stroke (BODY_LIMBS[0]) at column x."""
    body = np.zeros((25, 3), np.float32)
    body[1] = (x, 10.0, 1.0)
    body[8] = (x, 50.0, 1.0)
    return Pose(body=body)


def _column(canvas: np.ndarray) -> float:
    """The stroke's centre: the intensity-weighted mean column of rows 20-40."""
    ink = canvas[20:41].astype(np.float64).sum(axis=(0, 2))
    return float((ink * np.arange(ink.size)).sum() / ink.sum())


def test_a_stroke_follows_a_quarter_pixel_move():
    xs = [30.0, 30.25, 30.5, 30.75, 31.0]
    fine = [_column(render_pose(_torso_at(x), (64, 64), limb_width=0.05, subpixel=True))
            for x in xs]
    steps = np.diff(fine)
    assert np.all(np.abs(steps - 0.25) < 0.1), fine     # in step with the keypoints
    assert abs(fine[0] - 30.0) < 0.1
    # whole pixels: the stroke stays put, then jumps a pixel at once
    whole = [_column(render_pose(_torso_at(x), (64, 64), limb_width=0.05)) for x in xs]
    assert np.isclose(whole[0], whole[1]) and np.isclose(whole[3] - whole[0], 1.0)


def test_subpixel_travels_with_the_task_but_is_not_its_identity():
    task = PoseTask(limb_width=0.025, subpixel=True)
    assert task.to_dict() == {"name": "pose", "limb_width": 0.025, "subpixel": True}
    assert task_from_dict(task.to_dict()).subpixel
    # runs saved before the key drew whole pixels, and still do
    assert not task_from_dict({"name": "pose", "limb_width": 0.025}).subpixel
    assert PoseTask(limb_width=0.025).to_dict() == {"name": "pose", "limb_width": 0.025}
    assert same_task([PoseTask(), task], ["a", "b"]) == PoseTask()
    assert not TrainConfig().subpixel_maps and not saved_train_config({}).subpixel_maps


def test_a_subpixel_run_saves_it_and_transfer_draws_its_maps(tmp_path):
    figure = make_synthetic_dataset(tmp_path, n=12, w=64, h=64)
    torch.manual_seed(0)
    cfg = TrainConfig(data=(str(figure),), preset="tiny", model=ModelConfig.preset("tiny"),
                      size=64, frames=2, bptt=2, steps=2, workers=0, log_every=1,
                      sample_every=100, checkpoint_minutes=60.0, subpixel_maps=True)
    run = train(cfg, run_dir=tmp_path / "run", progress=False)
    assert load_checkpoint(run)["task"]["subpixel"] is True
    model = load_trained(run, torch.device("cpu"))
    assert model.task.subpixel
    video = replace(index_dataset(figure, holdout=0.2), task=model.task)
    ds = ClipDataset([video], 1, (64, 64), augment=no_augment(), with_flow=False)
    options = TransferOptions(max_frames=6)
    clip = read_source(figure / "pose", options, progress=False)
    driving = DrivingPoses(clip, figure, video.size, (64, 64), normalize=False, smooth=False,
                           smoothing=options.smoothing, limb_width=model.task.limb_width)
    whole = replace(model.task, subpixel=False)
    for k in (0, 5):
        expected = ds.frames_at(0, [k]).maps[0].permute(1, 2, 0).numpy()
        kp = driving.model_keypoints(clip.poses[k])
        assert np.allclose(model.task.maps(kp, {}, (64, 64)), expected, atol=1e-6)
        assert not np.allclose(whole.maps(kp, {}, (64, 64)), expected, atol=1e-6)
