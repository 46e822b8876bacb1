"""The vid2vid generator: Markov (L = 2), foreground/background, coarse-to-fine.

For output frame t the generator reads the semantic maps of t-2, t-1, t and
the two previous output frames x_{t-2}, x_{t-1}, and predicts

    h_t   hallucinated frame    h = fg * h_fg + (1 - fg) * h_bg
    w_t   backward flow t -> t-1, in pixels
    m_t   occlusion mask in [0, 1] (1 = hallucinate, 0 = copy the warped past)
    x_t = (1 - m_t) * warp(x_{t-1}, w_t) + m_t * h_t          (compose "inside")
    x_t = fg * h_fg + (1 - fg) * ((1 - m_t) * warp(x_{t-1}, w_t) + m_t * h_bg)
                                                              (compose "after")

`ModelConfig.compose` chooses where the foreground mask enters. "inside"
blends it into h, so where m is near 0 the person too is copied from the
previous frame (a ghost once it moves); "after" (vid2vid's order) lays the
hallucinated foreground over the warp blend, so the foreground never comes
from the past. Both use the same networks and weights.

Structure of one level (the base level; `grow()` adds enhancer levels):

    maps s_{t-2..t} --map encoder--> f_s (features at every size)
    frames x_{t-2..t-1} --past encoder--> f_x   (image mode: a learned vector)
    trunk(f_s + f_x) --image decoder--> h_bg
                     --flow decoder---> w, m         (video mode only)
    fg trunk(f_s)    --fg decoder-----> h_fg, fg     (maps only; + f_x with fg_past)

Conditioning. The maps enter by concatenation at the map encoder (as in the
2018 code) *and* by SPADE modulation in every decoder stage (as imaginaire
does), where gamma and beta come from the map encoder's own feature at that
size through one 1x1 conv. Why: pose skeletons are thin strokes that three
stride-2 encoder stages blur away; SPADE re-injects the layout at every
decoder size, which is why imaginaire replaced concatenation with it. Reusing
the map encoder's features as the SPADE condition avoids imaginaire's separate
label-embedding network; the cost is one 1x1 conv per decoder stage, 2*C^2
parameters for C output channels: 1-2 % of the parameters and 4-7 % of the
FLOPs of the presets (`benchmarks/bench_models.py` prints the FLOP share).

Foreground mask. fg = sigmoid of a head on the foreground decoder, which by
default sees the maps only (map encoder -> fg trunk -> fg decoder), so it never
depends on a real or generated frame and exists at transfer time. It is learned; training
should supervise it with the dataset's person mask (`seg/`), e.g.
`losses.l1_loss(out.fg_mask, person_mask)`. The foreground image h_fg comes
from the same maps-only path; the background h_bg also sees the past frames.
`ModelConfig.fg_past` adds the past encoder's features to the foreground
trunk's input too, so the person can follow the previous output's person
(in image mode the learned no-past vector stands in, as for the background).

Background plate (`ModelConfig.background_plate`). A fixed camera's background
is the same in every frame, but nothing in a pose map says what or where it
is, so without help the generator re-invents it every frame from the past
frames (streaks, slow drift). With the option on, the training video's still
background (`vid2vid.background`: the median of its training frames outside
the person) enters every level's map encoder as three more channels, resized
to that level's size. A run on several videos has one plate per video, and
`video` (per sample, the index of its training video) says which to read. It
is a buffer (`set_background`), so the checkpoint carries it to evaluation and
transfer.

First frames (image mode). `prev_frames=None` runs the same network without
the past-frame encoder (a learned vector stands for its features) and without
the flow decoder: image = hallucinated, and flow/mask are None. Suggested use:
frame 0 in image mode with maps (s_0, s_0, s_0); frame 1 with prev_frames
(x_0, x_0) and maps (s_0, s_0, s_1), so warping starts at frame 1.

Coarse-to-fine. `levels[0]` works at 1/2**(n-1) of the output size for n
levels. Enhancer level l has a one-downsampling map encoder and past encoder
of its own at its own size; each branch adds the coarser level's final
decoder features, runs residual blocks, upsamples once and predicts a
*residual* on the coarser level's (bilinearly upsampled) pre-activation
outputs; the flow is 2 * up(w_{l-1}) + head * flow_multiplier * 2**l. Its heads
start at zero, so right after `grow()` the new level reproduces the upsampled
coarse prediction and training continues from the trained weights. Every
level composes (and warps) its own frame at its own size from `prev_frames`
downsampled to that size, or from per-level histories if a list is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from vid2vid.config import ModelConfig
from vid2vid.models.levels import (N_MAP_FRAMES, N_PREV_FRAMES, BaseLevel,
                                   EnhancerLevel, LevelOut)
from vid2vid.models.warp import warp

__all__ = ["Generator", "GeneratorOutput", "N_MAP_FRAMES", "N_PREV_FRAMES"]


PrevFrames = Union[Tensor, Sequence[Tensor], None]


@dataclass
class GeneratorOutput:
    """What the generator returns for one output frame t (finest level).

    Attributes:
        image: x_t, the final frame in [-1, 1]. [B, 3, H, W]
        hallucinated: h_t = fg * h_fg + (1 - fg) * h_bg. [B, 3, H, W]
        flow: w_t, backward flow t -> t-1 in pixels at this size (channel 0 =
            x); None in image mode. [B, 2, H, W]
        mask: m_t in [0, 1], 1 = hallucinate; None in image mode. [B, 1, H, W]
        fg_mask: foreground mask in [0, 1], from the maps alone. [B, 1, H, W]
        warped: warp(prev_frames[:, -1], flow); None in image mode. [B, 3, H, W]
        levels: the final frame of every level, coarsest first (the last is
            `image`); feed them back as per-level `prev_frames` if wanted.
    """

    image: Tensor
    hallucinated: Tensor
    flow: Optional[Tensor]
    mask: Optional[Tensor]
    fg_mask: Tensor
    warped: Optional[Tensor]
    levels: tuple[Tensor, ...]


def _down(x: Tensor, factor: int) -> Tensor:
    """Area downsampling of [N, C, H, W] by an integer factor (the maps pyramid)."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


