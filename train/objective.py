"""The training objective: the networks a run trains, the losses of one chunk, the EMA.

`chunk_losses` generates frames c0..c1-1 of a clip (appending them to `fakes`,
whose earlier entries are the clip's previous outputs) and returns the
generator's and the discriminators' loss terms. The training loop
(`train/trainer.py`) owns everything around it: autocast, backward, the
finiteness check, gradient averaging and the optimiser steps. `vid2vid bench`
builds its networks with the same `build_networks`, times the same
`chunk_losses` and steps the same `ema_update`, so the benchmark measures
exactly what trains.

Generator terms (weights in `TrainConfig.loss`): image GAN + feature
matching, temporal GAN per frame skip, part-crop GAN (the face of a body,
the mouth of a talking head: the task's `part_boxes`), VGG perceptual (VGG19,
or HED's VGG16 with `loss.perceptual_net`; L1 without its weights), flow L1
against the ground-truth flow weighted by how well that flow explains the
real frames, warp loss (real previous frame warped by the predicted flow
vs the real frame), occlusion-mask loss, and the foreground mask against
the person mask. Options closer to vid2vid,
off by default (`LossWeights` documents each): temporal consistency of the
generated frames (`warp_gen`), the warp loss weighted by the gt flow's
confidence, the image losses on the hallucinated image h (`h_*`, and D_img
learning h as a fake: `d_img_h`), feature matching summed over layers and
for the temporal and face Ds (`t{s}_fm`, `face_fm`), and temporal-D groups
that end inside the chunk. The generator's terms are computed with the
discriminators frozen; the discriminators' on detached outputs, so one
backward of the sum gives each side only its own gradients. D_img runs once
on the real frames: its features serve feature matching (detached there) and
its logits the discriminator's loss.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch

from vid2vid import losses
from vid2vid.config import TrainConfig
from vid2vid.crops import crop_and_resize
from vid2vid.generate import frame_window, map_window
from vid2vid.models import (DiscriminatorOutput, FaceDiscriminator, Generator, ImageDiscriminator,
                            TemporalDiscriminator, warp)


@dataclass
class Networks:
    """What a training step runs: G (maybe compiled), the discriminators, VGG or None."""

    G_step: torch.nn.Module
    D_img: torch.nn.Module
    D_tmp: torch.nn.Module | None
    D_face: torch.nn.Module | None
    discriminators: torch.nn.ModuleList
    vgg: torch.nn.Module | None


@dataclass
class TrainingNetworks:
    """A run's networks and optimisers, as `build_networks` makes them."""

    G: Generator
    D_img: ImageDiscriminator
    D_tmp: TemporalDiscriminator | None
    D_face: FaceDiscriminator | None
    discriminators: torch.nn.ModuleList   # the Ds that exist, in that order (one optimiser)
    G_ema: Generator
    opt_G: torch.optim.Adam
    opt_D: torch.optim.Adam
    vgg: losses.VGGPerceptualLoss | None
    notes: list[str]                      # why the perceptual loss fell back (no weights: L1)

    def for_step(self, compile_: bool) -> Networks:
        """What `chunk_losses` runs: G (torch.compile'd when asked), the Ds and VGG."""
        G_step = torch.compile(self.G) if compile_ else self.G
        return Networks(G_step, self.D_img, self.D_tmp, self.D_face, self.discriminators,
                        self.vgg)


