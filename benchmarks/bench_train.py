"""Training speed and peak memory: eager fp32 vs bf16 autocast + channels_last.

    python benchmarks/bench_train.py [--data data/dancer] [--presets tiny,small]
        [--size 128] [--frames 4] [--steps 20] [--device cpu|cuda]

Each configuration trains in a fresh process (so its peak memory is its own)
through the real `vid2vid train` code path for `--steps` steps at one stage
(no progressive schedule), and reads the run's speed.json: steps/s and
frames/s inside the steps (data loading included, start-up and sample
writing excluded), and peak memory (process max RSS on CPU, max allocated on
CUDA).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

RUN_ONE = """
import sys, json
from pathlib import Path
from vid2vid.config import TrainConfig
from train.trainer import train
cfg = TrainConfig.resolve(json.loads(sys.argv[1]))
train(cfg, run_dir=Path(sys.argv[2]), progress=False)
"""


def measure(overrides: dict, run_dir: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", RUN_ONE, json.dumps(overrides), str(run_dir)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"training failed for {overrides}:\n{done.stderr[-3000:]}")
    return json.loads((run_dir / "speed.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/dancer")
    parser.add_argument("--presets", default="tiny,small")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if not (Path(args.data) / "meta.json").exists():
        raise SystemExit(f"{args.data} is not a dataset; run vid2vid preprocess first "
                         "(e.g. vid2vid preprocess ../shared/data/dancer.avi)")
    # channels_last applies on CUDA only (it slowed CPU training down in `vid2vid bench`)
    variants = [("eager fp32", {"precision": "fp32"}),
                ("bf16 autocast" + (" + channels_last" if args.device == "cuda" else ""),
                 {"precision": "bf16"})]
    if args.device == "cuda":
        variants.append(("bf16 + channels_last + compile",
                         {"precision": "bf16", "channels_last": True, "compile": True}))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; device {args.device}; "
          f"data {args.data}; {args.size} px, {args.frames} frames per clip, batch 1, "
          f"{args.steps} steps each")
    print(f"{'preset':<7} {'variant':<32} {'steps/s':>8} {'frames/s':>9} {'peak memory':>12}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets.split(","):
            base = None
            for name, extra in variants:
                overrides = dict(data=[args.data], preset=preset, size=args.size,
                                 frames=args.frames, steps=args.steps, device=args.device,
                                 workers=0 if args.device == "cpu" else -1, sample_every=10**9,
                                 **extra)
                r = measure(overrides, Path(tmp) / f"{preset}-{len(rows)}")
                base = base or r["steps_per_s"]
                rows.append({"preset": preset, "variant": name, **r})
                print(f"{preset:<7} {name:<32} {r['steps_per_s']:8.2f} {r['frames_per_s']:9.1f} "
                      f"{r['peak_memory_bytes'] / 2**20:9.0f} MiB   x{r['steps_per_s'] / base:.2f}",
                      flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
