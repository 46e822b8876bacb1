import numpy as np
import pytest
import torch

from tests.helpers_video import make_synthetic_dataset
from vid2vid.config import AugmentConfig
from vid2vid.data import (ClipDataset, clip_starts, compose_flows, flip_keypoints,
                          index_dataset, no_augment)
from vid2vid.errors import UserError


@pytest.fixture(scope="module")
def figure(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("data"), n=60, w=64, h=64)


def test_clip_shapes_and_ranges(figure):
    video = index_dataset(figure, holdout=0.2)
    ds = ClipDataset([video], length=4, size=(48, 48), max_stride=2, seed=1)
    clip = ds[3]
    assert clip.maps.shape == (4, 3, 48, 48) and clip.frames.shape == (4, 3, 48, 48)
    assert clip.masks.shape == (4, 1, 48, 48) and clip.flow.shape == (4, 2, 48, 48)
    assert clip.keypoints.shape == (4, 137, 3) and clip.person.all()
    assert clip.frames.min() >= -1 and clip.frames.max() <= 1
    assert clip.maps.max() > 0.5                       # something was drawn
    assert (clip.flow_valid[0] == 0).all() and clip.flow_valid[1:].mean() > 0.9
    again = ds[3]
    assert all(torch.equal(a, b) for a, b in zip(clip, again))   # deterministic per id


def test_holdout_is_never_sampled(figure):
    video = index_dataset(figure, holdout=0.2)
    assert video.train_frames == 48
    ds = ClipDataset([video], length=4, size=(32, 32), max_stride=3, seed=0)
    for i in range(0, 400, 7):
        v, first, stride = ds[i].source.tolist()
        assert first + 3 * stride < 48


def test_each_clip_once_per_epoch(figure):
    video = index_dataset(figure, holdout=0.0)
    ds = ClipDataset([video], length=2, size=(32, 32), augment=no_augment(), seed=0,
                     with_flow=False)
    n = len(ds)
    firsts = sorted(ds[i].source[1].item() for i in range(n, 2 * n))
    assert firsts == list(range(n))
    assert [ds[i].source[1].item() for i in range(3)] != list(range(3))   # shuffled


def test_missing_person_frames_are_skipped(figure):
    video = index_dataset(figure, holdout=0.0)
    video.person[10] = False
    starts = clip_starts(video, 4, 1)
    assert not any(s <= 10 < s + 4 for s in starts)
    assert 11 in starts and 6 in starts
    video.person[10] = True


def test_augmentation_is_the_same_for_every_frame(figure):
    """Crop/scale shared by the clip: the static background moves identically in all frames."""
    video = index_dataset(figure, holdout=0.0)
    ds = ClipDataset([video], length=3, size=(40, 40), augment=AugmentConfig(scale=0.5, flip=True),
                     seed=3)
    for i in range(6):
        clip = ds[i]
        corner = clip.frames[:, :, :6, :6]           # background, no figure in the corner
        assert (corner - corner[:1]).abs().max() < 0.15
        # keypoints follow the same geometry as the maps: the neck lands on drawn pixels
        for t in range(3):
            x, y, c = clip.keypoints[t, 1].tolist()
            if c > 0 and 1 <= x < 39 and 1 <= y < 39:
                assert clip.maps[t, :, int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].max() > 0


def test_flow_follows_the_crop_scale():
    a = np.zeros((8, 8, 2), np.float32)
    a[..., 0] = 1.0
    b = np.zeros((8, 8, 2), np.float32)
    b[..., 0] = 2.0
    assert np.allclose(compose_flows([a, b])[2:6, 2:5, 0], 3.0)
    kp = np.zeros((137, 3), np.float32)
    kp[2] = (10, 5, 1)       # right shoulder
    flipped = flip_keypoints(kp, 64)
    assert tuple(flipped[5]) == (53, 5, 1) and flipped[2, 2] == 0


def test_too_short_data_is_a_clear_error(figure):
    video = index_dataset(figure, holdout=0.2)
    with pytest.raises(UserError, match="no training clip of 100 frames"):
        ClipDataset([video], length=100, size=(32, 32))
