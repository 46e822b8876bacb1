"""`vid2vid dream`: the motion model's sampling, its discriminators, the pose output and the
command end to end on a tiny synthetic dataset (CPU, seconds)."""

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from dream.checkpoint import load_motion_model
from dream.command import dream_keypoints, write_pose_folder
from dream.config import MotionConfig
from dream.discriminators import GapD, PoseD, WindowD
from dream.model import LIMB_OFFSETS, MotionGenerator
from dream.motion_data import load_motion
from dream.motion_graph import motion_graph
from dream.pose_frame import PoseFrame
from dream.time_codes import seeded_noise
from dream.training import train_motion
from infer.driving import TransferOptions
from infer.pose_driving import read_source
from tests.helpers_cli import run_cli
from tests.helpers_video import make_synthetic_dataset
from train.trainer import train
from vid2vid.config import ModelConfig, TrainConfig
from vid2vid.data import pose_to_array
from vid2vid.errors import UserError
from vid2vid.pose import BODY, read_openpose_json

TINY = MotionConfig(content_dim=8, noise_dim=8, code_dim=16, frequencies=8, hidden=32, layers=2,
                    batch=16, restarts=1)


def moving(cfg: MotionConfig = TINY, seed: int = 0) -> MotionGenerator:
    """A random G whose motion gates are open (trained ones are; fresh ones start at 0)."""
    torch.manual_seed(seed)
    # A skeleton fitted to random poses: bones with a range of lengths, so joints move.
    poses = np.random.default_rng(seed).normal(0, 0.3, (200, 50)).astype(np.float32)
    G = MotionGenerator(cfg, poses).eval()
    with torch.no_grad():
        G.gate_u.fill_(1.0)
        G.gate_v.fill_(1.0)
    return G


def test_sampling_shapes_and_any_t_in_any_pieces():
    G = moving()
    t = np.arange(0, 20, 1 / 25)
    whole = G.sample(3, t)
    assert whole.shape == (len(t), TINY.pose_dim) and whole.dtype == np.float32
    pieces = np.concatenate([G.sample(3, t[:7]), G.sample(3, t[7:300]), G.sample(3, t[300:])])
    np.testing.assert_allclose(pieces, whole, atol=1e-5)
    # Far in time costs nothing extra and needs no history: one instant alone, an hour in.
    late = np.array([3600.0, 3600.04])
    np.testing.assert_allclose(G.sample(3, late), G.sample(3, np.arange(3599.0, 3601, 0.04))[25:27],
                               atol=1e-5)
    assert np.abs(G.sample(4, t) - whole).max() > 1e-2     # another seed, another dream


def test_temperature_scales_the_motion_noise():
    G = moving()
    t = np.arange(0, 10, 1 / 25)
    np.testing.assert_array_equal(G.sample(3, t, 1.0), G.sample(3, t))
    hot = G.sample(3, t, 2.0)
    np.testing.assert_array_equal(hot, G.sample(3, t, 2.0))   # still one dream per seed
    assert np.abs(hot - G.sample(3, t)).max() > 1e-2
    with pytest.raises(ValueError, match="temperature"):
        G.sample(3, t, 0.0)


def test_25_and_50_fps_agree_at_shared_instants():
    G = moving()
    a, b = G.sample(1, np.arange(250) / 25), G.sample(1, np.arange(500) / 50)
    np.testing.assert_allclose(a, b[::2], atol=1e-5)


@pytest.mark.parametrize("embedding", ["aligned", "sincos"])
def test_motion_is_continuous_across_grid_knots(embedding):
    cfg = MotionConfig(**{**TINY.to_dict(), "time_embedding": embedding})
    G = moving(cfg)
    knots = np.arange(1, 30) * cfg.grid_seconds
    eps = 1e-5
    before, after = G.sample(0, knots - eps), G.sample(0, knots + eps)
    jump = np.abs(after - before).max()
    travel = np.abs(G.sample(0, knots + cfg.grid_seconds / 2) - after).max()
    assert travel > 1e-2, "the motion should move between knots"
    assert jump < 1e-3 * max(travel, 1.0), f"jump {jump} at a knot"


