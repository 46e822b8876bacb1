"""The evaluation report: one self-contained HTML file (`report.html`).

What it holds, top to bottom:

- the metrics table: one row per method ("model", "retrieval baseline",
  another run, the real video's own warp error...), one column per metric;
- further tables under their own headings (evaluate's drift table: first vs
  last third of the held-out frames);
- per-frame plots, inline SVG polylines drawn here (no plotting library); a
  NaN or infinite value breaks the line rather than squashing the scale;
- the side-by-side videos (real | generated | baseline), embedded as base64
  `data:` URIs so the page works when mailed or copied alone. Embedding costs
  4/3 of the file size; a video above `max_embed_bytes` is linked by relative
  path instead (and noted as such on the page), so the page stays loadable.

The videos autoplay muted and loop, for comparing at a glance. A small
inline script marks each `<video>` with `data-state` ("loaded" or "error"),
`data-duration` and `data-played` once it plays; the browser test reads these,
and they tell a person looking at the DOM why a video stays black.
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

from vid2vid.errors import UserError

__all__ = ["write_report"]

MAX_EMBED_BYTES = 25 * 2**20
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
_MAX_POINTS = 2000   # more points than pixels across only make the page heavier

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table.metrics { border-collapse: collapse; margin: 1em 0; }
table.metrics th, table.metrics td { border: 1px solid #ccc; padding: 4px 10px; }
table.metrics td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
video { max-width: 100%; background: #000; }
svg text { font-size: 11px; fill: #444; }
"""

_SCRIPT = """
for (const v of document.querySelectorAll('video')) {
  const loaded = () => { v.dataset.state = 'loaded'; v.dataset.duration = v.duration;
                         v.dataset.readyState = v.readyState; };
  if (v.readyState >= 2) loaded(); else v.addEventListener('loadeddata', loaded);
  v.addEventListener('error', () => { v.dataset.state = 'error'; });
  v.addEventListener('timeupdate', () => { if (v.currentTime > 0) v.dataset.played = 'true'; });
}
"""


def _fmt(value) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, str):
        return html.escape(value)
    v = float(value)
    if math.isnan(v):
        return "&ndash;"
    if math.isinf(v):
        return "&infin;" if v > 0 else "&minus;&infin;"
    return f"{v:.4g}"


def _table(metrics_table: Mapping[str, Mapping[str, float]], table_id: str = "metrics",
           corner: str = "method") -> str:
    columns: list[str] = []
    for row in metrics_table.values():
        for key in row:
            if key not in columns:
                columns.append(key)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for method, row in metrics_table.items():
        cells = "".join(f'<td class="num">{_fmt(row.get(c))}</td>' for c in columns)
        rows.append(f"<tr><th>{html.escape(method)}</th>{cells}</tr>")
    return (f'<table class="metrics" id="{html.escape(table_id)}"><thead><tr>'
            f'<th>{html.escape(corner)}</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _plot(name: str, series: Mapping[str, Sequence[float]], width: int = 720,
          height: int = 200) -> str:
    """One SVG line plot: x = frame index, one polyline per series."""
    left, right, top, bottom = 56, 12, 10, 24
    finite = [float(v) for s in series.values() for v in s
              if v is not None and math.isfinite(float(v))]
    n = max((len(s) for s in series.values()), default=0)
    if not finite or n == 0:
        return (f'<figure class="plot"><figcaption>{html.escape(name)}</figcaption>'
                '<p>no finite values</p></figure>')
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    pw, ph = width - left - right, height - top - bottom
    sx = pw / max(n - 1, 1)
    step = max(1, math.ceil(n / _MAX_POINTS))

    def y(v: float) -> float:
        return top + ph * (hi - v) / (hi - lo)

    parts = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>',
             f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{_fmt(hi)}</text>',
             f'<text x="{left - 4}" y="{top + ph}" text-anchor="end">{_fmt(lo)}</text>',
             f'<text x="{left}" y="{height - 6}">0</text>',
             f'<text x="{left + pw}" y="{height - 6}" text-anchor="end">{n - 1}</text>',
             f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">frame</text>']
    legend = []
    for k, (label, values) in enumerate(series.items()):
        color = _COLORS[k % len(_COLORS)]
        segment: list[str] = []
        segments = [segment]
        for i in range(0, len(values), step):
            v = values[i]
            if v is None or not math.isfinite(float(v)):
                segment = []
                segments.append(segment)
                continue
            segment.append(f"{left + i * sx:.1f},{y(float(v)):.1f}")
        for seg in segments:
            if len(seg) == 1:
                x0, y0 = seg[0].split(",")
                parts.append(f'<circle cx="{x0}" cy="{y0}" r="1.5" fill="{color}"/>')
            elif seg:
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.2" '
                             f'points="{" ".join(seg)}"/>')
        if len(series) > 1:
            legend.append(f'<span style="color:{color}">&#9632; {html.escape(label)}</span>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(name)}">'
           f'{"".join(parts)}</svg>')
    legend_html = f'<div class="legend">{" &nbsp; ".join(legend)}</div>' if legend else ""
    return (f'<figure class="plot"><figcaption>{html.escape(name)}</figcaption>{svg}'
            f'{legend_html}</figure>')


