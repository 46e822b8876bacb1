"""The background plate (`model.background_plate`): made from the training frames,
fed to every generator level, carried by the checkpoint into evaluation and transfer."""

import cv2
import numpy as np
import pytest
import torch

from tests.helpers_video import figure_frame, make_synthetic_dataset, synthetic_pose
from train.trainer import train
from vid2vid.background import FILL_BELOW, background_plate, plate_tensor, seen_background
from vid2vid.checkpoint import latest_checkpoint, load_generator
from vid2vid.config import AugmentConfig, ModelConfig, TrainConfig
from vid2vid.data import MAP_CHANNELS, centered_geometry, index_dataset
from vid2vid.errors import UserError
from vid2vid.models import Generator


@pytest.fixture(scope="module")
def figure(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("plate_data"), n=60, w=64, h=64)


def _texture(w=64, h=64) -> np.ndarray:
    """The synthetic figure's still background: a frame with no limb drawn."""
    pose = synthetic_pose(0.0, w, h)
    pose.body[:, 2] = 0
    return figure_frame(pose, w, h)


def test_the_plate_is_the_background_without_the_person(figure):
    video = index_dataset(figure, holdout=0.2)
    plate = background_plate(video, (64, 64))
    assert plate.shape == (64, 64, 3) and plate.dtype == np.uint8
    truth = centered_geometry(video.size, (64, 64)).image(_texture()).astype(np.float32)
    frame = figure_frame(synthetic_pose(10 / 3, 64, 64), 64, 64).astype(np.float32)
    def person(k):
        return np.abs(figure_frame(synthetic_pose(k / 3, 64, 64), 64, 64) - truth).max(2) > 30

    # Where frame 10 shows the person and most training frames do not (the figure's
    # torso barely moves: no plate can see behind it).
    seen = np.mean([~person(k) for k in range(video.train_frames)], axis=0) > 0.5
    limbs = person(10) & seen
    assert limbs.sum() > 20
    plate_error = np.abs(plate - truth)[limbs].mean()
    frame_error = np.abs(frame - truth)[limbs].mean()
    assert plate_error < 0.2 * frame_error, (plate_error, frame_error)
    # Elsewhere the stored frames' JPEG noise is all that is left.
    stored = cv2.imread(str(figure / "frames" / "000010.jpg"))[..., ::-1].astype(np.float32)
    noise = np.abs(stored - frame)[~person(10)].mean()
    assert np.abs(plate - truth)[~person(10)].mean() < noise + 0.5


def test_the_plate_never_reads_held_out_frames(figure, monkeypatch):
    import vid2vid.background as bg

    read = []
    real = bg.frame_path
    monkeypatch.setattr(bg, "frame_path", lambda root, folder, k: read.append(k)
                        or real(root, folder, k))
    video = index_dataset(figure, holdout=0.5)
    background_plate(video, (32, 32))
    assert read and max(read) < video.train_frames


def _maps(b=1, c=MAP_CHANNELS, h=32, w=32):
    return torch.rand(b, 3, c, h, w, generator=torch.Generator().manual_seed(1))


def test_the_generator_reads_the_plate_at_every_level():
    torch.manual_seed(0)
    cfg = ModelConfig.from_dict({**ModelConfig.preset("tiny").to_dict(),
                                 "background_plate": True})
    G = Generator(cfg, MAP_CHANNELS, levels=2).eval()
    with pytest.raises(ValueError, match="no plate"):
        G(_maps())
    G.set_background(torch.zeros(3, 64, 64))
    a = G(_maps()).image
    G.set_background(torch.ones(3, 64, 64))     # any size: resized to each level's
    b = G(_maps()).image
    assert a.shape == (1, 3, 32, 32)
    assert (a - b).abs().mean() > 1e-4
    # The plate reaches the finest level's own map encoder too, not only the base.
    stem = G.levels[1].map_encoder.stem[0].weight
    assert stem.shape[1] == 3 * MAP_CHANNELS + 3