def test_limb_streams_hang_far_off_limbs_from_this_moments_body():
    G = moving()
    plain = moving(MotionConfig(**{**TINY.to_dict(), "limb_streams": False}))
    t = np.arange(0, 8, 1 / 25)
    dream = G.sample(2, t).reshape(len(t), 25, 2)
    body = plain.sample(2, t).reshape(len(t), 25, 2)
    arm = BODY["RWrist"], BODY["RShoulder"]
    # The torso and head are this moment's; the right arm is the dream's 601.3 s later,
    # hung from this moment's shoulder (its bones keep their lengths).
    for j in ("Neck", "MidHip", "Nose", "RShoulder", "LHip"):
        np.testing.assert_allclose(dream[:, BODY[j]], body[:, BODY[j]], atol=1e-6)
    later = plain.sample(2, t + LIMB_OFFSETS[0]).reshape(len(t), 25, 2)
    np.testing.assert_allclose(dream[:, arm[0]] - dream[:, arm[1]],
                               later[:, arm[0]] - later[:, arm[1]], atol=1e-5)
    assert np.abs(dream[:, arm[0]] - body[:, arm[0]]).max() > 1e-2
    # Still one dream per (seed, t): in pieces, at any rate.
    np.testing.assert_allclose(np.concatenate([G.sample(2, t[:50]), G.sample(2, t[50:])]),
                               dream.reshape(len(t), 50), atol=1e-5)


def test_noise_of_a_grid_point_is_the_same_in_every_window():
    a = seeded_noise(5, -4, 200, 8)
    b = seeded_noise(5, 60, 10, 8)
    np.testing.assert_array_equal(a[64:74], b)
    assert not torch.equal(seeded_noise(6, 60, 10, 8), b)


def test_sample_rejects_times_outside_its_codes():
    G = moving()
    first, count = G.window(0.0, 1.0)
    noise = torch.zeros(1, count, TINY.noise_dim)
    content = torch.zeros(1, TINY.content_dim)
    G(content, noise, torch.tensor([first]), torch.tensor([[0.5]], dtype=torch.float64))
    with pytest.raises(ValueError, match="outside"):
        G(content, noise, torch.tensor([first]), torch.tensor([[9.0]], dtype=torch.float64))


def test_gap_discriminator_shapes_and_the_gap_matters():
    torch.manual_seed(0)
    D = GapD(50, 3, 32, max_gap=2.56)
    poses = torch.randn(4, 3, 50)
    gaps = torch.tensor([[0.04, 0.08]] * 4)
    out = D(poses, gaps)
    assert out.shape == (4,)
    other = D(poses, torch.tensor([[0.8, 1.2]] * 4))
    assert (out - other).abs().min() > 1e-4, "the same poses at other gaps must score otherwise"
    with pytest.raises(ValueError, match="GapD wants"):
        D(poses[:, :2], gaps)
    assert PoseD(50, 32)(poses[:, 0]).shape == (4,)


def test_minibatch_std_lets_the_discriminators_see_the_spread_of_a_batch():
    torch.manual_seed(0)
    spread = torch.randn(8, 3, 50)
    collapsed = spread[:1].expand(8, 3, 50)             # every clip the same motion
    gaps = torch.tensor([[0.04, 0.08]] * 8)
    for D, score in ((PoseD(50, 32, mbstd=4), lambda D, p: D(p[:, 0])),
                     (GapD(50, 3, 32, max_gap=2.56, mbstd=4), lambda D, p: D(p, gaps))):
        alone = score(D, collapsed)[0]
        with_others = score(D, torch.cat([collapsed[:1], spread[1:]]))[0]
        assert (alone - with_others).abs() > 1e-4, "one clip's score must depend on its group"
    # Off (0), a clip's score is its own: the same with any batch around it.
    D = GapD(50, 3, 32, max_gap=2.56)
    assert torch.allclose(D(collapsed, gaps)[0], D(torch.cat([collapsed[:1], spread[1:]]), gaps)[0])
    with pytest.raises(UserError, match="mbstd"):
        MotionConfig(mbstd=1)


