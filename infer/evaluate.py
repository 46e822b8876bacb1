"""`vid2vid evaluate RUN`: the quality protocol of DESIGN.md section 8.

Self-reenactment on the run's held-out frames (the last share of each
training video, as the run recorded them in config.yaml `holdout_frames`),
less the first `gap` of them: the frames just after the last training frame
are nearly the training frames themselves in a slow scene, so they would
flatter retrieval and a model that memorised. The default gap, 8 frames
(a third of a second at 25 fps), is fixed rather than derived from the run so
that ablations (another `max_stride`, another clip length) are scored on the
same frames; it is longer than any stretch of frames the model learns to
relate at the default settings (the generator's two previous frames at the
largest clip stride, 2: 4 frames; the temporal discriminator's 3 frames at
skip 3: 7 frames). A video with fewer than 16 held-out frames gets half of
them as its gap (a note says so); a gap passed explicitly must fit. Each
evaluated frame is generated from its own conditioning (the run's task,
`vid2vid.tasks`: a pose, a face sketch with background edges, or a label map)
with the run's G_ema, autoregressively (frame 0 of the range in image mode; a
run trained with `--no-temporal` in image mode throughout), at the
checkpoint's frame size, and compared with the real frame at that size, both
through the training's centred geometry without augmentation
(`vid2vid.data.ClipDataset`). The datasets must be of the run's task.

Methods, one row each in the table:
- model: the run's G_ema;
- baseline <name>: another run on the same data (`--baseline`), e.g. the same
  model trained with `--no-temporal`;
- retrieval: the training frame whose conditioning is nearest to the driving
  frame's, shown as it is: what a model that only memorised its training
  frames would give. Pose: body keypoints, torso-normalised
  (`infer.retrieval.PoseIndex`); face: the 70 landmarks about their centroid
  over the inter-ocular distance (`infer.retrieval.FaceIndex`); labels: the
  label map, share of differing pixels on a coarse grid
  (`infer.label_retrieval.LabelIndex`). A driving pose with no neck or
  mid-hip, or a face without both eyes, holds the previous answer;
- real video: the real frames themselves, for the numbers that have a floor
  (warp error, consistency); PSNR and SSIM against themselves are left out.

Metrics (`vid2vid.metrics`), per frame and averaged over frames (NaN-aware),
each on the full frame and on the task's focus region, grown by 10 % of its
size: pose, the person's box (the driving pose's keypoints; columns "...
person"); face, the box of the driving face landmarks ("... face"); labels,
the box of the foreground classes' mask, seg/ ("... foreground"), the whole
frame where there is no foreground. PSNR and SSIM also on the background
alone ("... background"): the pixels outside the real frame's seg/ mask (the
person, the face, or the foreground classes) grown by 2 % of the frame's
shorter side, so the person's edge does not count; a still background must
stay where it is:
- psnr: dB, capped at 100 (identical frames);
- ssim: kornia's 11x11 Gaussian SSIM (its map computed on the whole frame);
- warp_error: flicker; mean squared difference between frame t and frame t-1
  warped by the *real* video's backward flow, over the pixels the occlusion
  check keeps (valid flow, inside the frame, real frames consistent there).
  The first frame of a range has none;
- consistency, where a detector reads the conditioning back from a frame,
  each frame on its own (static-image mode: tracking would flatter it), small
  frames enlarged to 256 px:
  pose: mediapipe's BlazePose (`infer.redetect`; the person-box variant on a
  square crop around the box). pose_found: share of frames with a driving
  pose where a person was found; pose_distance: mean distance between found
  and driving body keypoints over the driving torso length (neck to mid-hip),
  in model pixels.
  face: mediapipe's face mesh (`infer.face_align.FaceRedetector`).
  landmarks_found: share of frames where a face was found; landmark_distance:
  mean distance between found and driving landmarks over the driving
  inter-ocular distance (`infer.face_align.landmark_consistency`).
  labels: none; no detector reads a label map back from a frame.

Drift (a second table, eval.json `drift`): PSNR and SSIM, whole frame and
background, averaged over the first third and over the last third of each
video's evaluated frames (one continuous generated sequence per video: the
generator is never reset inside a video), and their difference, first minus
last: positive when quality falls as errors accumulate. Rows: the model, the
baseline, and retrieval, whose drift is the part that comes from the data (the
later frames lie further from the training frames); none for the real video.
A video with fewer than 3 evaluated frames has no thirds.

The per-task parts (focus region, retrieval index, consistency) sit behind
one small object per task (`_MEASURES`), so the frame loop is the same for
all three.

Writes into RUN (or `--out`): eval.json (the task, the table, the drift table,
per-frame values, frame numbers, the gap and each video's evaluated range and
thirds, settings), eval_compare.mp4 (real | model [| baseline] | retrieval,
side by side) and report.html (both tables, per-frame plots, the video
embedded). Memory stays flat: one frame per method is held, plus a few numbers
and a pose or face (1.6 KB) per frame and method; a labels run also holds the
training frames' label maps at model size for retrieval.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch

from infer.eval_measures import (BOX_MARGIN, MEASURES, POSE_COLUMNS, Measures, drift_table,
                                 nanmean, thirds)
from infer.report import write_report
from infer.trained import TrainedGenerator, load_trained, resolve_device
from infer.transfer import dataset_root
from vid2vid import metrics
from vid2vid.data import ClipDataset, VideoIndex, index_dataset, no_augment
from vid2vid.dataset_dir import load_dataset
from vid2vid.errors import UserError
from vid2vid.generate import Synthesizer
from vid2vid.runs import CONFIG, read_run_config
from vid2vid.tasks import Task, task_of_dataset
from vid2vid.video_writer import VideoWriter, side_by_side

__all__ = ["evaluate", "EvalResult", "COLUMNS", "DEFAULT_GAP", "image_columns"]

Split = Literal["holdout", "train"]
OCCLUSION_THRESHOLD = 0.1
DEFAULT_GAP = 8            # frames between the last training frame and the first evaluated
BACKGROUND_GROW = 0.02     # the person mask grows by this share of the shorter side
_IMAGE_KEYS = ("psnr", "ssim", "warp_error")
_IMAGE_NAMES = {"psnr": "PSNR dB", "ssim": "SSIM", "warp_error": "warp error"}
_BACKGROUND = ("psnr", "ssim")        # warp error already ignores what the flow cannot follow
_DRIFT_KEYS = ("psnr", "ssim", "psnr_background", "ssim_background")


def image_columns(region: str) -> dict[str, str]:
    """Per-frame key -> table column of the image metrics: full frame, focus region and
    (PSNR, SSIM) background."""
    out = {}
    for key in _IMAGE_KEYS:
        out[key] = _IMAGE_NAMES[key]
        out[f"{key}_{region}"] = f"{_IMAGE_NAMES[key]} {region}"
        if key in _BACKGROUND:
            out[f"{key}_background"] = f"{_IMAGE_NAMES[key]} background"
    return out


# per-frame key -> table column, of a pose run (other tasks: MEASURES[name].columns)
COLUMNS = {**image_columns("person"), **POSE_COLUMNS}
_REAL = "real video"
_RETRIEVAL = "retrieval"
_MODEL = "model"


# -- bookkeeping -----------------------------------------------------------------------


@dataclass
class _Method:
    """One row: its frames' numbers and the previous frame (for warp error)."""

    name: str
    synth: Synthesizer | None = None
    prev: torch.Tensor | None = None
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: torch.Tensor | float) -> None:
        self.values.setdefault(key, []).append(float(value))


