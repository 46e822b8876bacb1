"""What only a CUDA GPU can show: layouts and dtypes under bf16, a training chunk
without host syncs, and a short run. Marked `cuda`; skipped without a GPU.
`benchmarks/gpu_check.sh` runs them (`pytest -m cuda tests/test_cuda.py`)."""

import json

import pytest
import torch

from tests.helpers_video import make_synthetic_dataset
from train.bench import synthetic_clip
from train.objective import (Batch, all_finite, build_networks, chunk_losses, ema_update,
                             optimizer_steps)
from train.trainer import train
from vid2vid.checkpoint import load_checkpoint
from vid2vid.config import ModelConfig, TrainConfig
from vid2vid.data import MAP_CHANNELS
from vid2vid.models import Generator
from vid2vid.models.layers import InstanceNorm

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
CUDA = torch.device("cuda")


def test_instance_norm_keeps_channels_last_and_bf16_and_matches_group_norm():
    torch.manual_seed(0)
    ours = InstanceNorm(16).to(CUDA)
    torch.nn.init.normal_(ours.weight)
    reference = torch.nn.GroupNorm(16, 16).to(CUDA)
    reference.load_state_dict(ours.state_dict())
    x = (torch.randn(2, 16, 32, 32, device=CUDA) * 3 + 1).contiguous(
        memory_format=torch.channels_last)
    torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-4)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        low = ours(x.bfloat16())
    assert low.dtype == torch.bfloat16 and low.is_contiguous(memory_format=torch.channels_last)
    assert (low.float() - reference(x)).abs().max() < 0.06


def test_flow_and_composition_stay_fp32_under_cuda_bf16():
    torch.manual_seed(0)
    G = Generator(ModelConfig.preset("tiny"), MAP_CHANNELS, levels=2).to(
        CUDA, memory_format=torch.channels_last)
    maps = torch.rand(2, 3, MAP_CHANNELS, 64, 64, device=CUDA)
    prev = torch.rand(2, 2, 3, 64, 64, device=CUDA) * 2 - 1
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = G(maps, prev)
    for t in (out.flow, out.mask, out.image, out.hallucinated, out.fg_mask, out.warped):
        assert t.dtype == torch.float32 and torch.isfinite(t).all()


def test_a_training_chunk_makes_no_host_sync():
    cfg = TrainConfig.resolve({"preset": "tiny", "size": 64, "frames": 4, "bptt": 4,
                               "batch_size": 2, "device": "cuda"})
    built = build_networks(cfg, MAP_CHANNELS, 1, True, CUDA, torch.channels_last)
    nets = built.for_step(False)
    clip = synthetic_clip(2, 4, 64, MAP_CHANNELS, CUDA)
    maps_list = [clip["maps"][:, t].contiguous(memory_format=torch.channels_last)
                 for t in range(4)]
    batch = Batch(clip["maps"], maps_list, clip["frames"], clip["masks"], clip["flow"],
                  clip["flow_valid"], clip["part_boxes"], clip["part_found"])
    assert bool(batch.part_found.any()), "the synthetic head should give D_face a crop"
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    updates = [0]

    def chunk():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            terms, d_terms = chunk_losses(cfg, nets, batch, [], 0, 4)
        total = sum(terms.values()) + sum(d_terms.values())
        built.opt_G.zero_grad(set_to_none=True)
        built.opt_D.zero_grad(set_to_none=True)
        total.backward()
        ok = all_finite(total.detach(), built.G, built.discriminators)
        optimizer_steps(ok, scaler, built.opt_G, built.opt_D)
        updates[0] += 1
        ema_update(built.G_ema, built.G, updates[0], cfg.ema, ok)
        return ok

    chunk()   # first: cuDNN and cuBLAS handles, lazy module state
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        ok = chunk()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert bool(ok)


def test_a_short_bf16_run_on_the_gpu(tmp_path):
    figure = make_synthetic_dataset(tmp_path / "data", n=40, w=64, h=64)
    cfg = TrainConfig(data=(str(figure),), preset="tiny", model=ModelConfig.preset("tiny"),
                      size=64, frames=4, bptt=2, steps=6, batch_size=2, workers=1,
                      log_every=3, sample_every=100, device="cuda")
    run = train(cfg, run_dir=tmp_path / "run", progress=False)
    speed = json.loads((run / "speed.json").read_text())
    assert speed["device"].startswith("cuda") and speed["precision"] == "torch.bfloat16"
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == 6 and ckpt["nonfinite"] == 0
    assert all(torch.isfinite(t).all() for t in ckpt["G"].values() if t.is_floating_point())