def test_window_discriminator_sees_the_order_of_frames():
    torch.manual_seed(0)
    D = WindowD(50, 16, 32)
    poses = torch.cumsum(torch.randn(2, 16, 50) * 0.1, 1)
    out = D(poses)
    assert out.shape == (2,)
    shuffled = poses[:, torch.randperm(16)]
    assert (out - D(shuffled)).abs().min() > 1e-4, "the same poses in another order differ"
    with pytest.raises(ValueError, match="WindowD wants"):
        D(poses[:, :8])


def test_motion_graph_replays_training_frames():
    rng = np.random.default_rng(0)
    feats = np.cumsum(rng.normal(0, 0.01, (400, 50)), 0).astype(np.float32)
    out = motion_graph(feats, np.ones(400, bool), 600, seed=1)
    assert out.shape == (600, 50)
    # Far from a jump (blended), every frame is a training frame.
    nearest = np.abs(out[:, None, :] - feats[None]).max(2).min(1)
    assert np.median(nearest) < 1e-6


# -- files and commands ---------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A synthetic dataset and a tiny generator run on it, under <root>/runs."""
    root = tmp_path_factory.mktemp("dream")
    figure = make_synthetic_dataset(root, n=40, w=64, h=64)
    torch.manual_seed(0)
    cfg = TrainConfig(data=(str(figure),), preset="tiny", model=ModelConfig.preset("tiny"),
                      size=64, frames=2, bptt=2, steps=2, workers=0, log_every=1,
                      sample_every=100, checkpoint_minutes=60.0, temporal=False)
    run = train(cfg, run_dir=root / "runs" / "figure-test", progress=False)
    return {"root": root, "figure": figure, "run": run}


def test_pose_folder_round_trip_and_transfer_reads_it(world, tmp_path):
    seq = load_motion(world["figure"], holdout=0.0)
    frame = seq.frame
    G = moving(MotionConfig(**{**TINY.to_dict(), "holdout": 0.0}))
    G.body.fit(seq.features)
    model = type("M", (), {"generator": G})()
    kp = dream_keypoints(model, frame, seed=2, frames=12, fps=10.0)
    assert kp.shape == (12, 137, 3)
    folder = write_pose_folder(tmp_path / "dream_pose", kp, 10.0, frame.size)
    files = sorted(folder.glob("*.json"))
    assert [p.name for p in files][:2] == ["000000.json", "000001.json"] and len(files) == 12
    back = np.stack([pose_to_array(read_openpose_json(p)) for p in files])
    np.testing.assert_allclose(back, kp, atol=1e-3)
    assert (back[:, :25, 2] > 0).all() and (back[:, 25:, 2] == 0).all()   # body only
    # Features -> pixels -> features is the identity (the person's frame, both ways).
    feats = G.sample(2, np.arange(12) / 10.0)
    np.testing.assert_allclose(frame.to_features(kp[:, :25, :2]), feats, atol=1e-4)
    clip = read_source(folder, TransferOptions())       # fps and size from its clip.yaml
    assert clip.fps == 10.0 and clip.size == frame.size and len(clip.poses) == 12
    np.testing.assert_allclose(np.stack(clip.poses), back)
    # A shorter dream into the same folder leaves no stale frames behind.
    write_pose_folder(folder, kp[:5], 10.0, frame.size)
    assert len(list(folder.glob("*.json"))) == 5
    assert PoseFrame.from_dict(frame.to_dict()) == frame
    (folder / "clip.yaml").write_text("fps: [")
    with pytest.raises(UserError, match="clip.yaml is unreadable"):
        read_source(folder, TransferOptions())
    # Without clip.yaml a loose pose folder still needs --fps and --source-size.
    (folder / "clip.yaml").unlink()
    with pytest.raises(UserError, match="--fps and --source-size"):
        read_source(folder, TransferOptions())


