"""`vid2vid bench`'s numbers derived from the measurements, and its markdown table.

`derive` adds to each row of `train.bench.run_bench` its speed-up over the
eager fp32 row of the same preset, size and phase, and the FLOP rate
achieved; `format_table` prints the rows as benchmarks/RESULTS.md has them.
"""

from __future__ import annotations

import math


def derive(row: dict, reference: dict | None, peak: float | None) -> None:
    """Speed-up against the fp32 row; achieved TFLOP/s and share of the bf16 peak."""
    rate = row.get("frames_per_s")
    ref = (reference or {}).get("frames_per_s")
    row["speedup"] = rate / ref if rate and ref else None
    flops = (reference or {}).get("flops_per_frame")
    row["flops_per_frame"] = flops   # FLOPs do not depend on the variant: the fp32 count
    row["tflops_per_s"] = flops * rate / 1e12 if flops and rate else None
    row["peak_fraction"] = (row["tflops_per_s"] / peak
                            if peak and row["tflops_per_s"] is not None else None)


def format_table(result: dict) -> str:
    """A markdown table: one line per preset, size and variant, inference and training."""
    s = result["settings"]
    peak = result["bf16_peak_tflops"]
    lines = [
        f"device: {result['device']} ({result['device_name']}); torch {result['torch']}",
        f"inference: generator, video mode, batch {s['inference_batch']}, {s['levels']} "
        f"level(s); training: batch {s['train_batch']}, {s['frames']}-frame clips, G + image, "
        f"temporal and face Ds, all losses, backward, Adam; synthetic inputs",
        f"peak memory: {result['peak_memory']}; bf16 peak: "
        f"{f'{peak:g} TFLOP/s' if peak else 'unknown'}; speed-up: rate / eager fp32 rate",
        "",
        "| preset | size | variant | G frames/s | x | train steps/s | train frames/s | x "
        "| peak memory (G / train) | GFLOP/frame (G / train) | % bf16 peak (G / train) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_key: dict[tuple, dict[str, dict]] = {}
    for r in result["rows"]:
        by_key.setdefault((r["preset"], r["size"], r["variant"]), {})[r["phase"]] = r
    for (preset, size, variant), phases in by_key.items():
        g, t = phases.get("inference", {}), phases.get("train", {})
        cells = [
            _num(g.get("frames_per_s"), g), _ratio(g.get("speedup")),
            _num(t.get("steps_per_s"), t), _num(t.get("frames_per_s"), t),
            _ratio(t.get("speedup")),
            f"{_mib(g.get('peak_memory_bytes'))} / {_mib(t.get('peak_memory_bytes'))}",
            f"{_gflop(g.get('flops_per_frame'))} / {_gflop(t.get('flops_per_frame'))}",
            f"{_pct(g.get('peak_fraction'))} / {_pct(t.get('peak_fraction'))}",
        ]
        lines.append(f"| {preset} | {size} | {variant} | " + " | ".join(cells) + " |")
    errors = [r for r in result["rows"] if "error" in r]
    for r in errors:
        lines.append(f"\n{r['preset']} {r['size']}px {r['phase']} {r['variant']}: "
                     f"failed: {r['error']}")
    return "\n".join(lines)


def _num(x, row: dict) -> str:
    if "error" in row:
        return "failed"
    return "-" if x is None else f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _ratio(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _mib(x) -> str:
    return "-" if x is None else f"{x / 2**20:.0f} MiB"


def _gflop(x) -> str:
    return "-" if x is None else f"{x / 1e9:.2f}"


def _pct(x) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.1f} %"
