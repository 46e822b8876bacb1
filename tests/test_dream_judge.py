"""What the motion model learns from and how its snapshots are judged: real clips, the
snapshot judge (Fréchet distance, temperature, validation stretch, novelty) and the
training loop's pick (dream.training, dream.selection). CPU, seconds."""

import dataclasses

import numpy as np
import pytest

from dream.checkpoint import load_motion_model
from dream.config import MotionConfig
from dream.motion_data import load_motion
from dream.selection import Judgement, SnapshotJudge, cut_validation, self_novelty
from dream.training import ClipSampler, budget_steps, train_motion
from tests.helpers_video import make_synthetic_dataset
from tests.test_dream import TINY
from vid2vid.errors import UserError


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A synthetic dancer's dataset (as test_dream's world, without a generator run)."""
    root = tmp_path_factory.mktemp("dream_judge")
    return {"figure": make_synthetic_dataset(root, n=40, w=64, h=64)}


def _sequence(world, features: np.ndarray):
    """The world's dataset, its features swapped for `features` (all valid)."""
    base = load_motion(world["figure"], 0.2)
    return dataclasses.replace(base, features=features.astype(np.float32),
                               valid=np.ones(len(features), bool))


def test_real_windows_are_consecutive_frames(world):
    feats = np.arange(100 * 50, dtype=np.float32).reshape(100, 50)
    seq = _sequence(world, feats)
    cfg = dataclasses.replace(TINY, window=8)
    poses, gaps = ClipSampler([seq], cfg, np.random.default_rng(0)).windows(5)
    assert poses.shape == (5, 8, 50) and gaps.shape == (5, 7)
    np.testing.assert_allclose(np.diff(poses[:, :, 0], axis=1), 50)    # frame after frame
    np.testing.assert_allclose(gaps, 1.0 / seq.frame.fps)


class _Replay:
    """A stand-in generator: `sample` returns given motion."""

    def __init__(self, features):
        self.features = features
        self.cfg = TINY

    def sample(self, seed, times, temperature=1.0, limb_streams=None):
        self.limb_streams = limb_streams
        return self.features[np.arange(len(times)) % len(self.features)]


def test_snapshot_judge_prefers_motion_like_the_training(world):
    rng = np.random.default_rng(0)
    t = np.arange(600)[:, None] / 25.0
    feats = (0.3 * np.sin(2 * np.pi * t * rng.uniform(0.3, 2.0, 50) + rng.uniform(0, 6, 50))
             + rng.normal(0, 0.01, (600, 50))).astype(np.float32)
    judge = SnapshotJudge([_sequence(world, feats)])
    replay = _Replay(feats)
    like = judge(replay).frechet
    assert replay.limb_streams is False     # it judges G's own whole-body motion
    still = judge(_Replay(np.repeat(feats[:1], 600, 0))).frechet
    noise = judge(_Replay(rng.normal(0, 0.3, (600, 50)).astype(np.float32))).frechet
    assert like < 0.1 * still and like < 0.1 * noise
    # Too few windows to judge (a short dataset): every snapshot scores inf, the last is kept.
    assert SnapshotJudge([_sequence(world, feats[:20])])(_Replay(feats)).frechet == float("inf")


class _PerSeed:
    """A stand-in generator whose dream depends on the seed: `motions[seed]`."""

    def __init__(self, motions: dict):
        self.motions = motions
        self.cfg = TINY
        self.asked = []

    def sample(self, seed, times, temperature=1.0, limb_streams=None):
        self.asked.append(seed)
        m = self.motions[seed]
        return m[np.arange(len(times)) % len(m)]