def test_the_plate_survives_a_state_dict_and_old_models_load_unchanged():
    cfg = ModelConfig.from_dict({**ModelConfig.preset("tiny").to_dict(),
                                 "background_plate": True})
    G = Generator(cfg, MAP_CHANNELS)
    plate = torch.rand(3, 48, 40) * 2 - 1
    G.set_background(plate)
    H = Generator(cfg, MAP_CHANNELS)
    H.load_state_dict(G.state_dict())
    assert torch.equal(H.background, plate[None])
    # Saved when a run had one plate, [3, H, W]: it loads as that run's only one.
    state = {**G.state_dict(), "background": plate}
    H = Generator(cfg, MAP_CHANNELS)
    H.load_state_dict(state)
    assert torch.equal(H.background, plate[None]) and H.plates == 1
    old = Generator(ModelConfig.preset("tiny"), MAP_CHANNELS)
    assert "background" not in old.state_dict()
    with pytest.raises(ValueError, match="without model.background_plate"):
        old.set_background(plate)


def test_the_plate_refuses_augmentation_that_moves_the_background(figure):
    model = ModelConfig.from_dict({**ModelConfig.preset("tiny").to_dict(),
                                   "background_plate": True})
    for augment in (AugmentConfig(scale=0.1), AugmentConfig(flip=True)):
        with pytest.raises(UserError, match="background_plate needs augment.scale=0"):
            TrainConfig(data=(str(figure),), model=model, augment=augment)


def test_a_run_with_the_plate_carries_it_to_its_checkpoint(figure, tmp_path):
    model = ModelConfig.from_dict({**ModelConfig.preset("tiny").to_dict(),
                                   "background_plate": True})
    cfg = TrainConfig(data=(str(figure),), preset="tiny", model=model, size=32, frames=3,
                      bptt=3, steps=3, workers=0, log_every=5, sample_every=10,
                      checkpoint_minutes=60.0)
    run = train(cfg, run_dir=tmp_path / "run", progress=False)
    assert (run / "background.png").exists()
    G, _ = load_generator(latest_checkpoint(run))
    video = index_dataset(figure, holdout=cfg.holdout)
    want = plate_tensor(background_plate(video, (32, 32)))
    assert torch.allclose(G.background, want[None])
    assert G(_maps()).image.shape == (1, 3, 32, 32)
    # Evaluation and transfer read the plate from the checkpoint, nothing else.
    from infer.evaluate import evaluate
    from infer.transfer import TransferOptions, transfer

    result = evaluate(run, max_frames=3, out=tmp_path / "eval", detector=lambda rgb: None,
                      progress=False)
    assert 0 < result.table["model"]["PSNR dB"] < 100
    done = transfer(figure / "pose", figure, tmp_path / "out.mp4",
                    TransferOptions(max_frames=3, checkpoint=str(run)), progress=False)
    assert done.frames == 3 and (tmp_path / "out.mp4").stat().st_size > 0


def test_the_generator_reads_each_samples_own_plate():
    torch.manual_seed(0)
    cfg = ModelConfig.from_dict({**ModelConfig.preset("tiny").to_dict(),
                                 "background_plate": True})
    G = Generator(cfg, MAP_CHANNELS).eval()
    plates = torch.stack([torch.full((3, 32, 32), -1.0), torch.full((3, 32, 32), 1.0)])
    G.set_background(plates)
    maps = _maps(b=1).expand(2, -1, -1, -1, -1)
    with pytest.raises(ValueError, match="pass video"):
        G(maps)
    both = G(maps, video=torch.tensor([0, 1])).image
    first = G(maps[:1], video=torch.tensor([0])).image
    second = G(maps[:1], video=torch.tensor([1])).image
    assert torch.allclose(both[:1], first, atol=1e-5)   # batch 2 vs 1: float32 sums reordered
    assert torch.allclose(both[1:], second, atol=1e-5)
    assert (first - second).abs().mean() > 1e-4