def test_train_then_dream_end_to_end(world):
    root = world["root"]
    code, text = run_cli(["dream", "--train", world["figure"], "--steps", "3", "--run-dir",
                          root / "runs" / "motion-figure-test"], root)
    assert code == 0, text
    # The default config: two trainings of 3 steps each, the judge's pick kept.
    assert "motion model trained 2 times, 3 steps each," in text
    model = load_motion_model(root / "runs" / "motion-figure-test")
    assert model.config.holdout == 0.2 and model.steps == 3 and model.config.restarts == 2
    assert model.frames[0].size == (64, 64)
    # Found by dataset under runs/motion-*/, rendered through the run's generator.
    code, text = run_cli(["dream", world["run"], "--seconds", "1", "--fps", "10", "--seed", "3",
                          "-o", root / "out" / "d.mp4", "--compare"], root)
    assert code == 0, text
    assert "dreamed 10 poses (1.0 s at 10 fps" in text
    assert "lend" not in text       # the dream lends its own details; transfer must not
    assert len(list((root / "out" / "d_pose").glob("*.json"))) == 10
    import av

    for name in ("d.mp4", "d_compare.mp4"):
        with av.open(str(root / "out" / name)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 10
    # transfer reads the dreamed folder as a SOURCE as it is (fps and size: its clip.yaml).
    code, text = run_cli(["transfer", root / "out" / "d_pose", world["figure"], "--checkpoint",
                          world["run"], "--no-normalize", "-o", root / "out" / "t.mp4"], root)
    assert code == 0 and "10 frames at 10 fps" in text, text
    # --temperature reaches the sampler (its effect: the test above) and clip.yaml.
    code, text = run_cli(["dream", world["run"], "--seconds", "1", "--fps", "10", "--seed", "3",
                          "--temperature", "2", "-o", root / "out" / "h.mp4", "--poses-only"],
                         root)
    assert code == 0, text
    notes = yaml.safe_load((root / "out" / "h_pose" / "clip.yaml").read_text())
    assert notes["temperature"] == 2 and notes["limb_streams"] is True
    # --whole-body turns the limb streams off (their effect: the sampling test above).
    code, text = run_cli(["dream", world["run"], "--seconds", "1", "--fps", "10", "--seed", "3",
                          "--whole-body", "-o", root / "out" / "w.mp4", "--poses-only"], root)
    assert code == 0, text
    assert yaml.safe_load((root / "out" / "w_pose" / "clip.yaml").read_text())[
        "limb_streams"] is False
    # --poses-only at 20 fps: the same seed's poses at the shared instants.
    code, text = run_cli(["dream", world["run"], "--seconds", "1", "--fps", "20", "--seed", "3",
                          "-o", root / "out" / "e.mp4", "--poses-only"], root)
    assert code == 0, text
    assert not (root / "out" / "e.mp4").exists()
    a = read_openpose_json(root / "out" / "d_pose" / "000004.json").body
    b = read_openpose_json(root / "out" / "e_pose" / "000008.json").body
    np.testing.assert_allclose(a, b, atol=2e-3)
    # The motion model's own folder gives the same poses with no generator run: its frame is
    # its dataset's; asked to render, it says what to do instead.
    motion_dir = root / "runs" / "motion-figure-test"
    code, text = run_cli(["dream", motion_dir, "--seconds", "1", "--fps", "20", "--seed", "3",
                          "-o", root / "out" / "m.mp4", "--poses-only"], root)
    assert code == 0, text
    c = read_openpose_json(root / "out" / "m_pose" / "000008.json").body
    np.testing.assert_allclose(c, b, atol=1e-4)
    code, text = run_cli(["dream", motion_dir, "--seconds", "1"], root)
    assert code == 2 and "no generator" in text and "--poses-only" in text, text
    assert len(text.strip().splitlines()) == 1
    # Without --temperature, the dream uses the one the model's training picked.
    assert yaml.safe_load((root / "out" / "e_pose" / "clip.yaml").read_text())["temperature"] == 1
    pt = root / "runs" / "motion-figure-test" / "motion.pt"
    data = torch.load(pt, weights_only=True)
    torch.save({**data, "temperature": 1.5}, pt)
    code, text = run_cli(["dream", world["run"], "--seconds", "1", "--fps", "10",
                          "-o", root / "out" / "k.mp4", "--poses-only"], root)
    assert code == 0, text
    assert yaml.safe_load((root / "out" / "k_pose" / "clip.yaml").read_text())["temperature"] == 1.5


def test_bad_inputs_are_one_line_errors(world, tmp_path):
    root = world["root"]
    bare = tmp_path / "runs" / "bare"
    shutil.copytree(world["run"], bare)
    (bare / "motion.pt").unlink(missing_ok=True)
    code, text = run_cli(["dream", bare, "--seconds", "1"], tmp_path)   # no runs/motion-* here
    assert code == 2 and "no motion model for" in text and "vid2vid dream --train" in text
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1

    face = tmp_path / "face"
    shutil.copytree(world["figure"], face)
    meta = json.loads((face / "meta.json").read_text())
    (face / "meta.json").write_text(json.dumps({**meta, "task": "face"}))
    no_pose = tmp_path / "no_pose"
    shutil.copytree(world["figure"], no_pose)
    shutil.rmtree(no_pose / "pose")
    cases = [([face], "'face' dataset"), ([no_pose], "has no pose/ keypoints"),
             ([tmp_path / "missing"], "does not exist"), ([], "needs dataset directories")]
    for paths, expected in cases:
        code, text = run_cli(["dream", "--train", *paths, "--steps", "1"], root)
        assert code == 2 and expected in text, (paths, text)
        assert len(text.strip().splitlines()) == 1
    code, text = run_cli(["dream", tmp_path / "nowhere"], root)
    assert code == 2 and "does not exist" in text
    code, text = run_cli(["dream", world["run"], "--motion", tmp_path / "x.pt"], root)
    assert code == 2 and "dream --train" in text
    with pytest.raises(UserError, match="budget"):
        train_motion([world["figure"]], TINY, tmp_path / "m.pt")


def test_ctrl_c_during_motion_training_says_nothing_was_written(world, tmp_path, monkeypatch):
    import dream.training as training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_motion", interrupted)
    code, text = run_cli(["dream", "--train", world["figure"], "--steps", "5", "--run-dir",
                          tmp_path / "m"], tmp_path)
    assert code == 130 and "was not written" in text and "from the start" in text, text
    assert "Traceback" not in text and not (tmp_path / "m" / "motion.pt").exists()


def test_mirror_swaps_left_and_right_and_twice_is_the_same_pose():
    from dream.augment import mirror, random_mirror
    from vid2vid.pose import BODY

    torch.manual_seed(0)
    poses = torch.randn(6, 3, 50)
    once = mirror(poses).unflatten(-1, (25, 2))
    xy = poses.unflatten(-1, (25, 2))
    assert torch.equal(once[..., BODY["LWrist"], 0], -xy[..., BODY["RWrist"], 0])
    assert torch.equal(once[..., BODY["LWrist"], 1], xy[..., BODY["RWrist"], 1])
    assert torch.equal(once[..., BODY["Neck"], :], xy[..., BODY["Neck"], :] * torch.tensor([-1, 1]))
    assert torch.equal(mirror(mirror(poses)), poses)
    assert torch.equal(random_mirror(poses, 0.0), poses)
    some = random_mirror(poses, 0.5)
    flipped = [torch.equal(some[b], mirror(poses[b])) for b in range(6)]
    kept = [torch.equal(some[b], poses[b]) for b in range(6)]
    assert all(f != k for f, k in zip(flipped, kept)), "a clip is mirrored whole or not at all"
    assert any(flipped) and any(kept)
    with pytest.raises(UserError, match="mirror"):
        MotionConfig(mirror=1.0)