def test_the_judge_scores_the_mean_over_its_noise_seeds(world):
    rng = np.random.default_rng(4)
    feats = _waves(rng, 600, rng.uniform(0.3, 2.0, 50))
    still = np.repeat(feats[:1], 600, 0)
    one = SnapshotJudge([_sequence(world, feats)], seeds=(0,))
    judge = SnapshotJudge([_sequence(world, feats)], seeds=(7, 8))
    G = _PerSeed({7: feats, 8: still})
    both = judge(G)
    # Each seed is a whole dream (its own content code); the score is their mean, so a seed
    # that stands still is not hidden by one that happens to fit, and novelty is the first's.
    assert sorted(set(G.asked)) == [7, 8]
    like = one(_PerSeed({0: feats})).frechet
    frozen = one(_PerSeed({0: still})).frechet
    assert both.frechet == pytest.approx((like + frozen) / 2)
    assert both.novelty == pytest.approx(one(_PerSeed({0: feats})).novelty)
    # The default seeds are not the ones a user or the bench starts from.
    assert 0 not in SnapshotJudge([_sequence(world, feats)]).seeds


def test_the_budget_pays_for_the_judge_too():
    cfg = MotionConfig(restarts=2, select_every=500, pretrain=0.15,
                       select_temperatures=(1.0, 2.0))
    # No judge cost: the steps the rate buys, shared by the trainings.
    assert budget_steps(cfg, 30.0, 600.0, 0.0) == 9000
    # With it, steps and judging together fill each training's half of the budget.
    steps = budget_steps(cfg, 30.0, 600.0, 0.5)
    judged = steps * (1 - cfg.pretrain) / cfg.select_every * len(cfg.select_temperatures)
    assert steps < 9000
    assert steps / 30.0 + judged * 0.5 == pytest.approx(300.0, abs=0.1)
    # Unjudged runs spend it all on steps.
    assert budget_steps(dataclasses.replace(cfg, select_every=0, restarts=1), 30.0, 600.0,
                        0.5) == 18000


def _waves(rng, frames: int, freqs: np.ndarray) -> np.ndarray:
    t = np.arange(frames)[:, None] / 25.0
    return (0.3 * np.sin(2 * np.pi * t * freqs + rng.uniform(0, 6, 50))
            + rng.normal(0, 0.01, (frames, 50))).astype(np.float32)


def test_the_validation_judge_scores_motion_the_model_never_saw(world):
    rng = np.random.default_rng(1)
    slow, fast = _waves(rng, 400, rng.uniform(0.2, 0.6, 50)), _waves(rng, 200, rng.uniform(2, 3, 50))
    seq = _sequence(world, np.concatenate([slow, fast]))
    head, tail = seq.split(1 / 3)
    assert (len(head.features), len(tail.features)) == (400, 200) and tail.frame == seq.frame
    np.testing.assert_array_equal(tail.features, fast)
    train, validation = cut_validation([seq], 1 / 3)
    assert len(train[0].features) == 400 and len(validation[0].features) == 200
    # Replaying the training motion wins on the training windows and loses on the held-back
    # ones: the validation judge does not reward a model for copying its data.
    on_train, on_val = SnapshotJudge(train), SnapshotJudge(train, validation)
    assert on_train(_Replay(slow)).frechet < on_train(_Replay(fast)).frechet
    assert on_val(_Replay(fast)).frechet < 0.5 * on_val(_Replay(slow)).frechet
    # A stretch too short to judge on is not cut (a short dataset trains on all of it), and
    # 0 cuts nothing.
    short = _sequence(world, slow[:60])
    assert cut_validation([short], 0.2) == ([short], None)
    assert cut_validation([seq], 0.0) == ([seq], None)
    with pytest.raises(UserError, match="validation"):
        MotionConfig(validation=1.0)


def test_training_holds_the_validation_stretch_back(world, tmp_path, monkeypatch):
    import dream.training as training

    seen = {}

    class Judge:
        def __init__(self, motions, validation=None, limb_swap=0.0):
            seen["train"] = sum(len(m.features) for m in motions)
            seen["validation"] = validation and sum(len(m.features) for m in validation)

        def __call__(self, G, temperature=1.0):
            return Judgement(1.0, 0.0)

    monkeypatch.setattr(training, "SnapshotJudge", Judge)
    monkeypatch.setattr(training, "cut_validation", lambda ms, share: (
        [m.split(share)[0] for m in ms], [m.split(share)[1] for m in ms]))
    cfg = dataclasses.replace(TINY, select_every=1, pretrain=0.0, select_temperatures=(1.0,),
                              validation=0.25)
    full = sum(len(m.features) for m in [load_motion(world["figure"], cfg.holdout)])
    result = train_motion([world["figure"]], cfg, tmp_path / "m.pt", steps=2, progress=False)
    assert seen["train"] + seen["validation"] == full and seen["validation"] == full // 4
    assert result.validation > 0 and "held-back frames" in result.line()


