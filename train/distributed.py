"""A thin layer over torchrun's environment: one code path for 1 CPU, 1 GPU or many.

`torchrun --nproc_per_node N -m vid2vid train ...` sets RANK, WORLD_SIZE and
LOCAL_RANK; without them this is a world of one and every call is a no-op.
Gradients are averaged by torch's DistributedDataParallel, so the all-reduce
of each bucket overlaps the rest of backward. The generator is unrolled over
the frames of a clip, alternates image and video mode, freezes old levels and
leaves D_face unused on a rank whose clip shows no face, hence
`find_unused_parameters`; it also grows new levels, so the wrapper is rebuilt
at every stage change. Every rank starts from the same seed, so the weights
start and stay identical.
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
    cpu_group: object = None   # a gloo group for host-side flags (no GPU sync to agree)

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
    cpu_group = None
    if size > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        cpu_group = dist.new_group(backend="gloo") if dev.type == "cuda" else dist.group.WORLD
    return World(rank, size, local, dev, cpu_group)


def data_parallel(module: torch.nn.Module, world: World) -> torch.nn.Module:
    """`module` under DDP when there are several ranks, else `module` itself.

    Build it again whenever parameters are added or frozen: DDP fixes the set of
    parameters it averages when it is built.
    """
    if world.size == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    # device_ids None: the inputs are already on this rank's device. Buffers (the
    # spectral norms' power-iteration vectors) are broadcast from rank 0 at each
    # forward: D_face runs only on ranks with a face, so they would drift apart.
    return DistributedDataParallel(module, device_ids=None, find_unused_parameters=True,
                                   gradient_as_bucket_view=True)


def all_agree(flag: bool, world: World) -> bool:
    """True only if `flag` is true on every rank (so all ranks stop together). Over the
    CPU group: a host flag needs no GPU sync to be shared."""
    if world.size == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MIN, group=world.cpu_group)
    return bool(t.item() > 0)


def agree_on_device(ok: torch.Tensor, world: World) -> torch.Tensor:
    """`ok` (a device bool) and-ed over the ranks, without a host sync on CUDA."""
    if world.size == 1:
        return ok
    t = ok.float().reshape(1)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return t[0] > 0


def mean_over_ranks(values: dict[str, float], world: World) -> dict[str, float]:
    """Each value averaged over the ranks that have it (for logging: each rank saw other
    clips, and a term such as the face GAN exists only where a face was found)."""
    if world.size == 1:
        return values
    gathered: list[dict[str, float]] = [{} for _ in range(world.size)]
    dist.all_gather_object(gathered, values, group=world.cpu_group)
    keys = sorted({k for g in gathered for k in g})
    return {k: sum(g[k] for g in gathered if k in g) / sum(k in g for g in gathered)
            for k in keys}


def shutdown(world: World, finished: bool = True) -> None:
    """Leaves the process group. A finished run first waits for every rank: a rank that
    tears gloo down while a peer still uses its connection (rank 0 saving the last
    checkpoint) aborts it ("terminate called without an active exception"). A failed
    run does not wait: its peers may never arrive."""
    if world.size > 1 and dist.is_initialized():
        if finished:
            dist.barrier(group=world.cpu_group)
        dist.destroy_process_group()