def build_networks(cfg: TrainConfig, map_channels: int, levels: int, part: bool,
                   device: torch.device, memory_format: torch.memory_format,
                   grow_to: int = 0) -> TrainingNetworks:
    """G with `levels` levels, the discriminators (D_face when `part`), G_ema, both Adams
    and the perceptual loss of `cfg.loss.perceptual_net` (None without its weights), on
    `device`.

    Seeds torch with `cfg.seed` first, so every rank builds the same initial weights.
    `grow_to`: G grows to that many levels before anything moves (a resumed run: its
    checkpoint's levels). The order of construction fixes the random initial weights,
    and a resumed run loads its state into an optimiser of the same param groups, so
    it must stay as it is for resumed runs to match uninterrupted ones bit for bit.
    """
    torch.manual_seed(cfg.seed)
    G = Generator(cfg.model, map_channels, levels=levels)
    D_img = ImageDiscriminator(cfg.model, map_channels)
    D_tmp = TemporalDiscriminator(cfg.model) if cfg.temporal else None
    D_face = FaceDiscriminator(cfg.model) if part else None
    discriminators = torch.nn.ModuleList([d for d in (D_img, D_tmp, D_face) if d is not None])
    while len(G.levels) < grow_to:
        G.grow()
    G.to(device, memory_format=memory_format)
    discriminators.to(device, memory_format=memory_format)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    # Fused: one kernel per step, and it takes a device-side found_inf flag, so a
    # non-finite step is skipped without a host sync (train.trainer).
    adam = dict(betas=(cfg.beta1, cfg.beta2), fused=True)
    # One param group per level, so growing adds a group and a resumed run rebuilds the same.
    opt_G = torch.optim.Adam([{"params": list(level.parameters())} for level in G.levels],
                             lr=cfg.lr_g, **adam)
    opt_D = torch.optim.Adam(discriminators.parameters(), lr=cfg.lr_d, **adam)
    # Notes, not the once-only warnings: a budget calibration builds these networks
    # first, and the trainer must still say which loss it fell back to.
    notes: list[str] = []
    vgg = losses.perceptual_loss(cfg.loss.perceptual_net, notes)
    if vgg is not None:
        vgg.to(device)
    return TrainingNetworks(G, D_img, D_tmp, D_face, discriminators, G_ema, opt_G, opt_D, vgg,
                            notes)


def ema_update(G_ema: torch.nn.Module, G: torch.nn.Module, ema_updates: int,
               ema: float, ok: torch.Tensor | None = None) -> None:
    """Moves G_ema towards G; `ema_updates` counts the updates, this one included.

    With a warm-up (decay (1 + n) / (10 + n) until it reaches `ema`), so short runs
    do not sample from the initial weights. Buffers are copied as they are.
    `ok`: a device bool; where it is false (a skipped step) G_ema stays as it is,
    decided on the device.
    """
    beta = min(ema, (1 + ema_updates) / (10 + ema_updates))
    ema_params = list(G_ema.parameters())
    params = [p.detach() for p in G.parameters()]
    with torch.no_grad():
        if ok is None:
            torch._foreach_lerp_(ema_params, params, 1 - beta)
        else:
            step = torch._foreach_sub(params, ema_params)
            torch._foreach_mul_(step, ok.float() * (1 - beta))
            torch._foreach_add_(ema_params, step)
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)


def optimizer_steps(ok: torch.Tensor, scaler: torch.amp.GradScaler,
                     *optimizers: torch.optim.Optimizer) -> None:
    """Steps the (fused) Adams where the device bool `ok` holds, else leaves their
    parameters, moments and step counts as they were, without reading `ok` on the
    host: fused Adam takes GradScaler's `found_inf` tensor and skips on the device."""
    if scaler.is_enabled():
        # fp16: the scaler finds non-finite gradients itself (and backs off); a
        # non-finite loss with finite gradients is made into one for it.
        poison = torch.where(ok, 1.0, float("nan"))
        for opt in optimizers:
            grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
            if grads:
                torch._foreach_mul_(grads, poison)
            scaler.step(opt)
        scaler.update()
        return
    found_inf = (~ok).float()
    for opt in optimizers:
        opt.found_inf = found_inf
        try:
            opt.step()
        finally:
            del opt.found_inf   # a later plain step() must not skip on a stale flag


def all_finite(loss: torch.Tensor, *modules: torch.nn.Module) -> torch.Tensor:
    """A device-side bool: the loss and every gradient of `modules` are finite."""
    grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
    if not grads:
        return torch.isfinite(loss)
    norms = torch.stack(torch._foreach_norm(grads)).float()   # one fused pass, not one per tensor
    return torch.isfinite(loss) & torch.isfinite(norms).all()


