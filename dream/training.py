"""`vid2vid dream --train`: fit the motion model to the poses of one or more datasets.

Sparse training (StyleGAN-V): every clip is `samples` poses at random frames
within `max_span` seconds; the fake clip is drawn at the same time gaps,
starting anywhere in [0, max_time) so every t is trained. Two discriminators
(dream.discriminators): per pose, and on the clip with its gaps. The first
`pretrain` share of the steps uses the per-pose D alone (StyleSV: the image
part first). Non-saturating logistic loss, R1 on real samples. With `window`,
a third D sees dense windows of consecutive frames (off: it measured worse on
held-out motion, RESULTS.md). Every `select_every` steps G_ema is judged
against the training motion, or against a held-back `validation` stretch
(dream.selection), and the best snapshot is saved, not the last (with
`select_novel`, the best of those as novel as the training motion is to
itself). With `restarts`, several independent trainings from consecutive
seeds, and the judge keeps the best snapshot of them all: GAN motion trained on
a minute of dance differs a lot from seed to seed (RESULTS.md, "Dream"). With
`mirror`, the Ds see clips mirrored at random; with `limb_swap`, real clips take
their arms and legs from other moments (dream.augment).
The loop reads top to bottom in `train_motion`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from dream.augment import random_mirror, swap_limbs_elsewhere
from dream.checkpoint import save_motion
from dream.config import MotionConfig
from dream.discriminators import GapD, PoseD, WindowD
from dream.model import MotionGenerator
from dream.motion_data import MotionSequence, load_motions
from dream.selection import Judgement, SnapshotJudge, cut_validation
from vid2vid.cpu_share import CpuShare
from vid2vid.errors import UserError

CALIBRATION_STEPS = 20


class Pick(NamedTuple):
    """The snapshot to save: the best judged so far (or, unjudged, the first training's last)."""
    judgement: Judgement
    step: int
    weights: dict | None        # G_ema's state_dict
    temperature: float          # unjudged: 1 where it is a choice
    restart: int = 0


@dataclass
class TrainResult:
    path: Path
    steps: int
    seconds: float
    frames: int          # training frames, all datasets
    kept: int            # the step whose G_ema snapshot was saved (dream.selection)
    frechet: float       # its Fréchet distance to the training windows (inf: not judged)
    temperature: float = 1.0    # the noise scale it dreams at by default (the judge's pick)
    validation: int = 0         # frames held back from training for the judge
    novelty: float = 0.0        # the kept pair's novelty (dream.selection)
    novelty_floor: float | None = None      # with select_novel: the training's own novelty
    restart: int = 0            # which of the `restarts` trainings the kept snapshot is from
    restarts: int = 1

    def line(self) -> str:
        judged_on = (f"the {self.validation} held-back frames' motion" if self.validation
                     else "the training motion")
        novel = "" if self.novelty_floor is None else (
            f" of those at least as novel as it is to itself (novelty {self.novelty:.3f}, "
            f"floor {self.novelty_floor:.3f})")
        kept = "" if self.kept == self.steps and not novel else (
            f"; kept step {self.kept}'s snapshot, the closest to {judged_on} "
            f"(Fréchet {self.frechet:.1f}){novel}")
        if self.restarts > 1:
            kept += f" (training {self.restart + 1} of {self.restarts}, seed + {self.restart})"
        if self.temperature != 1.0:
            kept += f"; it dreams at temperature {self.temperature:g} unless told otherwise"
        times = f"{self.restarts} times, {self.steps} steps each," if self.restarts > 1 \
            else f"for {self.steps} steps"
        rate = self.restarts * self.steps / max(self.seconds, 1e-9)
        return (f"{self.path}: motion model trained {times} on {self.frames} frames in "
                f"{self.seconds:.0f} s ({rate:.1f} steps/s){kept}")


class ClipSampler:
    """Real sparse clips: `samples` sorted frames within `max_span` seconds, in one run
    of frames with a person."""

    def __init__(self, motions: list[MotionSequence], cfg: MotionConfig,
                 rng: np.random.Generator):
        self.motions, self.cfg, self.rng = motions, cfg, rng
        self.starts = {}
        sizes = np.array([m.valid.sum() for m in motions], np.float64)
        self.weights = sizes / sizes.sum()
        self.max_frames = [max(cfg.samples - 1, int(round(cfg.max_span * m.frame.fps)))
                           for m in motions]
        for i, m in enumerate(motions):
            for span in range(cfg.samples - 1, self.max_frames[i] + 1):
                s = m.clip_starts(span)
                if len(s):
                    self.starts[i, span] = s
        self.window_starts = {}         # dataset -> starts of `window` valid frames in a row
        if cfg.window:
            for i, m in enumerate(motions):
                s = m.clip_starts(cfg.window - 1)
                if len(s):
                    self.window_starts[i] = s
        if not self.starts or (cfg.window and not self.window_starts):
            raise UserError(f"no run of {max(cfg.samples, cfg.window)} consecutive frames with "
                            f"a person in {', '.join(str(m.root) for m in motions)}; dream "
                            "needs a dancer seen for longer")

    def __call__(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(poses `[B, k, D]`, gaps `[B, k-1]` seconds)."""
        k = self.cfg.samples
        poses = np.zeros((batch, k, self.cfg.pose_dim), np.float32)
        gaps = np.zeros((batch, k - 1), np.float64)
        which = self.rng.choice(len(self.motions), batch, p=self.weights)
        for b, i in enumerate(which):
            m = self.motions[i]
            while True:     # spans log-uniform: short gaps (speed) and long ones (phrasing)
                span = int(round(np.exp(self.rng.uniform(np.log(k - 1),
                                                         np.log(self.max_frames[i])))))
                if (i, span) in self.starts:
                    break
            start = self.rng.choice(self.starts[i, span])
            inner = np.sort(self.rng.choice(np.arange(1, span), k - 2, replace=False)) \
                if k > 2 else np.zeros(0, int)
            idx = np.concatenate([[0], inner, [span]]) + start
            poses[b] = m.features[idx]
            if self.cfg.limb_swap and self.rng.random() < self.cfg.limb_swap:
                poses[b] = swap_limbs_elsewhere(m.features, idx, self.starts[i, span], self.rng)
            gaps[b] = np.diff(idx) / m.frame.fps
        return poses, gaps

    def windows(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Dense real windows: (poses `[B, window, D]`, gaps `[B, window-1]` seconds)."""
        W = self.cfg.window
        poses = np.zeros((batch, W, self.cfg.pose_dim), np.float32)
        gaps = np.zeros((batch, W - 1), np.float64)
        which = list(self.window_starts)
        weights = self.weights[which]
        for b, j in enumerate(self.rng.choice(which, batch, p=weights / weights.sum())):
            m = self.motions[j]
            start = self.rng.choice(self.window_starts[j])
            poses[b] = m.features[start:start + W]
            gaps[b] = 1.0 / m.frame.fps
        return poses, gaps


def fake_clips(G: MotionGenerator, gaps: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """G's clips at the real clips' gaps, starting anywhere in [0, max_time): `[B, k, D]`."""
    cfg = G.cfg
    B = gaps.shape[0]
    device = gaps.device
    start = torch.from_numpy(rng.uniform(0, cfg.max_time, B)).to(device)
    times = torch.cat([start[:, None], start[:, None] + torch.cumsum(gaps, 1)], 1)
    first = torch.floor(start / cfg.grid_seconds).long()
    count = G.window(0.0, float(gaps.sum(1).max()) + cfg.grid_seconds)[1]
    noise = torch.randn(B, count, cfg.noise_dim, device=device)
    content = torch.randn(B, cfg.content_dim, device=device)
    return G(content, noise, first, times)


def r1_penalty(logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


def one_training(cfg: MotionConfig, motions: list[MotionSequence], all_frames: np.ndarray,
                 seed: int, device: torch.device):
    """The networks of one independent training, from `seed`: (G_ema, step(i, total,
    with_gaps=None)), one D and one G update per step, G_ema following G."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sampler = ClipSampler(motions, cfg, rng)
    G = MotionGenerator(cfg, all_frames).to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    D_pose = PoseD(cfg.pose_dim, cfg.hidden, cfg.mbstd).to(device)
    D_gap = GapD(cfg.pose_dim, cfg.samples, cfg.hidden, cfg.max_span, cfg.mbstd).to(device)
    betas = (0.0, 0.99)
    opt_G = torch.optim.Adam(G.parameters(), cfg.lr, betas=betas)
    D_window = WindowD(cfg.pose_dim, cfg.window, cfg.hidden).to(device) if cfg.window else None
    opt_D = torch.optim.Adam([*D_pose.parameters(), *D_gap.parameters(),
                              *(D_window.parameters() if D_window else [])], cfg.lr, betas=betas)

    def see(clips: torch.Tensor) -> torch.Tensor:
        return random_mirror(clips, cfg.mirror)     # dream.augment: real and fake alike

    def step(i: int, total: int, with_gaps: bool | None = None) -> None:
        if with_gaps is None:
            with_gaps = i >= cfg.pretrain * total
        real_np, gaps_np = sampler(cfg.batch)
        real = torch.from_numpy(real_np).to(device).requires_grad_(True)
        gaps = torch.from_numpy(gaps_np).to(device).float()
        # -- D --
        with torch.no_grad():
            fake = see(fake_clips(G, gaps, rng))
        real_seen = see(real)
        logit_real = D_pose(real_seen.flatten(0, 1))
        loss_D = F.softplus(-logit_real).mean() + F.softplus(D_pose(fake.flatten(0, 1))).mean()
        penalty = r1_penalty(logit_real, real)
        if with_gaps:
            gap_real = D_gap(real_seen, gaps)
            loss_D = loss_D + F.softplus(-gap_real).mean() + F.softplus(D_gap(fake, gaps)).mean()
            penalty = penalty + r1_penalty(gap_real, real)
        if with_gaps and D_window is not None:
            win_np, win_gaps_np = sampler.windows(cfg.batch)
            win_real = torch.from_numpy(win_np).to(device).requires_grad_(True)
            win_gaps = torch.from_numpy(win_gaps_np).to(device).float()
            with torch.no_grad():
                win_fake = see(fake_clips(G, win_gaps, rng))
            win_logit = D_window(see(win_real))
            loss_D = loss_D + F.softplus(-win_logit).mean() + F.softplus(D_window(win_fake)).mean()
            penalty = penalty + r1_penalty(win_logit, win_real)
        opt_D.zero_grad(set_to_none=True)
        (loss_D + cfg.r1 / 2 * penalty).backward()
        opt_D.step()
        # -- G --
        fake = see(fake_clips(G, gaps, rng))
        loss_G = F.softplus(-D_pose(fake.flatten(0, 1))).mean()
        if with_gaps:
            loss_G = loss_G + F.softplus(-D_gap(fake, gaps)).mean()
        if with_gaps and D_window is not None:
            loss_G = loss_G + F.softplus(-D_window(see(fake_clips(G, win_gaps, rng)))).mean()
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()
        with torch.no_grad():
            for pe, p in zip(G_ema.parameters(), G.parameters()):
                pe.lerp_(p, 1 - cfg.ema)

    return G_ema, step


def budget_steps(cfg: MotionConfig, rate: float, seconds: float, judging: float) -> int:
    """Steps per training that `seconds` buy for all `cfg.restarts` trainings at `rate`
    steps/s, the judge's calls (`judging` seconds each, one per noise scale every
    `select_every` steps after the pretraining) paid out of the same budget."""
    per_step = (judging * len(cfg.select_temperatures) * (1.0 - cfg.pretrain)
                / cfg.select_every) if cfg.select_every else 0.0
    return int(rate * seconds / cfg.restarts / (1.0 + rate * per_step))


def train_motion(datasets: list[str | Path], cfg: MotionConfig, out: Path,
                 steps: int | None = None, minutes: float | None = None,
                 device: torch.device = torch.device("cpu"), progress: bool = True
                 ) -> TrainResult:
    """Trains on `datasets`' pose/ and writes motion.pt to `out` (a file path).

    With `cfg.restarts` > 1, that many independent trainings (seeds seed, seed + 1, ...),
    `steps` each or `minutes` for all; the judge keeps the best snapshot of them all.
    """
    from tqdm import tqdm

    if (steps is None) == (minutes is None):
        raise UserError("dream --train needs a budget: pass --steps N or --minutes M (one)")
    t0 = time.time()
    motions = load_motions(list(datasets), cfg.holdout)
    validation = None
    if cfg.select_every:
        motions, validation = cut_validation(motions, cfg.validation)
    all_frames = np.concatenate([m.features[m.valid] for m in motions])
    judge = SnapshotJudge(motions, validation, cfg.limb_swap) if cfg.select_every else None
    floor = judge.floor if judge is not None and cfg.select_novel else None
    best = Pick(Judgement(float("inf"), 0.0), 0, None,
                1.0 if 1.0 in cfg.select_temperatures else cfg.select_temperatures[0])
    total = steps
    for restart in range(cfg.restarts):
        G_ema, step = one_training(cfg, motions, all_frames, cfg.seed + restart, device)
        done = 0
        # fewer threads while other vid2vid jobs run (vid2vid/cpu_share.py)
        with CpuShare(device) as share:
            if total is None:
                # A short calibration turns the budget into steps (the schedule needs them).
                tc = time.time()
                for done in range(1, CALIBRATION_STEPS + 1):
                    step(done - 1, 10**9, with_gaps=True)       # timed as the slower later steps
                rate = CALIBRATION_STEPS / (time.time() - tc)
                judging = 0.0
                if judge is not None:
                    tj = time.time()
                    judge(G_ema, 1.0)
                    judging = time.time() - tj
                total = max(done + 1, budget_steps(cfg, rate, minutes * 60 - (time.time() - t0),
                                                   judging))
                if progress:
                    each = f" for each of {cfg.restarts} trainings" if cfg.restarts > 1 else ""
                    print(f"dream: {rate:.1f} steps/s here, so {minutes:g} minutes are {total} "
                          f"steps{each} (repeat with --steps {total})", flush=True)
            desc = "motion model" + (f" {restart + 1}/{cfg.restarts}" if cfg.restarts > 1 else "")
            with tqdm(total=total, initial=done, unit="step", desc=desc, disable=not progress,
                      dynamic_ncols=True, mininterval=1.0) as bar:
                for i in range(done, total):
                    share.poll()
                    step(i, total)
                    bar.update(1)
                    if cfg.select_every and ((i + 1) % cfg.select_every == 0 or i + 1 == total) \
                            and i + 1 >= cfg.pretrain * total:
                        scores = {t: judge(G_ema, t) for t in cfg.select_temperatures}
                        t = min(scores, key=lambda t: scores[t].rank(floor))
                        if scores[t].rank(floor) < best.judgement.rank(floor):
                            best = Pick(scores[t], i + 1, copy.deepcopy(G_ema.state_dict()), t,
                                        restart)
        if best.weights is None:    # unjudged (select_every 0, too few windows): the first's last
            best = best._replace(step=total, weights=copy.deepcopy(G_ema.state_dict()))
    G_ema.load_state_dict(best.weights)
    seconds = time.time() - t0
    path = save_motion(out, G_ema, [str(m.root) for m in motions], [m.frame for m in motions],
                       total, seconds, temperature=best.temperature)
    return TrainResult(path, total, seconds, int(sum(m.valid.sum() for m in motions)), best.step,
                       best.judgement.frechet, best.temperature,
                       int(sum(m.valid.sum() for m in validation or [])),
                       best.judgement.novelty, floor, best.restart, cfg.restarts)