def test_a_run_on_two_videos_has_a_plate_for_each(figure, tmp_path):
    other = make_synthetic_dataset(tmp_path / "other", n=40, w=64, h=64, name="other", seed=7)
    model = ModelConfig.from_dict({**ModelConfig.preset("tiny").to_dict(),
                                   "background_plate": True})
    cfg = TrainConfig(data=(str(figure), str(other)), preset="tiny", model=model, size=32,
                      frames=3, bptt=3, steps=2, workers=0, log_every=5, sample_every=10,
                      checkpoint_minutes=60.0)
    run = train(cfg, run_dir=tmp_path / "run", progress=False)
    G, _ = load_generator(latest_checkpoint(run))
    for k, root in enumerate((figure, other)):
        want = plate_tensor(background_plate(index_dataset(root, holdout=cfg.holdout), (32, 32)))
        assert torch.allclose(G.background[k], want)
    assert (G.background[0] - G.background[1]).abs().mean() > 0.05   # two textures
    assert cv2.imread(str(run / "background.png")).shape[:2] == (32, 64)
    # Evaluation and transfer draw each dataset's own background; an unknown one is refused.
    from infer.evaluate import evaluate
    from infer.trained import load_trained
    from infer.transfer import TransferOptions, transfer

    model = load_trained(run, torch.device("cpu"))
    assert (model.plate_for(figure), model.plate_for(other)) == (0, 1)
    stranger = make_synthetic_dataset(tmp_path / "stranger", n=20, name="stranger", seed=3)
    with pytest.raises(UserError, match="not one of the 2 videos"):
        model.plate_for(stranger)
    result = evaluate(run, max_frames=4, out=tmp_path / "eval", detector=lambda rgb: None,
                      progress=False)
    assert 0 < result.table["model"]["PSNR dB"] < 100
    with pytest.raises(UserError, match="not one of the 2 videos"):
        evaluate(run, data=str(stranger), max_frames=2, out=tmp_path / "eval2",
                 detector=lambda rgb: None, progress=False)
    done = transfer(figure / "pose", other, tmp_path / "out.mp4",
                    TransferOptions(max_frames=3, checkpoint=str(run)), progress=False)
    assert done.frames == 3


def test_plate_base_makes_h_bg_a_residual_over_the_plate():
    from tests.test_generator import _hand_level

    level = _hand_level(2)
    plate = torch.rand(1, 3, 4, 4) * 1.6 - 0.8
    _, h, *_ = Generator._compose(level, None, "after", plate)     # image mode
    want = (plate + torch.tanh(level.image_logit)).clamp(-1, 1)
    right = (..., slice(2, None))                               # fg = 0: h = h_bg
    torch.testing.assert_close(h[right], want[right])
    level.image_logit = torch.zeros_like(level.image_logit)      # no residual: the plate
    _, h, *_ = Generator._compose(level, None, "after", plate)
    torch.testing.assert_close(h[right], plate[right])


def test_with_plate_base_a_new_generator_draws_the_plate_behind_the_person(monkeypatch):
    torch.manual_seed(0)
    cfg = ModelConfig.from_dict({**ModelConfig.preset("tiny").to_dict(),
                                 "background_plate": True, "plate_base": True})
    G = Generator(cfg, MAP_CHANNELS, levels=2).eval()
    plate = torch.rand(3, 32, 32) * 1.6 - 0.8
    G.set_background(plate)
    seen = []
    compose = Generator._compose
    monkeypatch.setattr(Generator, "_compose", staticmethod(
        lambda level, past, mode, plate=None: seen.append((level, plate))
        or compose(level, past, mode, plate)))
    with torch.no_grad():
        G(_maps())
    # Every level: no residual yet, and its own plate (the finest: the plate itself).
    assert [p.shape[-1] for _, p in seen] == [16, 32]
    assert all(float(level.image_logit.abs().max()) == 0 for level, _ in seen)
    torch.testing.assert_close(seen[-1][1], plate[None])
    with pytest.raises(UserError, match="plate_base needs background_plate"):
        ModelConfig(plate_base=True)