class Batch(NamedTuple):
    """One batch of clips on the device, `[B, T, C, H, W]`.

    maps_list holds maps[:, t] for each t in the networks' memory format.
    part_boxes [B, T, 4] are D_face's crops (on the device) and part_found
    [B, T] which of them exist, on the CPU, so that the step decides what to
    crop without a device sync (both from the loader: `vid2vid.data.Clip`).
    video [B] (long, on the device): each clip's training video, the background
    plate G reads (None: a model with at most one plate).
    """

    maps: torch.Tensor
    maps_list: list[torch.Tensor]
    reals: torch.Tensor
    masks: torch.Tensor
    gt_flow: torch.Tensor
    flow_valid: torch.Tensor
    part_boxes: torch.Tensor
    part_found: torch.Tensor
    video: Optional[torch.Tensor] = None


class ChunkObjective(torch.nn.Module):
    """G and the Ds as one module whose forward is `chunk_losses`: what DDP wraps
    (`train.distributed.data_parallel`), so that it sees every parameter a chunk's
    backward reaches, whichever networks that chunk used."""

    def __init__(self, G: torch.nn.Module, discriminators: torch.nn.ModuleList):
        super().__init__()
        self.G, self.discriminators = G, discriminators

    def forward(self, cfg: TrainConfig, nets: Networks, batch: Batch,
                fakes: list[torch.Tensor], c0: int, c1: int):
        return chunk_losses(cfg, nets, batch, fakes, c0, c1)


def temporal_windows(cfg: TrainConfig, c0: int, c1: int) -> list[tuple[int, tuple[int, ...]]]:
    """(first frame, frame skips) of each temporal-D call for the chunk c0..c1-1.

    "extended" (`loss.temporal_window`): one call on the frames from (K-1) *
    max(skips) before the chunk on, every group of every skip in it, so for
    the small skips some groups lie wholly in earlier (detached) chunks.
    "chunk": one call per skip s on the frames from (K-1) * s before the
    chunk on, so that every group ends inside the chunk (vid2vid's choice).
    """
    k, skips = cfg.model.temporal_frames, tuple(cfg.model.temporal_skips)
    if cfg.loss.temporal_window == "extended":
        return [(max(0, c0 - (k - 1) * max(skips)), skips)] if c1 >= k else []
    windows = []
    for s in skips:
        w0 = max(0, c0 - (k - 1) * s)
        if c1 - w0 > (k - 1) * s:  # at least one group fits
            windows.append((w0, (s,)))
    return windows


