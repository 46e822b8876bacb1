"""A thin layer over torchrun's environment: one code path for 1 CPU, 1 GPU or many.

`torchrun --nproc_per_node N -m vid2vid train ...` sets RANK, WORLD_SIZE and
LOCAL_RANK; without them this is a world of one and every call is a no-op.
Gradients are averaged by an explicit all-reduce after each backward rather
than by wrapping the networks in DDP: the generator is unrolled over the
frames of a clip, alternates image and video mode (leaving different
parameters unused), grows new levels and freezes old ones, all of which DDP's
bucketing handles only with extra flags. Every rank starts from the same seed,
so the weights start and stay identical.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_world(device: str = "auto") -> World:
    """Joins the torchrun group if there is one; picks this rank's device."""
    rank = int(os.environ.get("RANK", 0))
    size = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            from vid2vid.errors import UserError

            raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU; "
                            "use --device cpu (or auto)")
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device(device)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return World(rank, size, local, dev)


def average_gradients(params, world: World) -> None:
    """All-reduce and average the gradients of `params` across ranks (flattened: one call)."""
    if world.size == 1:
        return
    params = [p for p in params if p.requires_grad]
    for p in params:  # a part unused on this rank (e.g. no face in its clip) still joins in
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def all_agree(flag: bool, world: World, device: torch.device) -> bool:
    """True only if `flag` is true on every rank (so all ranks skip a step together)."""
    if world.size == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item() > 0)




def shutdown(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