def _video(label: str, path: Path, report_dir: Path, max_embed_bytes: int) -> str:
    if not path.is_file():
        raise UserError(f"{path} (video '{label}' of the report) does not exist; write the "
                        "comparison videos before the report")
    size = path.stat().st_size
    attrs = 'controls muted loop autoplay playsinline preload="auto"'
    if size <= max_embed_bytes:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        src, note = f"data:video/mp4;base64,{data}", ""
    else:
        src = html.escape(Path(os.path.relpath(path.resolve(), report_dir.resolve())).as_posix())
        note = (f'<p class="note">{size / 2**20:.0f} MB: linked as {src}, not embedded '
                "(keep the file next to the report)</p>")
    return (f'<figure class="video"><figcaption>{html.escape(label)}</figcaption>'
            f'<video {attrs} src="{src}"></video>{note}</figure>')


def write_report(path: str | Path, metrics_table: Mapping[str, Mapping[str, float]],
                 per_frame: Mapping[str, Sequence[float] | Mapping[str, Sequence[float]]],
                 videos: Mapping[str, str | Path], title: str = "vid2vid evaluation",
                 notes: str | None = None, max_embed_bytes: int = MAX_EMBED_BYTES,
                 tables: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None) -> Path:
    """Writes a self-contained HTML report (atomically: temp file + rename).

    Args:
        path: the .html file to write.
        metrics_table: method -> {metric name -> value}; rows in the given
            order, columns in order of first appearance; a missing or NaN cell
            shows as a dash.
        per_frame: plot name -> values (one line), or plot name -> {series
            label -> values} (several lines in one plot, e.g. the same metric
            for "model" and "real video").
        videos: caption -> mp4 file (H.264, as `vid2vid.video_writer` writes).
        title: the page's title and heading.
        notes: optional plain text shown under the heading (data, run, command).
        max_embed_bytes: videos larger than this are linked, not embedded.
        tables: heading -> {row -> {column -> value}}: more tables after the
            metrics table, each under its heading (ids "table-1", "table-2"...).

    Returns:
        The path written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the folder of {path} ({e.strerror}); choose another "
                        "output path") from None
    body = [f"<h1>{html.escape(title)}</h1>"]
    if notes:
        body.append(f'<p class="notes">{html.escape(notes)}</p>')
    body += ["<h2>Metrics</h2>", _table(metrics_table)]
    for n, (heading, rows) in enumerate((tables or {}).items(), 1):
        body += [f"<h2>{html.escape(heading)}</h2>", _table(rows, f"table-{n}", "")]
    if per_frame:
        body.append("<h2>Per frame</h2>")
        for name, values in per_frame.items():
            series = values if isinstance(values, Mapping) else {name: values}
            body.append(_plot(name, series))
    if videos:
        body.append("<h2>Videos</h2>")
        for label, video in videos.items():
            body.append(_video(label, Path(video), path.parent, max_embed_bytes))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body>{''.join(body)}<script>{_SCRIPT}</script></body></html>\n")
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {path} ({e.strerror}); choose another output path") from None
    return path
