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
    fg trunk(f_s)    --fg decoder-----> h_fg, fg     (maps only)

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

Foreground mask. fg = sigmoid of a head on the foreground decoder, which sees
the maps only (map encoder -> fg trunk -> fg decoder), so it never depends on
a real or generated frame and exists at transfer time. It is learned; training
should supervise it with the dataset's person mask (`seg/`), e.g.
`losses.l1_loss(out.fg_mask, person_mask)`. The foreground image h_fg comes
from the same maps-only path; the background h_bg also sees the past frames.

Background plate (`ModelConfig.background_plate`). A fixed camera's background
is the same in every frame, but nothing in a pose map says what or where it
is, so without help the generator re-invents it every frame from the past
frames (streaks, slow drift). With the option on, the training video's still
background (`vid2vid.background`: the median of its training frames outside
the person) enters every level's map encoder as three more channels, resized
to that level's size. It is a buffer (`set_background`), so the checkpoint
carries it to evaluation and transfer.

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
from vid2vid.models.layers import ConvBlock, ResBlock, UpBlock, conv
from vid2vid.models.warp import warp

__all__ = ["Generator", "GeneratorOutput", "N_MAP_FRAMES", "N_PREV_FRAMES"]

N_MAP_FRAMES = 3  # maps of t-2, t-1, t
N_PREV_FRAMES = 2  # previous outputs t-2, t-1 (Markov order L = 2)
MIN_ENHANCER_CHANNELS = 8  # floor for the finest levels' width (ngf / 2**l) in small presets

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


@dataclass
class _LevelOut:
    """Pre-activation outputs and final features one level hands to the next."""

    image_logit: Tensor  # h_bg before tanh
    fg_image_logit: Tensor  # h_fg before tanh
    fg_logit: Tensor  # fg mask before sigmoid
    feat_image: Tensor
    feat_fg: Tensor
    flow: Optional[Tensor] = None  # pixels at this level's size
    mask_logit: Optional[Tensor] = None
    feat_flow: Optional[Tensor] = None