def _scripted_judge(scores: list[float]):
    """A SnapshotJudge stand-in that returns `scores` in turn (novelty 0)."""
    it = iter(scores)

    class Judge:
        def __init__(self, motions, validation=None, limb_swap=0.0):
            pass

        def __call__(self, G, temperature=1.0):
            return Judgement(next(it), 0.0)

    return Judge


def test_training_keeps_the_best_judged_snapshot(world, tmp_path, monkeypatch):
    import dream.training as training

    monkeypatch.setattr(training, "SnapshotJudge", _scripted_judge([3.0, 1.0, 2.0]))
    cfg = dataclasses.replace(TINY, window=4, select_every=1, pretrain=0.0,
                              select_temperatures=(1.0,))
    result = train_motion([world["figure"]], cfg, tmp_path / "m.pt", steps=3, progress=False)
    assert (result.steps, result.kept, result.frechet) == (3, 2, 1.0)
    assert "kept step 2's snapshot" in result.line() and "temperature" not in result.line()
    assert load_motion_model(tmp_path / "m.pt").temperature == 1.0


def test_restarts_keep_the_best_snapshot_of_all_trainings(world, tmp_path, monkeypatch):
    import dream.training as training

    # Two trainings of two steps: the second's first snapshot is the best of the four.
    seeds = []
    one = training.one_training
    monkeypatch.setattr(training, "SnapshotJudge", _scripted_judge([3.0, 2.0, 1.0, 4.0]))
    monkeypatch.setattr(training, "one_training",
                        lambda cfg, m, f, seed, device: seeds.append(seed) or one(cfg, m, f,
                                                                                  seed, device))
    cfg = dataclasses.replace(TINY, select_every=1, pretrain=0.0, select_temperatures=(1.0,),
                              restarts=2, seed=5)
    result = train_motion([world["figure"]], cfg, tmp_path / "m.pt", steps=2, progress=False)
    assert seeds == [5, 6]
    assert (result.steps, result.kept, result.frechet, result.restart) == (2, 1, 1.0, 1)
    assert "2 times, 2 steps each" in result.line() and "training 2 of 2" in result.line()
    assert load_motion_model(tmp_path / "m.pt").config.restarts == 2
    with pytest.raises(UserError, match="restarts"):
        MotionConfig(restarts=2, select_every=0)
    with pytest.raises(UserError, match="restarts"):
        MotionConfig(restarts=0)


def test_restarts_reproduce_the_single_trainings(world, tmp_path, monkeypatch):
    import dream.training as training

    # Training 2 of a restarted run is the run started from seed + 1: its last snapshot,
    # judged best, has the weights a single run from that seed ends with.
    cfg = dataclasses.replace(TINY, select_every=1, pretrain=0.0, select_temperatures=(1.0,))
    single = dataclasses.replace(cfg, seed=4, select_every=0)
    train_motion([world["figure"]], single, tmp_path / "a.pt", steps=2, progress=False)
    monkeypatch.setattr(training, "SnapshotJudge", _scripted_judge([3.0, 3.0, 2.0, 1.0]))
    both = train_motion([world["figure"]], dataclasses.replace(cfg, seed=3, restarts=2),
                        tmp_path / "b.pt", steps=2, progress=False)
    assert (both.restart, both.kept) == (1, 2)
    a = load_motion_model(tmp_path / "a.pt").generator.state_dict()
    b = load_motion_model(tmp_path / "b.pt").generator.state_dict()
    for k in a:
        assert np.array_equal(a[k].numpy(), b[k].numpy()), k


