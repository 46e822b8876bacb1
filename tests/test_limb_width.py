"""The pose maps' stroke width is a run setting (`limb_width`): checked, saved with the
run's task, read back by evaluate and transfer, and old runs keep 1/100."""

import numpy as np
import pytest
import torch

from infer.eval_frames import eval_videos
from infer.trained import load_trained
from tests.helpers_cli import run_cli
from tests.helpers_video import make_synthetic_dataset, synthetic_pose
from train.trainer import train
from vid2vid.checkpoint import load_checkpoint
from vid2vid.config import ModelConfig, TrainConfig, saved_train_config
from vid2vid.errors import UserError
from vid2vid.render import LIMB_WIDTH, render_pose
from vid2vid.tasks import PoseTask, same_task, task_from_dict


def test_wider_strokes_cover_more_of_the_map():
    pose = synthetic_pose(0.0, 128, 128)
    thin = render_pose(pose, (128, 128))
    assert np.array_equal(thin, render_pose(pose, (128, 128), limb_width=LIMB_WIDTH))
    wide = render_pose(pose, (128, 128), limb_width=0.025)          # 3 px at 128
    assert (wide.max(-1) > 0).sum() > 2 * (thin.max(-1) > 0).sum()


def test_the_width_travels_with_the_task_but_is_not_its_identity():
    task = PoseTask(limb_width=0.025)
    assert task_from_dict(task.to_dict()).limb_width == 0.025
    assert task_from_dict({"name": "pose"}).limb_width == LIMB_WIDTH      # runs before it
    assert task_from_dict(None).limb_width == LIMB_WIDTH
    # A run's width does not make its datasets a different task.
    assert same_task([PoseTask(), task], ["a", "b"]) == PoseTask()


@pytest.mark.parametrize("bad", [0.0, -0.01, 0.5])
def test_a_bad_width_is_a_config_error(bad):
    with pytest.raises(UserError, match="limb_width must be in"):
        TrainConfig(limb_width=bad)


def test_a_run_saves_its_width_and_loads_it_back(tmp_path):
    figure = make_synthetic_dataset(tmp_path, n=12, w=64, h=64)
    runs = {}
    for width in (LIMB_WIDTH, 0.05):
        torch.manual_seed(0)
        cfg = TrainConfig(data=(str(figure),), preset="tiny", model=ModelConfig.preset("tiny"),
                          size=64, frames=2, bptt=2, steps=2, workers=0, log_every=1,
                          sample_every=100, checkpoint_minutes=60.0, limb_width=width)
        runs[width] = train(cfg, run_dir=tmp_path / f"run-{width}", progress=False)
    run = runs[0.05]
    ckpt = load_checkpoint(run)
    assert ckpt["task"] == {"name": "pose", "limb_width": 0.05, "subpixel": True}   # the defaults
    model = load_trained(run, torch.device("cpu"))
    assert model.task.limb_width == 0.05
    # evaluate draws the held-out maps the run's way, not the dataset's default way
    videos, _ = eval_videos(run, ckpt["config"], None, "holdout", model.task, gap=1)
    assert videos[0].index.task.limb_width == 0.05
    # a baseline drawn otherwise would be fed the model's maps: refused, in one line
    code, text = run_cli(["evaluate", run, "--baseline", runs[LIMB_WIDTH], "--max-frames", 2],
                         tmp_path)
    assert code == 2 and "draws its maps as" in text and "Traceback" not in text


def test_new_runs_draw_wider_and_old_runs_keep_theirs():
    assert TrainConfig().limb_width == 0.025            # nineteenth ablation (RESULTS.md)
    old = TrainConfig().to_dict()
    del old["limb_width"]
    assert saved_train_config(old).limb_width == LIMB_WIDTH == 0.01
