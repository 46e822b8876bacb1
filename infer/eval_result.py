"""What `vid2vid evaluate` returns and prints: the tables, their columns and their text.

`image_columns` names the image metrics' columns (full frame, the task's focus
region, background); `EvalResult.format_table` prints the metrics table and
the drift table as the command shows them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from infer.eval_measures import POSE_COLUMNS

_IMAGE_KEYS = ("psnr", "ssim", "warp_error")
_IMAGE_NAMES = {"psnr": "PSNR dB", "ssim": "SSIM", "warp_error": "warp error"}
_BACKGROUND = ("psnr", "ssim")        # warp error already ignores what the flow cannot follow


def image_columns(region: str) -> dict[str, str]:
    """Per-frame key -> table column of the image metrics: full frame, focus region and
    (PSNR, SSIM) background, all of it and the part the training frames showed."""
    out = {}
    for key in _IMAGE_KEYS:
        out[key] = _IMAGE_NAMES[key]
        out[f"{key}_{region}"] = f"{_IMAGE_NAMES[key]} {region}"
        if key in _BACKGROUND:
            out[f"{key}_background"] = f"{_IMAGE_NAMES[key]} background"
            out[f"{key}_background_seen"] = f"{_IMAGE_NAMES[key]} background seen"
    return out


# per-frame key -> table column, of a pose run (other tasks: MEASURES[name].columns)
COLUMNS = {**image_columns("person"), **POSE_COLUMNS}


@dataclass
class EvalResult:
    """What `evaluate` measured and wrote: the tables (method -> column -> value), the files."""

    table: dict[str, dict[str, float]]
    json_path: Path
    report_path: Path
    video_path: Path
    frames: int
    seconds: float
    columns: dict[str, str] = field(default_factory=lambda: dict(COLUMNS))
    # method -> metric -> {"first third", "last third", "drift"}
    drift: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def format_table(self) -> str:
        """The metrics table, then the drift table (one row per method and metric)."""
        text = format_rows(self.table, list(self.columns.values()))
        if self.drift:
            text += "\n\ndrift: first vs last third of the evaluated frames\n" + format_rows(
                drift_rows(self.drift), ["first third", "last third", "drift"])
        return text


def format_rows(table: dict[str, dict[str, float]], cols: list[str]) -> str:
    """A plain-text table: one line per row of `table`, one column per name in `cols`."""
    width = max(len(m) for m in table)
    lines = [" " * width + "".join(f"  {c:>{max(len(c), 8)}}" for c in cols)]
    for method, row in table.items():
        cells = []
        for c in cols:
            v = row.get(c)
            text = "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"
            cells.append(f"  {text:>{max(len(c), 8)}}")
        lines.append(f"{method:<{width}}" + "".join(cells))
    return "\n".join(lines)


def drift_rows(drift: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """method -> metric -> values  ->  "method, metric" -> values (the printed and HTML rows)."""
    return {f"{method}, {metric}": values for method, row in drift.items()
            for metric, values in row.items()}
