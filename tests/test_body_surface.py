"""The body-surface maps (`pose_surface`): where on a limb each pixel lies, drawn from
the keypoints, saved with the run's task and drawn the same way by transfer."""

import numpy as np
import torch

from tests.helpers_maps import assert_close, tiny_pose_run, transfer_and_loader_maps
from tests.helpers_video import synthetic_pose
from vid2vid.body_surface import render_surface
from vid2vid.checkpoint import load_checkpoint
from vid2vid.config import TrainConfig, saved_train_config
from vid2vid.data import pose_to_array
from vid2vid.pose import BODY_LIMBS
from vid2vid.tasks import PoseTask, same_task, task_from_dict


def _torso_only(x0=50.0, y0=20.0, y1=80.0) -> np.ndarray:
    """A body of neck and mid-hip only: one vertical bone (BODY_LIMBS[0]), 60 px long."""
    body = np.zeros((25, 3), np.float32)
    body[1] = (x0, y0, 1.0)
    body[8] = (x0, y1, 1.0)
    return body


def test_a_bone_gets_coordinates_along_and_across_it():
    surface = render_surface(_torso_only(), (100, 100))
    assert surface.shape == (100, 100, 3) and surface.dtype == np.float32
    assert BODY_LIMBS[0] == (1, 8)
    inside = surface[..., 0] > 0
    core = surface[25:76, 40:61, 0]                 # a pixel in from the faded outline
    assert np.allclose(core, 1 / len(BODY_LIMBS)) and surface[inside, 0].max() <= core.max()
    # half-width 0.3 torso lengths = 18 px: covered beside the bone, empty beyond
    assert inside[50, 50] and inside[50, 60] and not inside[50, 75] and not inside[99, 50]
    along = surface[25:76, 50, 1]
    assert along[5] < along[25] < along[45]         # grows from the neck to the hip
    assert abs(surface[50, 50, 2] - 0.5) < 0.05     # on the bone: the middle
    assert surface[50, 60, 2] > 0.6 > 0.4 > surface[50, 40, 2]  # the two sides differ


def test_no_body_or_a_dropped_limb_draws_nothing():
    assert not render_surface(np.zeros((25, 3), np.float32), (32, 32)).any()
    drop = np.zeros(len(BODY_LIMBS) + 3, bool)
    drop[0] = True
    assert not render_surface(_torso_only(), (100, 100), drop).any()


def test_the_surface_adds_three_channels_after_the_skeleton():
    kp = pose_to_array(synthetic_pose(0.3, 96, 64))
    plain, surfaced = PoseTask(limb_width=0.025), PoseTask(limb_width=0.025, surface=True)
    a, b = plain.maps(kp, {}, (64, 96)), surfaced.maps(kp, {}, (64, 96))
    assert plain.channels == 3 and surfaced.channels == 6 and b.shape == (64, 96, 6)
    assert np.array_equal(a, b[..., :3]) and b[..., 3:].any() and 0 <= b.min() <= b.max() <= 1
    assert torch.equal(surfaced.picture(torch.from_numpy(b).permute(2, 0, 1)[None]),
                       torch.from_numpy(a).permute(2, 0, 1)[None])
    # saved with the run's task; runs without it (and datasets) are the same task
    assert task_from_dict(surfaced.to_dict()).surface
    assert not task_from_dict({"name": "pose", "limb_width": 0.025}).surface
    assert plain.to_dict() == {"name": "pose", "limb_width": 0.025}
    assert same_task([plain, surfaced], ["a", "b"]) == plain
    assert not TrainConfig().pose_surface and not saved_train_config({}).pose_surface


def test_a_surface_run_trains_and_transfer_draws_its_maps(tmp_path):
    figure, run, model = tiny_pose_run(tmp_path, pose_surface=True)
    ckpt = load_checkpoint(run)
    assert ckpt["task"]["surface"] is True and ckpt["map_channels"] == 6
    assert model.task.channels == 6
    # transfer's maps of the target's own poses are the training loader's, all six channels
    for kp, expected in transfer_and_loader_maps(figure, model):
        assert expected.shape == (64, 64, 6)
        assert_close(model.task.maps(kp, {}, (64, 64)), expected)
