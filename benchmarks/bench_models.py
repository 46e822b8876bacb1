"""Sizes and speed of the vid2vid networks, per model preset.

    python benchmarks/bench_models.py [--presets tiny,small,base] [--size 256] [--frames N]

For every preset: parameters of the generator (base level, and with one
enhancer level) and of the discriminators; FLOPs of one generator forward
pass per frame at --size x --size (torch.utils.flop_counter, convolutions and
matmuls only, 2 FLOPs per multiply-add) and the share of it spent in SPADE
modulation; generator forward frames/s on CPU, eager float32 vs bf16 autocast
+ channels_last, in the same run. "1 level" is the base generator run at
--size; "2 levels" is base at --size/2 plus one enhancer (what progressive
training reaches after one `grow()`). Frames are made in video mode (two
previous frames, flow and warp), batch 1, under inference_mode; frames/s
is taken from the median iteration time.

With a CUDA GPU it also measures batch --cuda-batch on the GPU: eager fp32,
eager bf16 + channels_last, and torch.compile of the latter, with the achieved
TFLOP/s against the card's dense bf16 peak.

Prints one markdown table per device, ready for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

from train.bench import bf16_peak_tflops, cpu_info  # noqa: E402  (one table of card peaks)
from vid2vid.config import ModelConfig  # noqa: E402
from vid2vid.models import (  # noqa: E402
    FaceDiscriminator,
    Generator,
    ImageDiscriminator,
    TemporalDiscriminator,
)

def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def make_inputs(batch: int, size: int, map_channels: int, device: torch.device):
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(batch, 3, map_channels, size, size, generator=g) * 2 - 1
    prev = torch.rand(batch, 2, 3, size, size, generator=g) * 2 - 1
    return maps.to(device), prev.to(device)


def count_flops(G: Generator, size: int, map_channels: int) -> tuple[int, int]:
    """(total FLOPs, FLOPs inside SPADE modules) of one frame."""
    from torch.utils.flop_counter import FlopCounterMode

    maps, prev = make_inputs(1, size, map_channels, torch.device("cpu"))
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        G(maps, prev)
    by_module = counter.get_flop_counts()
    spade = sum(sum(v.values()) for k, v in by_module.items() if k.endswith(".spade"))
    return counter.get_total_flops(), spade


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def frames_per_second(model, maps, prev, iters: int, autocast_bf16: bool, warmup: int = 3) -> float:
    device = maps.device
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if autocast_bf16 else nullcontext()
    with torch.inference_mode(), ctx:
        for _ in range(warmup):
            model(maps, prev)
        sync(device)
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            model(maps, prev)
            sync(device)
            times.append(time.perf_counter() - start)
    # The median iteration: robust to another process waking up on a 2-core box.
    return maps.shape[0] / statistics.median(times)


def build(cfg: ModelConfig, map_channels: int, levels: int, device, channels_last: bool):
    torch.manual_seed(0)
    G = Generator(cfg, map_channels=map_channels, levels=levels).to(device).eval()
    if channels_last:
        G = G.to(memory_format=torch.channels_last)
    return G


def cpu_cores() -> str:
    """The CPU as `vid2vid bench` names it, and its logical cores."""
    return f"{cpu_info()}, {os.cpu_count()} logical cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", default="tiny,small,base")
    ap.add_argument("--size", type=int, default=256, help="frame side in pixels")
    ap.add_argument("--frames", type=int, default=None,
                    help="timed frames per measurement (default: 30 tiny, 15 small, 8 base)")
    ap.add_argument("--map-channels", type=int, default=3)
    ap.add_argument("--cuda-batch", type=int, default=8)
    args = ap.parse_args()
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    default_frames = {"tiny": 30, "small": 15, "base": 8}
    size, mc = args.size, args.map_channels
    cpu = torch.device("cpu")

    print(f"torch {torch.__version__}; CPU: {cpu_cores()}")
    print(f"frame {size}x{size}, map_channels {mc}, video mode, batch 1 on CPU\n")
    rows = []
    for name in presets:
        cfg = ModelConfig.preset(name)
        iters = args.frames or default_frames.get(name, 10)
        row = {"preset": name}
        for levels in (1, 2):
            G = build(cfg, mc, levels, cpu, channels_last=False)
            row[f"params{levels}"] = n_params(G)
            flops, spade = count_flops(G, size, mc)
            row[f"flops{levels}"], row[f"spade{levels}"] = flops, spade
            maps, prev = make_inputs(1, size, mc, cpu)
            row[f"fp32_{levels}"] = frames_per_second(G, maps, prev, iters, autocast_bf16=False)
            G = G.to(memory_format=torch.channels_last)
            row[f"bf16_{levels}"] = frames_per_second(G, maps, prev, iters, autocast_bf16=True)
            print(f"{name} {levels} level(s): {row[f'params{levels}'] / 1e6:.2f} M params, "
                  f"{flops / 1e9:.2f} GFLOP/frame (SPADE {100 * spade / flops:.1f} %), "
                  f"CPU fp32 {row[f'fp32_{levels}']:.2f} fps, "
                  f"bf16+channels_last {row[f'bf16_{levels}']:.2f} fps", flush=True)
        row["d_image"] = n_params(ImageDiscriminator(cfg, mc))
        row["d_temporal"] = n_params(TemporalDiscriminator(cfg))
        row["d_face"] = n_params(FaceDiscriminator(cfg))
        rows.append(row)

    print(f"\nCPU ({cpu_cores()}), {size}x{size}, batch 1:\n")
    print("| preset | G params (1 level / 2 levels) | D params (image / temporal / face) "
          "| GFLOP per frame (1 / 2 levels) | SPADE share of FLOPs "
          "| CPU fp32 frames/s (1 / 2 levels) | CPU bf16 + channels_last frames/s (1 / 2 levels) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['params1'] / 1e6:.2f} M / {r['params2'] / 1e6:.2f} M "
              f"| {r['d_image'] / 1e6:.2f} M / {r['d_temporal'] / 1e6:.2f} M / "
              f"{r['d_face'] / 1e6:.2f} M "
              f"| {r['flops1'] / 1e9:.1f} / {r['flops2'] / 1e9:.1f} "
              f"| {100 * r['spade1'] / r['flops1']:.1f} % "
              f"| {r['fp32_1']:.2f} / {r['fp32_2']:.2f} | {r['bf16_1']:.2f} / {r['bf16_2']:.2f} |")

    if torch.cuda.is_available():
        bench_cuda(presets, rows, size, mc, args.cuda_batch)
    else:
        print("\nNo CUDA device: GPU measurements skipped.")


def bench_cuda(presets, rows, size: int, mc: int, batch: int,
               dev: torch.device = torch.device("cuda")) -> None:
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev)
    peak = bf16_peak_tflops(gpu)
    torch.backends.cudnn.benchmark = True
    print(f"\nCUDA: {gpu}; batch {batch}, {size}x{size}, 1 level; "
          f"bf16 dense peak {peak if peak else 'unknown'} TFLOP/s\n")
    print("| preset | eager fp32 frames/s | eager bf16+CL frames/s | compiled bf16+CL frames/s "
          "| achieved TFLOP/s (compiled) | % of bf16 peak |")
    print("|---|---|---|---|---|---|")
    for name, row in zip(presets, rows):
        cfg = ModelConfig.preset(name)
        maps, prev = make_inputs(batch, size, mc, dev)
        G = build(cfg, mc, 1, dev, channels_last=False)
        eager32 = frames_per_second(G, maps, prev, 20, autocast_bf16=False, warmup=3)
        G = G.to(memory_format=torch.channels_last)
        eager16 = frames_per_second(G, maps, prev, 20, autocast_bf16=True, warmup=3)
        compiled = torch.compile(G)
        comp16 = frames_per_second(compiled, maps, prev, 20, autocast_bf16=True, warmup=3)
        tflops = row["flops1"] * comp16 / 1e12
        share = f"{100 * tflops / peak:.1f} %" if peak else "n/a"
        print(f"| {name} | {eager32:.1f} | {eager16:.1f} | {comp16:.1f} | {tflops:.1f} | {share} |",
              flush=True)


if __name__ == "__main__":
    main()