@dataclass(frozen=True)
class _Video:
    root: Path
    index: VideoIndex          # train_frames = first held-out frame
    frames: tuple[int, ...]    # the frames evaluated: held out, after the gap
    has_flow: bool
    fps: float
    gap: int = 0               # held-out frames skipped before frames[0]


@dataclass
class EvalResult:
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
        text = _format(self.table, list(self.columns.values()))
        if self.drift:
            text += "\n\ndrift: first vs last third of the evaluated frames\n" + _format(
                _drift_rows(self.drift), ["first third", "last third", "drift"])
        return text


def _format(table: dict[str, dict[str, float]], cols: list[str]) -> str:
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


def _drift_rows(drift: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """method -> metric -> values  ->  "method, metric" -> values (the printed and HTML rows)."""
    return {f"{method}, {metric}": values for method, row in drift.items()
            for metric, values in row.items()}


def _json_safe(x):
    """NaN and infinities -> null (JSON has neither), recursively."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] in [0, 1] -> [H, W, 3] uint8."""
    return (image[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


# -- the command -------------------------------------------------------------------------


def _run_dir(run: Path) -> Path:
    run = Path(run)
    if not run.exists():
        raise UserError(f"RUN {run} does not exist; pass a run directory under runs/ (or one of "
                        "its ckpt-*.pt files)")
    return run.parent if run.is_file() else run


def _gap(root: Path, requested: int | None, held_out: int) -> tuple[int, str | None]:
    """The gap before a video's evaluated frames, and a note when the default was shortened."""
    if requested is None:
        gap = min(DEFAULT_GAP, held_out // 2)
        if gap < DEFAULT_GAP:
            return gap, (f"{root} has only {held_out} held-out frames: the gap after its last "
                         f"training frame is {gap} frames, not {DEFAULT_GAP} (train with a "
                         f"larger holdout share for the full gap)")
        return gap, None
    if requested >= held_out:
        raise UserError(f"{root}: a gap of {requested} frames leaves none of its {held_out} "
                        f"held-out frames to evaluate; pass a gap below {held_out}")
    return requested, None


def _videos(run_dir: Path, cfg: dict, data: str | None, split: Split, task: Task,
            gap: int | None = None) -> tuple[list[_Video], list[str]]:
    """The datasets to evaluate and the frames of each; notes for the report."""
    notes = []
    recorded = {str(Path(k)): v for k, v in (cfg.get("holdout_frames") or {}).items()}
    if data is not None:
        roots = [dataset_root(data, "--data")]
    else:
        roots = []
        for d in cfg.get("data") or []:
            if not Path(d).exists():
                raise UserError(f"{d}, the data {run_dir} was trained on, does not exist; pass "
                                "its new place with --data DIR")
            roots.append(dataset_root(d, "the run's data"))
        if not roots:
            raise UserError(f"{run_dir}/config.yaml names no data; pass --data DIR")
    videos = []
    for root in roots:
        meta = load_dataset(root)
        data_task = task_of_dataset(meta)
        if data_task != task:
            raise UserError(f"{root} is a {data_task.name!r} dataset ({data_task.to_dict()}) "
                            f"but {run_dir} is a {task.name!r} run ({task.to_dict()}); "
                            "evaluate it on data of its own task (--data)")
        index = index_dataset(root, float(cfg.get("holdout", 0.2)))
        span = recorded.get(str(root.resolve()))
        if span is None:
            notes.append(f"{root} is not recorded in {run_dir}/config.yaml; its last "
                         f"{cfg.get('holdout', 0.2):g} share counts as held out")
            first, stop = index.train_frames, index.frames
        else:
            first, stop = int(span[0]), min(int(span[1]), index.frames)
        if first < 1:
            raise UserError(f"{root}: the run has no training frames to retrieve from "
                            f"(held-out range starts at frame {first})")
        skip = 0
        if split == "holdout" and stop > first:
            skip, note = _gap(root, gap, stop - first)
            notes += [note] if note else []
        frames = range(first + skip, stop) if split == "holdout" else range(0, first)
        if len(frames) == 0:
            raise UserError(f"{root}: no held-out frames in {run_dir} (holdout "
                            f"{cfg.get('holdout')}); evaluate on --split train, or train with "
                            "a held-out share")
        has_flow = bool((meta.get("flow") or {}).get("method"))
        if not has_flow:
            notes.append(f"{root} has no optical flow (preprocessed with --no-flow): no warp "
                         "error")
        videos.append(_Video(root, replace(index, train_frames=first), tuple(frames),
                             has_flow, float(meta.get("fps") or 25.0), skip))
    return videos, notes


def evaluate(run: str | Path, data: str | None = None, baseline: str | Path | None = None,
             max_frames: int | None = None, device: str = "auto", out: str | Path | None = None,
             split: Split = "holdout", progress: bool = True,
             detector: Callable | None = None, gap: int | None = None) -> EvalResult:
    """Runs the protocol (module docstring) and writes eval.json, eval_compare.mp4, report.html.

    Args:
        run: a run directory (its newest checkpoint) or a checkpoint file in one.
        data: evaluate this dataset only (default: every dataset of the run); it must be
            of the run's task.
        baseline: another run (or checkpoint) on the same data, as an extra row.
        max_frames: evaluate at most this many frames in all (the first ones).
        device: "auto", "cpu" or "cuda".
        out: folder for the three files (default: the run directory).
        split: "holdout" (the protocol) or "train" (the run's training frames: a
            sanity check, where the retrieval baseline finds each frame itself).
        detector: the consistency detector of the run's task; tests pass a fake. Pose:
            a callable RGB uint8 frame -> Pose | None (default `BodyDetector`,
            mediapipe); face: RGB uint8 frame -> `[70, 3]` landmarks in its pixels,
            zeros when no face is found (default `FaceRedetector`, mediapipe);
            labels: unused.
        gap: held-out frames left out after the last training frame (default
            `DEFAULT_GAP`, halved for a video with fewer than twice as many held-out
            frames); unused with split "train".
    """
    t0 = time.time()
    if split not in ("holdout", "train"):
        raise UserError(f"--split must be holdout or train, got {split!r}")
    if max_frames is not None and max_frames < 1:
        raise UserError(f"--max-frames must be at least 1, got {max_frames}")
    if gap is not None and gap < 0:
        raise UserError(f"--gap must be at least 0 frames, got {gap}")
    run_dir = _run_dir(Path(run))
    cfg = read_run_config(run_dir)
    dev = resolve_device(device)
    model: TrainedGenerator = load_trained(Path(run), dev)
    h, w = model.frame_size
    videos, notes = _videos(run_dir, cfg, data, split, model.task, gap)

    other: TrainedGenerator | None = None
    other_name = None
    if baseline is not None:
        other = load_trained(Path(baseline), dev)
        other_name = f"baseline {other.run_dir.name}"
        if other.task != model.task:
            raise UserError(f"baseline {other.checkpoint} is a {other.task.name!r} model but "
                            f"{model.checkpoint} a {model.task.name!r} one; pass a baseline "
                            "trained on the same data")
        if other.frame_size != model.frame_size:
            raise UserError(f"baseline {other.checkpoint} generates {other.frame_size[0]}x"
                            f"{other.frame_size[1]} frames but {model.checkpoint} "
                            f"{h}x{w}; train the baseline with the same --size")
        # config.yaml holds the data as absolute paths; the checkpoint as they were typed.
        cfg_b = read_run_config(other.run_dir) if (other.run_dir / CONFIG).exists() else {}
        trained_on = {str(Path(d).resolve()) for d in cfg_b.get("data") or other.data}
        for v in videos:
            if str(v.root.resolve()) not in trained_on:
                raise UserError(f"baseline {other.run_dir} was not trained on {v.root}; pass a "
                                "run trained on the same data (e.g. vid2vid train --data "
                                f"{v.root} --no-temporal)")

    out_dir = Path(out) if out is not None else run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        raise UserError(f"{out_dir} is not writable; pass another folder with --out")

    names = [_MODEL] + ([other_name] if other else []) + [_RETRIEVAL, _REAL]
    methods = {n: _Method(n) for n in names}
    total = sum(len(v.frames) for v in videos)
    if max_frames is not None:
        total = min(total, max_frames)
    frame_ids: list[list[int]] = []       # (video, frame) per evaluated frame
    video_path = out_dir / "eval_compare.mp4"
    labels = ["real", "model"] + (["baseline"] if other else []) + ["retrieval"]
    writer: VideoWriter | None = None
    from tqdm import tqdm

    measures: Measures = MEASURES[model.task.name](model.task, detector)
    region = measures.region
    columns = {**image_columns(region), **measures.columns}
    grow = max(1, round(BACKGROUND_GROW * min(h, w)))
    bar = tqdm(total=total, unit="frame", desc="evaluating", disable=not progress,
               dynamic_ncols=True, mininterval=0.5)
    done = 0
    try:
        with torch.inference_mode():
            for v, video in enumerate(videos):
                if done >= total:
                    break
                for m in methods.values():        # a new video starts afresh
                    m.prev = None
                methods[_MODEL].synth = Synthesizer(model.generator, temporal=model.temporal)
                if other is not None:
                    methods[other_name].synth = Synthesizer(other.generator,
                                                            temporal=other.temporal)
                ds = ClipDataset([video.index], 1, (h, w), augment=no_augment(),
                                 with_flow=video.has_flow)
                nearest = measures.retrieval(video, (h, w))
                prev_real: torch.Tensor | None = None
                retrieved: tuple[int, torch.Tensor] | None = None
                for k in video.frames:
                    if done >= total:
                        break
                    pair = prev_real is not None and video.has_flow
                    clip = ds.frames_at(0, [k - 1, k] if pair else [k])
                    real = (clip.frames[-1:] + 1) / 2
                    maps = clip.maps[-1:]
                    box_t = measures.focus(clip, (h, w))
                    background = metrics.background_mask(clip.masks[-1:], grow)
                    flow = mask = None
                    if pair:
                        flow = clip.flow[-1:]
                        mask = metrics.occlusion_mask(real, prev_real, flow, clip.flow_valid[-1:],
                                                      OCCLUSION_THRESHOLD)

                    images = {_REAL: real}
                    images[_MODEL] = (methods[_MODEL].synth(maps.to(dev)).float().cpu() + 1) / 2
                    if other is not None:
                        images[other_name] = (methods[other_name].synth(maps.to(dev)).float()
                                              .cpu() + 1) / 2
                    j = nearest(k, clip)
                    if j is not None and (retrieved is None or retrieved[0] != j):
                        retrieved = (j, (ds.frames_at(0, [j]).frames + 1) / 2)
                    images[_RETRIEVAL] = retrieved[1] if retrieved is not None else \
                        torch.full_like(real, 0.5)      # nothing to show yet: mid grey

                    for name, img in images.items():
                        m = methods[name]
                        if name != _REAL:
                            m.add("psnr", metrics.psnr(img, real)[0])
                            m.add(f"psnr_{region}", metrics.psnr(img, real, box_t)[0])
                            m.add("psnr_background",
                                  metrics.psnr(img, real, mask=background)[0])
                            m.add("ssim", metrics.ssim(img, real)[0])
                            m.add(f"ssim_{region}", metrics.ssim(img, real, box_t)[0])
                            m.add("ssim_background",
                                  metrics.ssim(img, real, mask=background)[0])
                        if flow is not None and m.prev is not None:
                            m.add("warp_error", metrics.warp_error(img, m.prev, flow, mask)[0])
                            m.add(f"warp_error_{region}",
                                  metrics.warp_error(img, m.prev, flow, mask, box_t)[0])
                        else:
                            m.add("warp_error", math.nan)
                            m.add(f"warp_error_{region}", math.nan)
                        measures.observe(name, _to_uint8(img), box_t)
                        m.prev = img
                    frame_ids.append([v, k])
                    panels = [images[_REAL], images[_MODEL]] + \
                        ([images[other_name]] if other else []) + [images[_RETRIEVAL]]
                    # At least 128 px tall, so a small model's frames can be seen.
                    sheet = side_by_side([_to_uint8(p) for p in panels], labels,
                                         height=max(h, 128))
                    if writer is None:
                        writer = VideoWriter(video_path, video.fps,
                                             (sheet.shape[1], sheet.shape[0]))
                    writer.write(sheet)
                    prev_real = real
                    done += 1
                    bar.update(1)
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()
        measures.close()

    table, per_frame = {}, {}
    for name, m in methods.items():
        values, summary = measures.summary(name)
        m.values.update(values)
        table[name] = {column: summary[key] if key in summary else nanmean(m.values[key])
                       for key, column in columns.items() if key in m.values}
        per_frame[name] = {k: m.values[k] for k in columns if k in m.values}

    # Drift: each video's first and last third of its evaluated frames, pooled over videos.
    spans = [thirds([i for i, (vv, _) in enumerate(frame_ids) if vv == v])
             for v in range(len(videos))]
    first = [i for a, _ in spans for i in a]
    last = [i for _, b in spans for i in b]
    drift = {name: drift_table({columns[k]: per_frame[name][k] for k in _DRIFT_KEYS},
                               first, last)
             for name in names if name != _REAL}
    if not first:
        notes.append("no drift: every video has fewer than 3 evaluated frames")

    def frame_range(positions: list[int]) -> list[int] | None:
        return [frame_ids[positions[0]][1], frame_ids[positions[-1]][1] + 1] if positions \
            else None

    notes = notes + list(measures.notes)
    seconds = time.time() - t0
    record = {
        "format": "vid2vid-eval", "version": 1,
        "task": model.task.to_dict(),
        "run": str(run_dir), "checkpoint": str(model.checkpoint), "step": model.step,
        "temporal": model.temporal,
        "baseline": None if other is None else {
            "run": str(other.run_dir), "checkpoint": str(other.checkpoint), "step": other.step,
            "temporal": other.temporal, "row": other_name},
        "split": split,
        "gap": (DEFAULT_GAP if gap is None else gap) if split == "holdout" else None,
        "data": [{"dataset": str(v.root), "first_held_out": v.index.train_frames,
                  "last_training_frame": v.index.train_frames - 1, "gap": v.gap,
                  "frames": [v.frames[0], v.frames[-1] + 1],
                  "evaluated": sum(1 for f in frame_ids if f[0] == i),
                  "first_third": frame_range(spans[i][0]),
                  "last_third": frame_range(spans[i][1])}
                 for i, v in enumerate(videos)],
        "frame_size": [h, w],
        "frames": done,
        "device": str(dev),
        "settings": {
            "psnr_cap_db": metrics.MAX_PSNR_DB, "ssim_window": 11, "box_margin": BOX_MARGIN,
            "occlusion_threshold": OCCLUSION_THRESHOLD,
            "background": f"outside the real frame's seg/ mask grown by {grow} px "
                          f"({BACKGROUND_GROW:g} of the shorter side)",
            "background_grow_px": grow, **measures.settings(),
        },
        "columns": columns,
        "table": table,
        "drift": drift,
        "per_frame": {"frame": frame_ids, **per_frame},
        "notes": notes,
        "seconds": round(seconds, 2),
    }
    json_path = out_dir / "eval.json"
    tmp = json_path.with_name(".eval.json.partial")
    tmp.write_text(json.dumps(_json_safe(record), indent=1))
    os.replace(tmp, json_path)

    plots = {}
    for key in [*image_columns(region), *measures.plotted]:
        series = {n: per_frame[n][key] for n in names if key in per_frame[n]}
        plots[columns[key]] = series
    caption = " | ".join(labels)
    text = (f"run {run_dir} ({model.task.name} task, checkpoint {model.checkpoint.name}, "
            f"step {model.step}); "
            f"{done} {'held-out' if split == 'holdout' else 'training'} frames of "
            + ", ".join(f"{v.root} (frames {v.frames[0]}-{v.frames[-1]}"
                        + (f", a gap of {v.gap} after the last training frame, "
                           f"{v.index.train_frames - 1}" if split == "holdout" else "") + ")"
                        for v in videos)
            + f" at {h}x{w}"
            + (f"; baseline {other.run_dir}" if other else "")
            + ("; " + "; ".join(notes) if notes else ""))
    report_path = write_report(
        out_dir / "report.html", table, plots, {caption: video_path},
        title=f"vid2vid evaluation: {run_dir.name}", notes=text,
        tables={"Drift: first vs last third of the evaluated frames (drift = first - last)":
                _drift_rows(drift)})
    return EvalResult(table, json_path, report_path, video_path, done, seconds, columns, drift)


def compare_to_reference(generated: Path, reference: Path) -> dict:
    """PSNR and SSIM of a generated video against the true frames of the same motion.

    For the synthetic sample, whose driving clip is rendered exactly (same figure,
    same camera): the reference is resized to the generated frames' size with
    area averaging, then both are compared frame by frame, in constant memory.
    """
    import cv2

    from vid2vid.metrics import psnr, ssim, to_tensor
    from vid2vid.video import probe, read_frames

    gen_info = probe(Path(generated), 10**6, None)
    ref_info = probe(Path(reference), 10**6, None)
    w, h = gen_info.size
    scores_psnr, scores_ssim = [], []
    for g, r in zip(read_frames(gen_info), read_frames(ref_info)):
        r = cv2.resize(r, (w, h), interpolation=cv2.INTER_AREA)
        gt, rt = to_tensor([g]), to_tensor([r])
        scores_psnr.append(float(psnr(gt, rt)[0]))
        scores_ssim.append(float(ssim(gt, rt)[0]))
    if not scores_psnr:
        raise UserError(f"{generated} or {reference} has no frames to compare")
    return {"frames": len(scores_psnr), "psnr_db": sum(scores_psnr) / len(scores_psnr),
            "ssim": sum(scores_ssim) / len(scores_ssim), "generated": str(generated),
            "reference": str(reference),
            "per_frame": {"psnr_db": scores_psnr, "ssim": scores_ssim}}
