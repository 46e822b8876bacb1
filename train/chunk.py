"""The losses of one chunk of a clip: the computation the training loop steps on.

`chunk_losses` generates frames c0..c1-1 of a clip (appending them to `fakes`,
whose earlier entries are the clip's previous outputs) and returns the
generator's and the discriminators' loss terms. The training loop
(`train/trainer.py`) owns everything around it: autocast, backward, the
finiteness check, gradient averaging, optimiser and EMA steps. `vid2vid bench`
times the same function, so the benchmark measures exactly what trains.

Generator terms (weights in `TrainConfig.loss`): image GAN + feature
matching, temporal GAN per frame skip, part-crop GAN (the face of a body,
the mouth of a talking head: the task's `part_boxes`), VGG19 perceptual (L1
without VGG weights), flow L1 against the ground-truth flow weighted by how
well that flow explains the real frames, warp loss (real previous frame
warped by the predicted flow vs the real frame), occlusion-mask loss, and
the foreground mask against the person mask. The generator's terms are
computed with the discriminators frozen; the discriminators' on detached
outputs, so one backward of the sum gives each side only its own gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from vid2vid import losses
from vid2vid.config import TrainConfig
from vid2vid.crops import crop_and_resize
from vid2vid.generate import frame_window, map_window
from vid2vid.models import warp


@dataclass
class Networks:
    """What a training step runs: G (maybe compiled), the discriminators, VGG or None.

    `part_boxes` is the task's crop finder for D_face (`vid2vid.tasks`): keypoints
    [N, 137, 3] and (H, W) -> (boxes [N, 4], found [N]).
    """

    G_step: torch.nn.Module
    D_img: torch.nn.Module
    D_tmp: torch.nn.Module | None
    D_face: torch.nn.Module | None
    discriminators: torch.nn.ModuleList
    vgg: torch.nn.Module | None
    part_boxes: Callable | None = None


class Batch(NamedTuple):
    """One batch of clips on the device, `[B, T, C, H, W]` (keypoints stay on the CPU:
    face boxes are found there, without a device sync).

    maps_list holds maps[:, t] for each t in the networks' memory format.
    """

    maps: torch.Tensor
    maps_list: list[torch.Tensor]
    reals: torch.Tensor
    masks: torch.Tensor
    gt_flow: torch.Tensor
    flow_valid: torch.Tensor
    keypoints: torch.Tensor


def chunk_losses(cfg: TrainConfig, nets: Networks, batch: Batch, fakes: list[torch.Tensor],
                 c0: int, c1: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Generates frames c0..c1-1 into `fakes`; returns (G loss terms, D loss terms).

    Call it under the run's autocast. `fakes` must hold the clip's outputs
    0..c0-1 (detached: earlier chunks are inputs, not paths for gradients).
    """
    G_step, D_img, D_tmp, D_face = nets.G_step, nets.D_img, nets.D_tmp, nets.D_face
    discriminators, vgg = nets.discriminators, nets.vgg
    maps, maps_list, reals, masks = batch.maps, batch.maps_list, batch.reals, batch.masks
    gt_flow, flow_valid = batch.gt_flow, batch.flow_valid
    device = reals.device
    H, W = reals.shape[-2:]
    outs = []
    terms: dict[str, torch.Tensor] = {}
    # -- generate the chunk, frame by frame ------------------------------
    for t in range(c0, c1):
        prev = frame_window(fakes, t) if cfg.temporal else None
        out = G_step(map_window(maps_list, t), prev)
        fakes.append(out.image)
        outs.append(out)
    fake = torch.stack(fakes[c0:c1], 1)           # [B, n, 3, H, W]
    real = reals[:, c0:c1]
    m = maps[:, c0:c1]

    # -- generator losses (discriminators frozen) --------------------------
    discriminators.requires_grad_(False)
    d_real = D_img(m.flatten(0, 1), real.flatten(0, 1))
    d_fake = D_img(m.flatten(0, 1), fake.flatten(0, 1))
    terms["gan"] = cfg.loss.gan * losses.gan_g_loss(d_fake, cfg.gan_loss)
    terms["fm"] = cfg.loss.feature_matching * losses.feature_matching_loss(
        d_real, d_fake)
    if vgg is not None:
        terms["vgg"] = cfg.loss.perceptual * vgg(fake.flatten(0, 1),
                                                 real.flatten(0, 1))
    else:
        terms["l1"] = cfg.loss.l1 * losses.l1_loss(fake, real)
    fg = torch.stack([o.fg_mask for o in outs], 1)
    terms["fg"] = cfg.loss.fg_mask * losses.l1_loss(fg, masks[:, c0:c1])

    t_window = None
    if D_tmp is not None and c1 >= cfg.model.temporal_frames:
        span = (cfg.model.temporal_frames - 1) * max(cfg.model.temporal_skips)
        w0 = max(0, c0 - span)
        t_window = (w0, c1)
        t_flows = gt_flow[:, w0:c1]
        t_fake = D_tmp(torch.stack(fakes[w0:c1], 1), t_flows)
        for s in t_fake:
            terms[f"t{s}"] = cfg.loss.temporal_gan * losses.gan_g_loss(
                t_fake[s], cfg.gan_loss)

    face_crops = None
    if D_face is not None:
        # Boxes from the loader's CPU keypoints: no device sync to find faces.
        kp = batch.keypoints[:, c0:c1].flatten(0, 1)
        boxes, ok = nets.part_boxes(kp, (H, W))
        if ok.any():
            crop = max(16, H // 4 // 8 * 8)
            face_crops = (boxes[ok].to(device), ok.nonzero()[:, 0].to(device),
                          crop)
            fake_faces = crop_and_resize(fake.flatten(0, 1)[face_crops[1]],
                                         face_crops[0], crop)
            terms["face"] = cfg.loss.face_gan * losses.gan_g_loss(
                D_face(fake_faces), cfg.gan_loss)

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
            "flow": cfg.loss.flow * losses.flow_loss(o.flow, gt_flow[:, t], gt_conf),
            "warp": cfg.loss.warp * losses.warp_loss(real_prev, o.flow, real_t),
            "mask": cfg.loss.mask * losses.occlusion_mask_loss(o.mask, pred_conf),
        }
        for k, v in add.items():
            terms[k] = terms.get(k, 0) + v / (c1 - c0)

    # -- discriminator losses on the detached outputs ----------------------
    discriminators.requires_grad_(True)
    fake_d = fake.detach()
    d_terms = {"d_img": losses.gan_d_loss(
        D_img(m.flatten(0, 1), real.flatten(0, 1)),
        D_img(m.flatten(0, 1), fake_d.flatten(0, 1)), cfg.gan_loss)}
    if t_window is not None:
        w0, w1 = t_window
        t_flows = gt_flow[:, w0:w1]
        t_real = D_tmp(reals[:, w0:w1], t_flows)
        t_fake = D_tmp(torch.stack([f.detach() for f in fakes[w0:w1]], 1), t_flows)
        for s in t_fake:
            d_terms[f"d_t{s}"] = losses.gan_d_loss(t_real[s], t_fake[s],
                                                   cfg.gan_loss)
    if face_crops is not None:
        boxes_ok, idx, crop = face_crops
        real_faces = crop_and_resize(real.flatten(0, 1)[idx], boxes_ok, crop)
        fake_faces = crop_and_resize(fake_d.flatten(0, 1)[idx], boxes_ok, crop)
        d_terms["d_face"] = losses.gan_d_loss(D_face(real_faces), D_face(fake_faces),
                                              cfg.gan_loss)
    return terms, d_terms
