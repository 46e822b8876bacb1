"""The motion model's config: one frozen dataclass, saved inside motion.pt.

Times are in seconds everywhere (not frames), so one model samples any frame
rate and the 25 and 50 fps renders of a seed share their common instants.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal

from vid2vid.errors import UserError

TimeEmbedding = Literal["aligned", "sincos"]
TEMPERATURES = (0.1, 5.0)       # noise scales a model may be judged or sampled at
MINUTES_PER_TRAINING = 5.0      # the default budget: this times `restarts`


@dataclass(frozen=True)
class MotionConfig:
    # -- model ---------------------------------------------------------------------
    pose_dim: int = 50              # 25 joints x (x, y): root + offsets (dream.pose_frame)
    content_dim: int = 32           # one code per sequence (who/where, StyleGAN-V's w)
    noise_dim: int = 32             # motion noise per grid point
    code_dim: int = 64              # motion code u after the conv1d mapping
    grid_seconds: float = 0.64      # StyleGAN-V's delta_z: 16 frames at 25 fps
    kernel: int = 5                 # padding-free conv1d kernel (two layers)
    time_embedding: TimeEmbedding = "aligned"   # "sincos": the plain baseline
    frequencies: int = 32           # waves of the time embedding (x2 for sin/cos)
    min_period: float = 0.32        # seconds; periods spaced geometrically
    max_period: float = 20.48
    hidden: int = 256               # width of G's and D's MLPs
    layers: int = 4                 # G's hidden layers
    # -- training ------------------------------------------------------------------
    samples: int = 3                # sparse samples per clip seen by the sequence D
    max_span: float = 2.56          # seconds between a clip's first and last sample
    window: int = 0                 # consecutive frames seen by the window D (0: no window D)
    mbstd: int = 0                  # group size of the Ds' minibatch std feature (0: none)
    mirror: float = 0.0             # chance that D sees a clip mirrored, real and fake alike
    # Chance that a real clip takes each arm and leg from another moment (dream.augment):
    # G learns recombined moves. More novel dreams, worse Fréchet: off (RESULTS.md, "Dream").
    limb_swap: float = 0.0
    # Sampling: each arm and leg from its own far-off stretch of the dream (dream.model):
    # Fréchet 14.1 -> 11.6, novelty 0.053 -> 0.100 over seven trainings (RESULTS.md, "Dream").
    limb_streams: bool = True
    batch: int = 128
    lr: float = 2e-4
    # R1 penalty on real samples, both Ds: 3 over 0.1, 1 and 10 in five seeds (RESULTS.md,
    # "Dream"): 50 s of dance is little data, and a smoother D memorises it less.
    r1: float = 3.0
    pretrain: float = 0.15          # share of steps with the per-sample D only (StyleSV)
    ema: float = 0.995              # G_ema's decay (judged and saved); 0.999: worse, RESULTS.md
    max_time: float = 1200.0        # fake clips start anywhere in [0, max_time) s
    select_every: int = 500         # steps between snapshot judgements (dream.selection); 0: last
    # Noise scales the judge tries per snapshot; the pick is what dream samples at by default
    # (GAN motion comes out narrower than its data: RESULTS.md, "Dream", temperature judge).
    select_temperatures: tuple[float, ...] = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)
    # Share of each dataset's training frames, from their end, held back for the snapshot judge
    # (dream.selection): it then scores motion the model never saw. 0: judge on training windows.
    validation: float = 0.0
    # Judge only (snapshot, T) pairs at least as novel as the training motion is to itself
    # (dream.selection). Off: at R1 3 the picks already were, in 4 seeds of 5 (RESULTS.md).
    select_novel: bool = False
    # Independent trainings (seeds seed, seed + 1, ...) of which the judge keeps the best
    # snapshot; a budget in minutes is shared among them, --steps is each one's. 2: mean
    # Fréchet 11.4 against 13.2 for 1 over five seeds (RESULTS.md, "Dream", restarts).
    restarts: int = 2
    holdout: float = 0.2            # last share of each dataset left out (as vid2vid train)
    seed: int = 0

    def __post_init__(self):
        # YAML or --set may give a list or one number: the frozen config keeps a tuple.
        temps = self.select_temperatures
        temps = (temps,) if isinstance(temps, (int, float)) else temps
        object.__setattr__(self, "select_temperatures", tuple(float(t) for t in temps))
        checks = [
            (self.samples >= 2, "samples must be >= 2 (the sequence D sees gaps)"),
            (self.grid_seconds > 0 and self.max_span > 0, "grid_seconds and max_span must be > 0"),
            (0 < self.min_period < self.max_period, "need 0 < min_period < max_period"),
            (self.time_embedding in ("aligned", "sincos"),
             "time_embedding must be aligned or sincos"),
            (0.0 <= self.holdout < 1.0, "holdout must be in [0, 1)"),
            (0.0 <= self.validation < 1.0, "validation must be in [0, 1)"),
            (0.0 <= self.pretrain < 1.0, "pretrain must be in [0, 1)"),
            (0.0 <= self.ema < 1.0, "ema must be in [0, 1)"),
            (self.window == 0 or self.window >= 4, "window must be 0 (off) or >= 4 frames"),
            (0.0 <= self.mirror < 1.0, "mirror must be in [0, 1)"),
            (0.0 <= self.limb_swap <= 1.0, "limb_swap must be in [0, 1]"),
            (self.mbstd == 0 or self.mbstd >= 2, "mbstd must be 0 (off) or a group of >= 2"),
            (self.select_every >= 0, "select_every must be >= 0 (0: keep the last snapshot)"),
            (self.restarts >= 1 and (self.restarts == 1 or self.select_every > 0),
             "restarts must be >= 1, and more than 1 needs the judge (select_every > 0)"),
            (len(self.select_temperatures) >= 1
             and all(TEMPERATURES[0] <= t <= TEMPERATURES[1] for t in self.select_temperatures),
             "select_temperatures must be one or more noise scales in [{:g}, {:g}]".format(
                 *TEMPERATURES)),
            (self.kernel % 2 == 1 and self.kernel >= 3, "kernel must be odd and >= 3"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"motion config: {message}")

    @property
    def margin(self) -> int:
        """Noise points lost at each end by the two padding-free conv layers."""
        return self.kernel - 1

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "MotionConfig":
        known = {f.name for f in fields(MotionConfig)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"motion config: unknown keys {unknown} (a newer vid2vid wrote it?)")
        return MotionConfig(**d)