def test_the_judge_picks_the_temperature_the_model_dreams_at(world, tmp_path, monkeypatch):
    import dream.training as training

    # Two steps, two temperatures: step 1 scores (4, 3), step 2 (2.5, 2) -> step 2 at 1.5.
    scores = {(1, 1.0): 4.0, (1, 1.5): 3.0, (2, 1.0): 2.5, (2, 1.5): 2.0}
    seen = []

    class Judge:
        def __init__(self, motions, validation=None, limb_swap=0.0):
            pass

        def __call__(self, G, temperature=1.0):
            seen.append(temperature)
            return Judgement(scores[len(seen) // 3 + 1, temperature], 0.0)

    monkeypatch.setattr(training, "SnapshotJudge", Judge)
    cfg = dataclasses.replace(TINY, select_every=1, pretrain=0.0, select_temperatures=(1.0, 1.5))
    result = train_motion([world["figure"]], cfg, tmp_path / "m.pt", steps=2, progress=False)
    assert seen == [1.0, 1.5, 1.0, 1.5]
    assert (result.kept, result.frechet, result.temperature) == (2, 2.0, 1.5)
    assert "temperature 1.5" in result.line()
    model = load_motion_model(tmp_path / "m.pt")
    assert model.temperature == 1.5 and model.config.select_temperatures == (1.0, 1.5)
    with pytest.raises(UserError, match="select_temperatures"):
        MotionConfig(select_temperatures=())


def test_the_judge_measures_novelty_against_the_training_motion(world):
    rng = np.random.default_rng(2)
    feats = _waves(rng, 600, rng.uniform(0.3, 2.0, 50))
    judge = SnapshotJudge([_sequence(world, feats)])
    # The floor is how far training windows lie from those they do not overlap: above 0 for
    # noisy waves, and a replay of the training motion falls below it.
    assert 0.0 < judge.floor == pytest.approx(self_novelty([_sequence(world, feats)]))
    replay = judge(_Replay(feats))
    assert replay.novelty < 0.1 * judge.floor
    other = judge(_Replay(_waves(rng, 600, rng.uniform(0.3, 2.0, 50))))
    assert other.novelty > judge.floor
    assert self_novelty([_sequence(world, feats[:20])]) == 0.0


def test_select_novel_keeps_the_closest_of_the_novel_snapshots(world, tmp_path, monkeypatch):
    import dream.training as training

    def run(judgements, novel=True):
        it = iter(judgements)

        class Judge:
            floor = 0.05

            def __init__(self, motions, validation=None, limb_swap=0.0):
                pass

            def __call__(self, G, temperature=1.0):
                return Judgement(*next(it))

        monkeypatch.setattr(training, "SnapshotJudge", Judge)
        cfg = dataclasses.replace(TINY, select_every=1, pretrain=0.0, select_temperatures=(1.0,),
                                  select_novel=novel)
        return train_motion([world["figure"]], cfg, tmp_path / "m.pt", steps=len(judgements),
                            progress=False)

    # Step 2 is the closest but replays its training clips (novelty below the floor).
    steps = [(5.0, 0.08), (1.0, 0.01), (3.0, 0.06), (4.0, 0.07)]
    result = run(steps)
    assert (result.kept, result.frechet) == (3, 3.0)
    assert (result.novelty, result.novelty_floor) == (0.06, 0.05)
    assert "as novel as it is to itself" in result.line()
    assert run(steps, novel=False).kept == 2
    # None novel enough: the closest of all.
    assert run([(5.0, 0.01), (1.0, 0.02), (3.0, 0.03)]).kept == 2


def _bone_lengths(features: np.ndarray) -> np.ndarray:
    from dream.motion_metrics import bone_lengths
    return bone_lengths(features, (True,) * 25)


def test_swapped_limbs_keep_their_bones_and_hang_from_this_clips_body():
    from dream.augment import LIMBS, swap_limbs
    rng = np.random.default_rng(0)
    clip, donors = rng.normal(0, 1, (5, 50)), [rng.normal(0, 1, (5, 50)) for _ in LIMBS]
    out = swap_limbs(clip, donors).reshape(5, 25, 2)
    moved = [j for _, joints in LIMBS for j in joints]
    torso = [j for j in range(25) if j not in moved]
    np.testing.assert_array_equal(out[:, torso], clip.reshape(5, 25, 2)[:, torso])
    for (root, joints), donor in zip(LIMBS, donors):
        d = donor.reshape(5, 25, 2)
        np.testing.assert_allclose(out[:, list(joints)] - out[:, root:root + 1],
                                   d[:, list(joints)] - d[:, root:root + 1], atol=1e-12)
    # every bone of the result is as long as in the clip (torso) or the donor (its limb)
    lengths = _bone_lengths(out.reshape(5, 50))
    assert not np.allclose(lengths, _bone_lengths(clip))
    np.testing.assert_allclose(swap_limbs(clip, [clip] * len(LIMBS)), clip, atol=1e-12)


def test_the_sampler_swaps_limbs_only_when_asked(world):
    from dream.augment import LIMBS
    frames = np.arange(300, dtype=np.float64)[:, None]
    # x: the frame number; y: the frame number times (joint + 1), so a joint's offset from
    # its limb's root tells which frame it came from
    xy = np.stack([np.repeat(frames, 25, 1), frames * np.arange(1, 26)], 2)
    seq = _sequence(world, xy.reshape(300, 50))
    plain = ClipSampler([seq], TINY, np.random.default_rng(0))(64)[0].reshape(64, -1, 25, 2)
    assert (plain[..., 0] == plain[..., :1, 0]).all(), "off: each pose is one frame"
    swapped = ClipSampler([seq], dataclasses.replace(TINY, limb_swap=1.0),
                          np.random.default_rng(0))(64)[0].reshape(64, -1, 25, 2)
    own = swapped[:, :, 1, 0]           # the neck's x: this clip's frames
    elsewhere = 0
    for root, joints in LIMBS:
        j = joints[-1]
        donor = (swapped[:, :, j, 1] - swapped[:, :, root, 1]) / (j - root)
        # the same instants elsewhere in the dance: a constant shift per clip
        np.testing.assert_allclose(np.diff(donor, axis=1), np.diff(own, axis=1), atol=1e-3)
        elsewhere += int((np.abs(donor - own).max(1) > 0.5).sum())
    assert elsewhere > 0.8 * 64 * len(LIMBS)
    with pytest.raises(UserError, match="limb_swap"):
        MotionConfig(limb_swap=1.5)


def test_the_judge_compares_with_limbs_swapped_as_training_swaps_them(world):
    from dream.selection import swapped_windows_of, windows_of
    rng = np.random.default_rng(3)
    seq = _sequence(world, _waves(rng, 300, rng.uniform(0.3, 2.0, 50)))
    np.testing.assert_allclose(swapped_windows_of([seq], 0.0), windows_of([seq]))
    every = swapped_windows_of([seq], 1.0)
    assert every.shape == windows_of([seq]).shape and not np.allclose(every, windows_of([seq]))
    np.testing.assert_array_equal(every, swapped_windows_of([seq], 1.0))    # repeatable


def test_training_with_limb_swaps_judges_against_swapped_clips(world, tmp_path, monkeypatch):
    import dream.training as training

    seen = []

    class Judge:
        def __init__(self, motions, validation=None, limb_swap=0.0):
            seen.append(limb_swap)

        def __call__(self, G, temperature=1.0):
            return Judgement(1.0, 0.0)

    monkeypatch.setattr(training, "SnapshotJudge", Judge)
    cfg = dataclasses.replace(TINY, select_every=1, pretrain=0.0, select_temperatures=(1.0,),
                              limb_swap=0.5)
    train_motion([world["figure"]], cfg, tmp_path / "m.pt", steps=2, progress=False)
    assert seen == [0.5]
    assert load_motion_model(tmp_path / "m.pt").config.limb_swap == 0.5
