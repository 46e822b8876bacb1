"""Pose maps drawn at sub-pixel precision (`subpixel_maps`): a stroke moves as little as
its keypoints do, the setting is saved with the run's task, and transfer draws the same."""

from dataclasses import replace

import numpy as np

from tests.helpers_maps import assert_close, tiny_pose_run, transfer_and_loader_maps
from vid2vid.checkpoint import load_checkpoint
from vid2vid.config import TrainConfig, saved_train_config
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
    assert TrainConfig().subpixel_maps and not saved_train_config({}).subpixel_maps


def test_a_subpixel_run_saves_it_and_transfer_draws_its_maps(tmp_path):
    figure, run, model = tiny_pose_run(tmp_path, subpixel_maps=True)
    assert load_checkpoint(run)["task"]["subpixel"] is True and model.task.subpixel
    whole = replace(model.task, subpixel=False)
    for kp, expected in transfer_and_loader_maps(figure, model):
        assert_close(model.task.maps(kp, {}, (64, 64)), expected)
        assert not np.allclose(whole.maps(kp, {}, (64, 64)), expected, atol=1e-6)