def _like(x: Tensor, ref: Tensor) -> Tensor:
    """`x` in `ref`'s memory format, so a channels_last model stays channels_last."""
    if ref.is_contiguous(memory_format=torch.channels_last) and not ref.is_contiguous():
        return x.contiguous(memory_format=torch.channels_last)
    return x


class Generator(nn.Module):
    """The vid2vid generator F (module docstring: structure and decisions).

    Args:
        cfg: network sizes (`ModelConfig.preset("small")`, ...).
        map_channels: C, channels of one frame's conditioning maps (e.g. 3 for
            an RGB skeleton; one-hot labels + instance edges for label maps).
            The generator does not know which task it serves.
        levels: number of levels to build (1 = base only); the same as calling
            `grow()` levels - 1 times. A checkpoint stores `cfg.to_dict()`,
            `map_channels` and `levels` (`len(G.levels)`) and rebuilds with
            `Generator(ModelConfig.from_dict(d), map_channels=C, levels=n)`.

    Call: `G(maps, prev_frames, video)` -> `GeneratorOutput` for frame t.

    Image mode leaves the flow decoders unused and video mode leaves the
    `no_past` vectors unused, so under DDP pass `find_unused_parameters=True`
    when a step mixes or alternates the two.

    Shape:
        - maps: [B, 3, C, H, W], the maps of t-2, t-1, t in that order
        - prev_frames: [B, 2, 3, H, W] (outputs t-2, t-1, in [-1, 1]), None
          for image mode, or a list with one [B, 2, 3, H_l, W_l] per level
          (coarsest first; H_l = H / 2**(levels-1-l))
        - video: [B] long, each sample's training video (the plate it reads);
          None reads plate 0 and needs a model with one plate. Unused without
          `cfg.background_plate`
        - H and W must be multiples of `G.size_multiple`
        - outputs: [B, 3|2|1, H, W] (see `GeneratorOutput`)
    """

    def __init__(self, cfg: ModelConfig, map_channels: int, levels: int = 1):
        super().__init__()
        if map_channels < 1:
            raise ValueError(f"Generator: map_channels must be >= 1, got {map_channels}")
        if levels < 1:
            raise ValueError(f"Generator: levels must be >= 1, got {levels}")
        self.cfg = cfg
        self.map_channels = map_channels
        self.levels = nn.ModuleList([BaseLevel(cfg, map_channels)])
        for _ in range(levels - 1):
            self.grow()
        # The background plates (`cfg.background_plate`), [V, 3, H, W] in [-1, 1]: one
        # per training video, at the run's final frame size; empty until
        # `set_background`. A buffer, so that checkpoints, G_ema and DDP carry them like
        # the weights. Only with the option, so checkpoints without it load as before.
        if cfg.background_plate:
            self.register_buffer("background", torch.zeros(0, 3, 0, 0))

    def set_background(self, plates: Tensor) -> None:
        """The training videos' still backgrounds, [V, 3, H, W] (or one, [3, H, W]) in
        [-1, 1], in the order of the videos' indices (any size: each level reads them
        resized to its own)."""
        if not self.cfg.background_plate:
            raise ValueError("Generator: built without model.background_plate")
        if plates.dim() == 3:
            plates = plates[None]
        if plates.dim() != 4 or plates.shape[1] != 3 or plates.shape[0] < 1:
            raise ValueError(f"Generator: background plates are [V, 3, H, W], got "
                             f"{tuple(plates.shape)}")
        ref = self.levels[0].map_encoder.stem[0].weight
        self.background = plates.to(device=ref.device, dtype=torch.float32).contiguous()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The plates' count and size are the run's, unknown at construction.
        key = prefix + "background"
        saved = state_dict.get(key)
        if saved is not None and self.cfg.background_plate:
            if saved.dim() == 3:           # saved before one plate per video: [3, H, W]
                state_dict[key] = saved = saved[None]
            if saved.shape != self.background.shape:
                self.background = torch.empty_like(saved, device=self.background.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def plates(self) -> int:
        """How many background plates G holds (0 without the option or before
        `set_background`)."""
        return self.background.shape[0] if self.cfg.background_plate else 0

    def _plate(self, maps_flat: Tensor, video: Optional[Tensor]) -> Tensor:
        """Each sample's background plate at the maps' size, [B, 3, H, W]."""
        count = self.background.shape[0]
        if count == 0:
            raise ValueError("Generator: model.background_plate is on but no plate was set "
                             "(set_background)")
        b, _, h, w = maps_flat.shape
        if video is None:
            if count != 1:
                raise ValueError(f"Generator: {count} background plates (one per training "
                                 "video); pass video=[B] indices")
            plate = self.background.expand(b, -1, -1, -1)
        else:
            plate = self.background.index_select(0, video.to(self.background.device).long())
        if tuple(plate.shape[-2:]) != (h, w):
            plate = F.interpolate(plate, size=(h, w), mode="bilinear", align_corners=False,
                                  antialias=True)
        return _like(plate.to(maps_flat.dtype), maps_flat)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (all downsamplings of all levels)."""
        return 2 ** (self.cfg.n_downsample + len(self.levels) - 1)

    def grow(self) -> nn.Module:
        """Add one enhancer level: the output size doubles, trained weights stay.

        The new level is created on the device, dtype and memory format of the
        existing weights and returned, so that the caller can give its
        parameters to the optimizer: `opt.add_param_group({"params":
        new.parameters()})` keeps the Adam moments of the old levels (a rebuilt
        optimizer would restart them); with one param group per level, an
        optimizer rebuilt on resume has the same groups as the saved state.
        Wrap in DDP only after growing; grow the EMA copy too and copy the new
        level into it (`ema.levels[-1].load_state_dict(new.state_dict())`).
        """
        ref = self.levels[0].map_encoder.stem[0].weight
        new = EnhancerLevel(self.cfg, self.map_channels, len(self.levels))
        new.to(device=ref.device, dtype=ref.dtype).train(self.training)
        if ref.is_contiguous(memory_format=torch.channels_last) and not ref.is_contiguous():
            new.to(memory_format=torch.channels_last)
        self.levels.append(new)
        return new

    def forward(self, maps: Tensor, prev_frames: PrevFrames = None,
                video: Optional[Tensor] = None) -> GeneratorOutput:
        n = len(self.levels)
        pasts = self._check_inputs(maps, prev_frames)
        maps_flat = maps.flatten(1, 2)  # [B, 3C, H, W], frames in temporal order
        if self.cfg.background_plate:
            maps_flat = torch.cat([maps_flat, self._plate(maps_flat, video)], dim=1)
        images: list[Tensor] = []
        level: Optional[LevelOut] = None
        result: tuple = ()
        for i, module in enumerate(self.levels):
            past = pasts[i]
            level_maps = _down(maps_flat, 2 ** (n - 1 - i))
            level = module(level_maps, None if past is None else past.flatten(1, 2), level)
            plate = level_maps[:, -3:] if self.cfg.plate_base else None
            result = self._compose(level, past, self.cfg.compose, plate)
            images.append(result[0])
        image, hallucinated, fg_mask, mask, warped = result
        assert level is not None
        return GeneratorOutput(
            image=image, hallucinated=hallucinated, flow=level.flow, mask=mask,
            fg_mask=fg_mask, warped=warped, levels=tuple(images),
        )

    @staticmethod
    def _compose(level: LevelOut, past: Optional[Tensor], mode: str = "inside",
                 plate: Optional[Tensor] = None) -> tuple:
        """(image, hallucinated, fg, mask, warped) of one level; `mode` is
        `ModelConfig.compose`, `plate` the level's background plate when h_bg is a
        residual over it (`ModelConfig.plate_base`). Image mode (no past) gives
        image = h in both."""
        # Composition in fp32 under autocast too (the logits come from bf16 convs).
        fg = torch.sigmoid(level.fg_logit.float())
        h_fg = torch.tanh(level.fg_image_logit.float())
        h_bg = torch.tanh(level.image_logit.float())
        if plate is not None:   # linear in the plate (ModelConfig.plate_base says why)
            h_bg = plate.float() + h_bg
            # Kept in [-1, 1] like every image (the next frame's input, the losses, D);
            # straight-through, so a pixel past the edge is still pulled back.
            h_bg = h_bg + (h_bg.clamp(-1, 1) - h_bg).detach()
        h = fg * h_fg + (1 - fg) * h_bg
        if past is None:
            return h, h, fg, None, None
        assert level.flow is not None and level.mask_logit is not None
        mask = torch.sigmoid(level.mask_logit)
        warped = _like(warp(past[:, -1], level.flow), h)
        if mode == "after":  # vid2vid: the foreground is laid over the warp blend
            image = fg * h_fg + (1 - fg) * ((1 - mask) * warped + mask * h_bg)
        else:
            image = (1 - mask) * warped + mask * h
        return image, h, fg, mask, warped

    def _check_inputs(self, maps: Tensor, prev_frames: PrevFrames) -> list[Optional[Tensor]]:
        """Validate shapes; return the past frames for every level (coarsest first)."""
        n = len(self.levels)
        c = self.map_channels
        if maps.dim() != 5 or maps.shape[1] != N_MAP_FRAMES or maps.shape[2] != c:
            raise ValueError(
                f"Generator: maps must be [B, {N_MAP_FRAMES}, {c}, H, W] (maps of t-2, t-1, t "
                f"with map_channels={c}), got {tuple(maps.shape)}"
            )
        b, _, _, h, w = maps.shape
        k = self.size_multiple
        if h % k or w % k:
            raise ValueError(
                f"Generator: H and W must be multiples of {k} for {n} level(s) and "
                f"n_downsample={self.cfg.n_downsample}, got {h}x{w}"
            )
        if prev_frames is None:
            return [None] * n
        if isinstance(prev_frames, Tensor):
            want = (b, N_PREV_FRAMES, 3, h, w)
            if tuple(prev_frames.shape) != want:
                raise ValueError(
                    f"Generator: prev_frames must be [B, {N_PREV_FRAMES}, 3, H, W] = {list(want)} "
                    f"(outputs t-2, t-1) or None, got {tuple(prev_frames.shape)}"
                )
            flat = prev_frames.flatten(0, 1)
            return [
                _down(flat, 2 ** (n - 1 - i)).unflatten(0, (b, N_PREV_FRAMES)) for i in range(n)
            ]
        pasts = list(prev_frames)
        if len(pasts) != n:
            raise ValueError(
                f"Generator: a list of prev_frames needs one entry per level ({n}), "
                f"got {len(pasts)}"
            )
        for i, p in enumerate(pasts):
            f = 2 ** (n - 1 - i)
            want = (b, N_PREV_FRAMES, 3, h // f, w // f)
            if tuple(p.shape) != want:
                raise ValueError(
                    f"Generator: prev_frames[{i}] (level {i}) must have shape {list(want)}, "
                    f"got {tuple(p.shape)}"
                )
        return pasts
