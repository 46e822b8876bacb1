"""Two trainings at once on one CPU: how much of its speed alone each one keeps.

    python benchmarks/bench_concurrent.py --data data/dancer [--preset small]
        [--size 64] [--frames 4] [--steps 12] [--workers -1] [--env KEY=VALUE]

Trains the preset alone through the real `vid2vid train` code path, then
two identical trainings started together, and prints each one's steps/s
(from its speed.json: time inside the steps) as a share of the lone run's.
`--env KEY=VALUE` (repeatable) sets a variable in the trainings' environment,
e.g. `GOMP_SPINCOUNT=1000` (how long torch's OpenMP threads spin before they
sleep) or `OMP_NUM_THREADS=1`. Run it with nothing else busy on the machine.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import RUN_ONE  # noqa: E402  (a sibling script, not a package)


def start(overrides: dict, run_dir: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUN_ONE, json.dumps(overrides), str(run_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)


def finish(proc: subprocess.Popen, run_dir: Path) -> float:
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"training failed:\n{err[-3000:]}")
    return json.loads((run_dir / "speed.json").read_text())["steps_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/dancer")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--workers", type=int, default=-1,
                        help="loader processes (-1: vid2vid train's default)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if not (Path(args.data) / "meta.json").exists():
        raise SystemExit(f"{args.data} is not a dataset; run vid2vid preprocess first")
    env = dict(os.environ)
    env.update(kv.split("=", 1) for kv in args.env)
    overrides = dict(data=[args.data], preset=args.preset, size=args.size, frames=args.frames,
                     steps=args.steps, device="cpu", workers=args.workers, sample_every=10**9)
    with tempfile.TemporaryDirectory() as tmp:
        alone = finish(start(overrides, Path(tmp) / "alone", env), Path(tmp) / "alone")
        runs = [Path(tmp) / f"pair-{i}" for i in range(2)]
        procs = [start(overrides, r, env) for r in runs]
        pair = [finish(p, r) for p, r in zip(procs, runs)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; preset {args.preset}, "
          f"{args.size} px, {args.frames} frames, {args.steps} steps; env {args.env or 'as is'}")
    print(f"alone: {alone:.3f} steps/s; two at once: " +
          ", ".join(f"{s:.3f} steps/s ({s / alone:.0%})" for s in pair))
    print(json.dumps({"alone": alone, "pair": pair, "env": args.env,
                      "share": [s / alone for s in pair]}))


if __name__ == "__main__":
    main()