def _select_frames(d: DiscriminatorOutput, b: int, n: int,
                   keep: slice) -> DiscriminatorOutput:
    """The rows of frames `keep` of a D output on [B * n] frames (b-major)."""
    def pick(x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(0, (b, n))[:, keep].flatten(0, 1)
    return DiscriminatorOutput([pick(lo) for lo in d.logits],
                               [[pick(f) for f in fs] for fs in d.features])


def chunk_losses(cfg: TrainConfig, nets: Networks, batch: Batch, fakes: list[torch.Tensor],
                 c0: int, c1: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Generates frames c0..c1-1 into `fakes`; returns (G loss terms, D loss terms).

    Call it under the run's autocast. `fakes` must hold the clip's outputs
    0..c0-1 (detached: earlier chunks are inputs, not paths for gradients).
    A term whose weight is 0 is left out of the result.
    """
    G_step, D_img, D_tmp, D_face = nets.G_step, nets.D_img, nets.D_tmp, nets.D_face
    discriminators, vgg = nets.discriminators, nets.vgg
    maps, maps_list, reals, masks = batch.maps, batch.maps_list, batch.reals, batch.masks
    gt_flow, flow_valid = batch.gt_flow, batch.flow_valid
    lw = cfg.loss
    device = reals.device
    B, H, W = reals.shape[0], *reals.shape[-2:]
    n = c1 - c0
    outs = []
    terms: dict[str, torch.Tensor] = {}
    # -- generate the chunk, frame by frame ------------------------------
    for t in range(c0, c1):
        prev = frame_window(fakes, t) if cfg.temporal else None
        out = G_step(map_window(maps_list, t), prev, batch.video)
        fakes.append(out.image)
        outs.append(out)
    fake = torch.stack(fakes[c0:c1], 1)           # [B, n, 3, H, W]
    real = reals[:, c0:c1]
    m = maps[:, c0:c1]
    # Frames generated in video mode, where h differs from the output (losses on h).
    # They are the chunk's frames from some index on (a clip's frame 0 is image mode): a
    # slice, since indexing with a list would copy the indices to the device, blocking.
    first = next((i for i, o in enumerate(outs) if o.mask is not None), n)
    video = slice(first, n)
    use_h = first < n and (lw.hallucinated > 0 or lw.hallucinated_gan > 0)

    # D_img on the real frames, once: its features are the feature-matching
    # targets (detached there) and its logits the discriminator's real term.
    discriminators.requires_grad_(True)
    d_real = D_img(m.flatten(0, 1), real.flatten(0, 1))

    # -- generator losses (discriminators frozen) --------------------------
    discriminators.requires_grad_(False)
    d_fake = D_img(m.flatten(0, 1), fake.flatten(0, 1))
    terms["gan"] = lw.gan * losses.gan_g_loss(d_fake, cfg.gan_loss)
    terms["fm"] = lw.feature_matching * losses.feature_matching_loss(
        d_real, d_fake, lw.fm_sum)
    if vgg is not None:
        terms["vgg"] = lw.perceptual * vgg(fake.flatten(0, 1),
                                           real.flatten(0, 1))
    else:
        terms["l1"] = lw.l1 * losses.l1_loss(fake, real)
    if lw.person_l1 > 0:
        # Its mean over the mask: the person is a small share of the frame's L1.
        terms["l1_person"] = lw.person_l1 * losses.l1_loss(fake, real, masks[:, c0:c1])
    if lw.motion_l1 > 0:
        moved = losses.motion_mask(reals)[:, c0:c1]
        terms["l1_motion"] = lw.motion_l1 * losses.l1_loss(fake, real, moved)
    fg = torch.stack([o.fg_mask for o in outs], 1)
    terms["fg"] = lw.fg_mask * losses.l1_loss(fg, masks[:, c0:c1])

    # vid2vid's losses on the hallucinated image h itself (its fake_B_raw).
    h_frames = h_maps = d_real_h = None
    if use_h:
        h_frames = torch.stack([o.hallucinated for o in outs[video]], 1).flatten(0, 1)
        h_real = real[:, video].flatten(0, 1)
        h_maps = m[:, video].flatten(0, 1)
        if lw.hallucinated > 0:
            if vgg is not None:
                terms["h_vgg"] = lw.hallucinated * lw.perceptual * vgg(h_frames, h_real)
            else:
                terms["h_l1"] = lw.hallucinated * lw.l1 * losses.l1_loss(h_frames, h_real)
        if lw.hallucinated_gan > 0:
            d_real_h = d_real if first == 0 else _select_frames(d_real, B, n, video)
            d_fake_h = D_img(h_maps, h_frames)
            terms["h_gan"] = lw.hallucinated_gan * lw.gan * losses.gan_g_loss(
                d_fake_h, cfg.gan_loss)
            terms["h_fm"] = lw.hallucinated_gan * lw.feature_matching * \
                losses.feature_matching_loss(d_real_h, d_fake_h, lw.fm_sum)

    t_windows = temporal_windows(cfg, c0, c1) if D_tmp is not None else []
    t_fake: dict[int, DiscriminatorOutput] = {}
    for w0, skips in t_windows:
        t_fake.update(D_tmp(torch.stack(fakes[w0:c1], 1), gt_flow[:, w0:c1], skips))
    for s in t_fake:
        terms[f"t{s}"] = lw.temporal_gan * losses.gan_g_loss(t_fake[s], cfg.gan_loss)

    face_crops = face_fake = None
    if D_face is not None:
        # Which frames have a face is known on the CPU: no device sync to decide.
        found = batch.part_found[:, c0:c1].flatten(0, 1)
        if found.any():
            crop = max(16, H // 4 // 8 * 8)
            idx = found.nonzero()[:, 0]
            if device.type == "cuda":
                idx = idx.pin_memory()   # a pageable copy would wait for the GPU
            idx = idx.to(device, non_blocking=True)
            face_crops = (batch.part_boxes[:, c0:c1].flatten(0, 1)[idx], idx, crop)
            fake_faces = crop_and_resize(fake.flatten(0, 1)[face_crops[1]],
                                         face_crops[0], crop)
            face_fake = D_face(fake_faces)
            terms["face"] = lw.face_gan * losses.gan_g_loss(face_fake, cfg.gan_loss)

    for i, t in enumerate(range(c0, c1)):
        o = outs[i]
        if o.flow is None:
            continue
        real_prev, real_t = reals[:, t - 1], reals[:, t]
        valid = flow_valid[:, t]
        gt_conf = valid * losses.flow_confidence(
            warp(real_prev, gt_flow[:, t]), real_t)
        pred_conf = losses.flow_confidence(
            warp(real_prev, o.flow.detach()), real_t)
        add = {
            "flow": lw.flow * losses.flow_loss(o.flow, gt_flow[:, t], gt_conf),
            "warp": lw.warp * losses.warp_loss(real_prev, o.flow, real_t,
                                               gt_conf if lw.warp_masked else None),
            "mask": lw.mask * losses.occlusion_mask_loss(o.mask, pred_conf),
        }
        if lw.warp_generated > 0:
            # vid2vid's G_Warp: the output against its own previous frame moved
            # by the real motion (that frame a detached target, as in vid2vid).
            add["warp_gen"] = lw.warp_generated * losses.temporal_consistency_loss(
                o.image, fakes[t - 1], gt_flow[:, t], gt_conf)
        for k, v in add.items():
            terms[k] = terms.get(k, 0) + v / n

    # -- discriminator losses on the detached outputs ----------------------
    discriminators.requires_grad_(True)
    fake_d = fake.detach()
    d_terms = {"d_img": losses.gan_d_loss(
        d_real, D_img(m.flatten(0, 1), fake_d.flatten(0, 1)), cfg.gan_loss)}
    if d_real_h is not None:
        # As vid2vid: D_img learns h as a fake too (its real term counted again).
        d_terms["d_img_h"] = losses.gan_d_loss(
            d_real_h, D_img(h_maps, h_frames.detach()), cfg.gan_loss)
    for w0, skips in t_windows:
        t_flows = gt_flow[:, w0:c1]
        t_real = D_tmp(reals[:, w0:c1], t_flows, skips)
        t_fake_d = D_tmp(torch.stack([f.detach() for f in fakes[w0:c1]], 1), t_flows, skips)
        for s in t_fake_d:
            d_terms[f"d_t{s}"] = losses.gan_d_loss(t_real[s], t_fake_d[s], cfg.gan_loss)
            if lw.temporal_feature_matching > 0:
                # G side: t_fake[s] came from the frozen D; the real features are detached.
                terms[f"t{s}_fm"] = lw.temporal_feature_matching * \
                    losses.feature_matching_loss(t_real[s], t_fake[s], lw.fm_sum)
    if face_crops is not None:
        boxes_ok, idx, crop = face_crops
        real_faces = crop_and_resize(real.flatten(0, 1)[idx], boxes_ok, crop)
        fake_faces = crop_and_resize(fake_d.flatten(0, 1)[idx], boxes_ok, crop)
        face_real = D_face(real_faces)
        d_terms["d_face"] = losses.gan_d_loss(face_real, D_face(fake_faces), cfg.gan_loss)
        if lw.face_feature_matching > 0:
            terms["face_fm"] = lw.face_feature_matching * losses.feature_matching_loss(
                face_real, face_fake, lw.fm_sum)
    return terms, d_terms