def test_fg_prior_sets_where_a_new_generators_foreground_mask_starts():
    """A person covers a small share of the frame: fg_prior 0.1 shows the background
    (h_bg over the plate) from the first step; 0.5 keeps the unbiased head as it was."""
    def start(prior: float) -> Generator:
        torch.manual_seed(0)
        cfg = ModelConfig.from_dict({**ModelConfig.preset("tiny").to_dict(), "fg_prior": prior})
        return Generator(cfg, MAP_CHANNELS, levels=2).eval()

    with torch.no_grad():
        low = start(0.1)(_maps()).fg_mask
        even = start(0.5)(_maps()).fg_mask
    assert abs(float(low.mean()) - 0.1) < 0.05
    assert abs(float(even.mean()) - 0.5) < 0.1
    # 0.5 leaves the head's random bias alone: runs made before the key build as they did.
    assert float(start(0.5).levels[0].fg_head.bias[3]) != 0.0
    assert float(start(0.1).levels[0].fg_head.bias[3]) == pytest.approx(-2.1972, abs=1e-4)
    for bad in (0.0, 1.0):
        with pytest.raises(UserError, match="fg_prior must be in"):
            ModelConfig(fg_prior=bad)


def test_plate_base_keeps_the_image_in_range_and_its_gradient_alive():
    from tests.test_generator import _hand_level

    level = _hand_level(2)
    level.image_logit = torch.full_like(level.image_logit, 3.0).requires_grad_(True)
    plate = torch.full((1, 3, 4, 4), 0.9)
    image, h, *_ = Generator._compose(level, None, "after", plate)
    assert float(h.max()) <= 1.0 and float(image.min()) >= -1.0
    (image - 0.5).abs().sum().backward()     # clamped pixels still learn to come down
    assert float(level.image_logit.grad.abs().sum()) > 0


def test_the_seen_background_is_what_some_training_frame_shows(figure, monkeypatch):
    """Pixels the person covers in every training frame (the torso, which barely moves) are
    not seen; pixels no frame covers are; the held-out frames are never read."""
    import vid2vid.background as bg

    video = index_dataset(figure, holdout=0.2)
    geom = centered_geometry(video.size, (64, 64))
    person = np.stack([geom.image(cv2.imread(str(figure / "seg" / f"{k:06d}.png"),
                                             cv2.IMREAD_UNCHANGED)) > 127
                       for k in range(video.train_frames)])
    read = []
    real = bg.frame_path
    monkeypatch.setattr(bg, "frame_path", lambda root, folder, k: read.append(k)
                        or real(root, folder, k))
    seen = seen_background(video, (64, 64))
    assert seen.shape == (64, 64) and seen.dtype == bool
    assert read and max(read) < video.train_frames
    always = person.all(axis=0)
    assert always.sum() > 20 and not seen[always].any()
    assert seen[~person.any(axis=0)].mean() > 0.9     # far from the figure: seen (the mask
    assert 0.02 < (~seen).mean() < 0.5                # grows by DILATE near its edge)


def test_plate_inpaint_fills_what_no_sample_shows_from_the_background(figure):
    """Behind the torso (covered in every sample) the median plate is the figure's own
    colours; inpainted, it is near the true background, and every pixel that at least
    FILL_BELOW samples show is unchanged."""
    video = index_dataset(figure, holdout=0.2)
    median = background_plate(video, (64, 64)).astype(np.float32)
    filled = background_plate(video, (64, 64), inpaint=True).astype(np.float32)
    hidden = ~seen_background(video, (64, 64))
    assert hidden.sum() > 20
    changed = (filled != median).any(axis=2)
    assert changed[hidden].mean() > 0.9
    geom = centered_geometry(video.size, (64, 64))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))    # DILATE at 64 px
    shown = sum((cv2.dilate((geom.image(cv2.imread(str(figure / "seg" / f"{k:06d}.png"),
                                                   cv2.IMREAD_UNCHANGED)) > 127)
                            .astype(np.uint8), kernel) == 0).astype(int)
                for k in range(video.train_frames))
    assert not changed[shown >= FILL_BELOW].any()
    truth = centered_geometry(video.size, (64, 64)).image(_texture()).astype(np.float32)
    err_median = np.abs(median - truth)[hidden].mean()
    err_filled = np.abs(filled - truth)[hidden].mean()
    assert err_filled < 0.5 * err_median, (err_filled, err_median)


def test_plate_inpaint_needs_the_plate():
    with pytest.raises(UserError, match="plate_inpaint needs background_plate"):
        ModelConfig(plate_inpaint=True)
