"""benchmarks/gpu_check.sh's summary: the steps' numbers into OUT/gpu_check.json, and a table.

    python benchmarks/gpu_check_summary.py WORK OUT MODE PRESET SIZE

The script calls it after every step (so a call cut short keeps what finished)
and once at the end, which prints the table; its exit status says whether
every step passed.
"""
import json
import re
import sys
from pathlib import Path

import yaml

work, out, mode, preset, size = Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:]
size = int(size)


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


steps = [json.loads(line) for line in (work / "steps.jsonl").read_text().splitlines()]
bench = read_json(work / "bench.json")
speed = read_json(work / "train" / "speed.json")
result = {"mode": mode, "env": read_json(work / "env.json"), "steps": steps,
          "bench": bench, "train": speed}
peak = (bench or {}).get("bf16_peak_tflops")
if speed and bench:
    # MFU: the model FLOPs the run did per second (bench's count for a training frame of
    # this preset, square at this height, scaled to the run's frame area) over the
    # card's dense bf16 peak.
    rows = [r for r in bench["rows"] if r["phase"] == "train" and r["preset"] == preset
            and r["size"] == size and r.get("flops_per_frame")]
    frame = (yaml.safe_load((work / "train" / "config.yaml").read_text()) or {}).get(
        "frame_size", [size, size])
    if rows:
        flops = rows[0]["flops_per_frame"] * frame[0] * frame[1] / size ** 2
        result["train_tflops_per_s"] = flops * speed["frames_per_s"] / 1e12
        if peak:
            result["train_mfu"] = result["train_tflops_per_s"] / peak
for kind in ("eager", "compiled"):
    path = work / f"transfer_{kind}.txt"
    text = path.read_text() if path.exists() else ""
    found = re.search(r"generated at ([0-9.]+) frames/s", text)
    if found:
        result[f"transfer_{kind}_frames_per_s"] = float(found.group(1))
(out / "gpu_check.json").write_text(json.dumps(result, indent=1))

print(f"\n{'step':18s} {'rc':>3s} {'seconds':>8s}")
for s in steps:
    print(f"{s['step']:18s} {s['rc']:3d} {s['seconds']:8.1f}")
env = result["env"] or {}
print(f"\ndevice: {env.get('device')}, torch {env.get('torch')}, cuda {env.get('cuda')}")
for row in (bench or {}).get("rows", []):
    share = f", {row['peak_fraction']:.1%} of bf16 peak" if row.get("peak_fraction") else ""
    rate = (f"{row['steps_per_s']:.3g} steps/s, " if "steps_per_s" in row else "")
    print(f"bench {row['phase']:9s} {row['preset']} {row['size']}px {row['variant']:28s} "
          f"{rate}{row['frames_per_s']:.4g} frames/s, "
          f"{row['peak_memory_bytes'] / 2**30:.2f} GiB{share}")
if speed:
    print(f"train {preset} {size}px: {speed['steps_per_s']:.3f} steps/s, "
          f"{speed['frames_per_s']:.1f} frames/s, peak {speed['peak_memory_bytes'] / 2**30:.2f} GiB"
          + (f", MFU {result['train_mfu']:.1%}" if "train_mfu" in result else ""))
for kind in ("eager", "compiled"):
    if f"transfer_{kind}_frames_per_s" in result:
        print(f"transfer {kind}: {result[f'transfer_{kind}_frames_per_s']:.1f} frames/s")
print(f"\nwritten: {out / 'gpu_check.json'}, {out / 'gpu_check.log'}")
sys.exit(0 if all(s["rc"] == 0 for s in steps) else 1)