class _Encoder(nn.Module):
    """A stem conv at full size, then stride-2 blocks; returns every size's features."""

    def __init__(self, c_in: int, widths: Sequence[int], stem_kernel: int):
        super().__init__()
        self.stem = ConvBlock(c_in, widths[0], stem_kernel)
        self.down = nn.ModuleList(
            ConvBlock(widths[i], widths[i + 1], 3, stride=2) for i in range(len(widths) - 1)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = [self.stem(x)]
        for block in self.down:
            feats.append(block(feats[-1]))
        return feats


class _Decoder(nn.Module):
    """Up-blocks from widths[-1] back to widths[0], SPADE-conditioned on the map
    encoder's features of the same size."""

    def __init__(self, widths: Sequence[int]):
        super().__init__()
        self.ups = nn.ModuleList(
            UpBlock(widths[i + 1], widths[i], widths[i]) for i in reversed(range(len(widths) - 1))
        )

    def forward(self, x: Tensor, map_feats: Sequence[Tensor]) -> Tensor:
        for up, cond in zip(self.ups, reversed(map_feats[:-1])):
            x = up(x, cond)
        return x


class _Branch(nn.Module):
    """Enhancer branch: residual blocks at the coarse size, then one up-block."""

    def __init__(self, c_coarse: int, c_out: int, n_blocks: int):
        super().__init__()
        self.blocks = nn.Sequential(*[ResBlock(c_coarse) for _ in range(n_blocks)])
        self.up = UpBlock(c_coarse, c_out, c_out)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return self.up(self.blocks(x), cond)


def _map_inputs(cfg: ModelConfig, map_channels: int) -> int:
    """Input channels of a map encoder: three frames' maps, and the background plate."""
    return N_MAP_FRAMES * map_channels + (3 if cfg.background_plate else 0)


def _level_width(cfg: ModelConfig, index: int) -> int:
    if index == 0:
        return cfg.ngf
    return max(cfg.ngf // 2**index, MIN_ENHANCER_CHANNELS)


class _BaseLevel(nn.Module):
    def __init__(self, cfg: ModelConfig, map_channels: int):
        super().__init__()
        widths = [min(cfg.ngf * 2**i, cfg.max_channels) for i in range(cfg.n_downsample + 1)]
        bottleneck = widths[-1]
        self.map_encoder = _Encoder(_map_inputs(cfg, map_channels), widths, 7)
        self.past_encoder = _Encoder(N_PREV_FRAMES * 3, widths, 7)
        # Image mode: stands for the past encoder's output (DESIGN's "zeros + a
        # flag", without running an encoder on zeros).
        self.no_past = nn.Parameter(torch.zeros(1, bottleneck, 1, 1))
        # One trunk shared by the image and flow decoders (the 2018 code had a
        # separate copy per branch; sharing halves the bottleneck cost).
        self.trunk = nn.Sequential(*[ResBlock(bottleneck) for _ in range(cfg.n_blocks)])
        self.fg_trunk = nn.Sequential(*[ResBlock(bottleneck) for _ in range(cfg.n_fg_blocks)])
        self.image_decoder = _Decoder(widths)
        self.flow_decoder = _Decoder(widths)
        self.fg_decoder = _Decoder(widths)
        self.image_head = conv(widths[0], 3)
        self.fg_head = conv(widths[0], 3 + 1)  # h_fg, fg mask
        self.flow_head = conv(widths[0], 2 + 1)  # flow x, y, occlusion mask
        self.flow_scale = cfg.flow_multiplier

    def forward(
        self, maps: Tensor, past: Optional[Tensor], coarse: Optional[_LevelOut]
    ) -> _LevelOut:
        mf = self.map_encoder(maps)
        fx = self.past_encoder(past)[-1] if past is not None else self.no_past
        trunk = self.trunk(mf[-1] + fx)
        feat_image = self.image_decoder(trunk, mf)
        feat_fg = self.fg_decoder(self.fg_trunk(mf[-1]), mf)
        fg_image, fg_logit = self.fg_head(feat_fg).split([3, 1], dim=1)
        out = _LevelOut(self.image_head(feat_image), fg_image, fg_logit, feat_image, feat_fg)
        if past is not None:
            out.feat_flow = self.flow_decoder(trunk, mf)
            flow, out.mask_logit = _fp32_head(self.flow_head, out.feat_flow).split([2, 1], dim=1)
            out.flow = flow * self.flow_scale
        return out


def _fp32_head(head: nn.Conv2d, feat: Tensor) -> Tensor:
    """A flow head run in fp32 even under autocast: in bf16 a flow of 32-128 px is
    off by 0.25-0.5 px, and the flow, its upsampling and the warp build on it."""
    with torch.autocast(feat.device.type, enabled=False):
        return head(feat.float())


class _EnhancerLevel(nn.Module):
    def __init__(self, cfg: ModelConfig, map_channels: int, index: int):
        super().__init__()
        width, coarse = _level_width(cfg, index), _level_width(cfg, index - 1)
        self.map_encoder = _Encoder(_map_inputs(cfg, map_channels), [width, coarse], 3)
        self.past_encoder = _Encoder(N_PREV_FRAMES * 3, [width, coarse], 3)
        self.no_past = nn.Parameter(torch.zeros(1, coarse, 1, 1))
        n = cfg.n_enhancer_blocks
        self.image_branch = _Branch(coarse, width, n)
        self.flow_branch = _Branch(coarse, width, n)
        self.fg_branch = _Branch(coarse, width, n)
        self.image_head = conv(width, 3)
        self.fg_head = conv(width, 3 + 1)
        self.flow_head = conv(width, 2 + 1)
        for head in (self.image_head, self.fg_head, self.flow_head):
            # Zero residual at first: a freshly grown level outputs the
            # upsampled coarse prediction, so growing does not undo training.
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        # Same head value = same motion relative to the frame at every level.
        self.flow_scale = cfg.flow_multiplier * 2**index

    def forward(
        self, maps: Tensor, past: Optional[Tensor], coarse: Optional[_LevelOut]
    ) -> _LevelOut:
        assert coarse is not None, "an enhancer level needs the coarser level's output"
        mf = self.map_encoder(maps)
        fx = self.past_encoder(past)[-1] if past is not None else self.no_past
        feat_image = self.image_branch(mf[1] + fx + coarse.feat_image, mf[0])
        feat_fg = self.fg_branch(mf[1] + coarse.feat_fg, mf[0])
        d_fg_image, d_fg = self.fg_head(feat_fg).split([3, 1], dim=1)
        out = _LevelOut(
            image_logit=_up(coarse.image_logit) + self.image_head(feat_image),
            fg_image_logit=_up(coarse.fg_image_logit) + d_fg_image,
            fg_logit=_up(coarse.fg_logit) + d_fg,
            feat_image=feat_image,
            feat_fg=feat_fg,
        )
        if past is not None:
            assert coarse.flow is not None and coarse.mask_logit is not None
            assert coarse.feat_flow is not None
            out.feat_flow = self.flow_branch(mf[1] + fx + coarse.feat_flow, mf[0])
            d_flow, d_mask = _fp32_head(self.flow_head, out.feat_flow).split([2, 1], dim=1)
            out.flow = 2.0 * _up(coarse.flow) + d_flow * self.flow_scale
            out.mask_logit = _up(coarse.mask_logit) + d_mask
        return out


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


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

    Call: `G(maps, prev_frames)` -> `GeneratorOutput` for frame t.

    Image mode leaves the flow decoders unused and video mode leaves the
    `no_past` vectors unused, so under DDP pass `find_unused_parameters=True`
    when a step mixes or alternates the two.

    Shape:
        - maps: [B, 3, C, H, W], the maps of t-2, t-1, t in that order
        - prev_frames: [B, 2, 3, H, W] (outputs t-2, t-1, in [-1, 1]), None
          for image mode, or a list with one [B, 2, 3, H_l, W_l] per level
          (coarsest first; H_l = H / 2**(levels-1-l))
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
        self.levels = nn.ModuleList([_BaseLevel(cfg, map_channels)])
        for _ in range(levels - 1):
            self.grow()
        # The background plate (`cfg.background_plate`), [3, H, W] in [-1, 1] at the
        # run's final frame size; empty until `set_background`. A buffer, so that
        # checkpoints, G_ema and DDP carry it like the weights. Only with the option,
        # so checkpoints without it load as before.
        if cfg.background_plate:
            self.register_buffer("background", torch.zeros(3, 0, 0))

    def set_background(self, plate: Tensor) -> None:
        """The training video's still background, [3, H, W] in [-1, 1] (any size: each
        level reads it resized to its own)."""
        if not self.cfg.background_plate:
            raise ValueError("Generator: built without model.background_plate")
        if plate.dim() != 3 or plate.shape[0] != 3:
            raise ValueError(f"Generator: a background plate is [3, H, W], got "
                             f"{tuple(plate.shape)}")
        ref = self.levels[0].map_encoder.stem[0].weight
        self.background = plate.to(device=ref.device, dtype=torch.float32).contiguous()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The plate's size is the run's frame size, unknown at construction.
        saved = state_dict.get(prefix + "background")
        if (saved is not None and self.cfg.background_plate
                and saved.shape != self.background.shape):
            self.background = torch.empty_like(saved, device=self.background.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _plate(self, maps_flat: Tensor) -> Tensor:
        """The background plate at the maps' size and batch, [B, 3, H, W]."""
        if self.background.numel() == 0:
            raise ValueError("Generator: model.background_plate is on but no plate was set "
                             "(set_background)")
        b, _, h, w = maps_flat.shape
        plate = self.background
        if tuple(plate.shape[1:]) != (h, w):
            plate = F.interpolate(plate[None], size=(h, w), mode="bilinear",
                                  align_corners=False, antialias=True)[0]
        return _like(plate.to(maps_flat.dtype).expand(b, -1, -1, -1), maps_flat)

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
        new = _EnhancerLevel(self.cfg, self.map_channels, len(self.levels))
        new.to(device=ref.device, dtype=ref.dtype).train(self.training)
        if ref.is_contiguous(memory_format=torch.channels_last) and not ref.is_contiguous():
            new.to(memory_format=torch.channels_last)
        self.levels.append(new)
        return new

    def forward(self, maps: Tensor, prev_frames: PrevFrames = None) -> GeneratorOutput:
        n = len(self.levels)
        pasts = self._check_inputs(maps, prev_frames)
        maps_flat = maps.flatten(1, 2)  # [B, 3C, H, W], frames in temporal order
        if self.cfg.background_plate:
            maps_flat = torch.cat([maps_flat, self._plate(maps_flat)], dim=1)
        images: list[Tensor] = []
        level: Optional[_LevelOut] = None
        result: tuple = ()
        for i, module in enumerate(self.levels):
            past = pasts[i]
            level = module(
                _down(maps_flat, 2 ** (n - 1 - i)),
                None if past is None else past.flatten(1, 2),
                level,
            )
            result = self._compose(level, past, self.cfg.compose)
            images.append(result[0])
        image, hallucinated, fg_mask, mask, warped = result
        assert level is not None
        return GeneratorOutput(
            image=image, hallucinated=hallucinated, flow=level.flow, mask=mask,
            fg_mask=fg_mask, warped=warped, levels=tuple(images),
        )

    @staticmethod
    def _compose(level: _LevelOut, past: Optional[Tensor], mode: str = "inside") -> tuple:
        """(image, hallucinated, fg, mask, warped) of one level; `mode` is
        `ModelConfig.compose`. Image mode (no past) gives image = h in both."""
        # Composition in fp32 under autocast too (the logits come from bf16 convs).
        fg = torch.sigmoid(level.fg_logit.float())
        h_fg = torch.tanh(level.fg_image_logit.float())
        h_bg = torch.tanh(level.image_logit.float())
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
