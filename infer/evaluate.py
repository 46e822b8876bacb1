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
stay where it is. And on the background the training frames showed ("...
background seen"): of those pixels, the ones outside the person in at least one of
the frames the background plate samples (`vid2vid.background.seen_background`); what
he covers in all of them no method can know, yet when he moves the column before counts it:
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
one small object per task (`infer.eval_measures.MEASURES`), so the frame loop
is the same for all three. Which frames are scored is `infer.eval_frames`;
the tables and their text, `infer.eval_result`.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from infer.eval_frames import DEFAULT_GAP, EvalVideo, Split, eval_videos
from infer.eval_measures import BOX_MARGIN, MEASURES, Measures, drift_table, nanmean, thirds
from infer.eval_result import EvalResult, drift_rows, image_columns
from infer.report import write_report
from infer.trained import TrainedGenerator, load_trained, resolve_device
from vid2vid import metrics
from vid2vid.background import seen_background
from vid2vid.cpu_share import CpuShare
from vid2vid.data import ClipDataset, no_augment
from vid2vid.errors import UserError
from vid2vid.generate import Synthesizer
from vid2vid.runs import CONFIG, read_run_config
from vid2vid.video_writer import VideoWriter, side_by_side

__all__ = ["evaluate"]

OCCLUSION_THRESHOLD = 0.1
BACKGROUND_GROW = 0.02     # the person mask grows by this share of the shorter side
_DRIFT_KEYS = ("psnr", "ssim", "psnr_background", "ssim_background", "psnr_background_seen",
               "ssim_background_seen")
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


@dataclass
class _Plan:
    """What `evaluate` checked before generating a frame: the models, the frames, where to."""

    run_dir: Path
    model: TrainedGenerator
    other: TrainedGenerator | None      # the baseline
    other_name: str | None              # its row
    videos: list[EvalVideo]
    notes: list[str]
    out_dir: Path
    device: torch.device

    @property
    def names(self) -> list[str]:
        """The rows of the table, in order."""
        return [_MODEL] + ([self.other_name] if self.other else []) + [_RETRIEVAL, _REAL]

    @property
    def labels(self) -> list[str]:
        """The comparison video's panels, in order."""
        return ["real", "model"] + (["baseline"] if self.other else []) + ["retrieval"]

    @property
    def grow(self) -> int:
        """Pixels the real frame's seg/ mask grows by before the background is measured."""
        h, w = self.model.frame_size
        return max(1, round(BACKGROUND_GROW * min(h, w)))


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
    plan = _plan(run, data, baseline, max_frames, device, out, split, gap)
    video_path = plan.out_dir / "eval_compare.mp4"
    measures: Measures = MEASURES[plan.model.task.name](plan.model.task, detector)
    try:
        methods, frame_ids = _score_frames(plan, measures, max_frames, video_path, progress)
    finally:
        measures.close()
    return _write_outputs(plan, measures, methods, frame_ids, video_path, split, gap, t0)


def _run_dir(run: Path) -> Path:
    run = Path(run)
    if not run.exists():
        raise UserError(f"RUN {run} does not exist; pass a run directory under runs/ (or one of "
                        "its ckpt-*.pt files)")
    return run.parent if run.is_file() else run


def _plan(run, data, baseline, max_frames, device, out, split, gap) -> _Plan:
    """Checks the arguments, loads the model (and the baseline) and picks the frames."""
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
    videos, notes = eval_videos(run_dir, cfg, data, split, model.task, gap)
    for video in videos:            # a background it knows, before any frame is made
        model.plate_for(video.root)

    other: TrainedGenerator | None = None
    other_name = None
    if baseline is not None:
        other = load_trained(Path(baseline), dev)
        other_name = f"baseline {other.run_dir.name}"
        if other.task.to_dict() != model.task.to_dict():    # another task or limb_width
            raise UserError(f"baseline {other.checkpoint} draws its maps as {other.task.to_dict()}"
                            f" but {model.checkpoint} as {model.task.to_dict()}; pass a baseline "
                            "trained on the same data, drawn the same way")
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
    return _Plan(run_dir, model, other, other_name, videos, notes, out_dir, dev)


def _score_frames(plan: _Plan, measures: Measures, max_frames: int | None, video_path: Path,
                  progress: bool) -> tuple[dict[str, _Method], list[list[int]]]:
    """The frame loop: generates every evaluated frame with each method, scores it and
    writes the comparison video. Returns the rows and (video, frame) per scored frame."""
    from tqdm import tqdm

    model, other, other_name, dev = plan.model, plan.other, plan.other_name, plan.device
    h, w = model.frame_size
    methods = {n: _Method(n) for n in plan.names}
    total = sum(len(v.frames) for v in plan.videos)
    if max_frames is not None:
        total = min(total, max_frames)
    frame_ids: list[list[int]] = []       # (video, frame) per evaluated frame
    writer: VideoWriter | None = None
    region = measures.region
    grow = plan.grow
    bar = tqdm(total=total, unit="frame", desc="evaluating", disable=not progress,
               dynamic_ncols=True, mininterval=0.5)
    done = 0
    share = CpuShare(dev).__enter__()   # fewer threads while other vid2vid jobs run
    try:
        with torch.inference_mode():
            for v, video in enumerate(plan.videos):
                if done >= total:
                    break
                for m in methods.values():        # a new video starts afresh
                    m.prev = None
                methods[_MODEL].synth = Synthesizer(model.generator, temporal=model.temporal,
                                                    video=model.plate_for(video.root))
                if other is not None:
                    methods[other_name].synth = Synthesizer(other.generator,
                                                            temporal=other.temporal,
                                                            video=other.plate_for(video.root))
                ds = ClipDataset([video.index], 1, (h, w), augment=no_augment(),
                                 with_flow=video.has_flow)
                seen = torch.from_numpy(seen_background(video.index, (h, w)))[None, None]
                nearest = measures.retrieval(video, (h, w))
                prev_real: torch.Tensor | None = None
                retrieved: tuple[int, torch.Tensor] | None = None
                for k in video.frames:
                    if done >= total:
                        break
                    share.poll()
                    pair = prev_real is not None and video.has_flow
                    clip = ds.frames_at(0, [k - 1, k] if pair else [k])
                    real = (clip.frames[-1:] + 1) / 2
                    maps = clip.maps[-1:]
                    box_t = measures.focus(clip, (h, w))
                    background = metrics.background_mask(clip.masks[-1:], grow)
                    background_seen = background & seen
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
                            m.add("psnr_background_seen",
                                  metrics.psnr(img, real, mask=background_seen)[0])
                            m.add("ssim_background_seen",
                                  metrics.ssim(img, real, mask=background_seen)[0])
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
                    sheet = side_by_side([_to_uint8(p) for p in panels], plan.labels,
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
        share.__exit__(None, None, None)
        bar.close()
    return methods, frame_ids


def _write_outputs(plan: _Plan, measures: Measures, methods: dict[str, _Method],
                   frame_ids: list[list[int]], video_path: Path, split: Split,
                   gap: int | None, t0: float) -> EvalResult:
    """The tables from the per-frame values; writes eval.json and report.html."""
    model, other, other_name, videos = plan.model, plan.other, plan.other_name, plan.videos
    run_dir, names, done = plan.run_dir, plan.names, len(frame_ids)
    h, w = model.frame_size
    region = measures.region
    columns = {**image_columns(region), **measures.columns}
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
    notes = list(plan.notes)
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
        "device": str(plan.device),
        "settings": {
            "psnr_cap_db": metrics.MAX_PSNR_DB, "ssim_window": 11, "box_margin": BOX_MARGIN,
            "occlusion_threshold": OCCLUSION_THRESHOLD,
            "background": f"outside the real frame's seg/ mask grown by {plan.grow} px "
                          f"({BACKGROUND_GROW:g} of the shorter side)",
            "background_grow_px": plan.grow,
            "background_seen": "of the background, the pixels outside the person (dilated) in "
                               "at least one of the background plate's training samples",
            **measures.settings(),
        },
        "columns": columns,
        "table": table,
        "drift": drift,
        "per_frame": {"frame": frame_ids, **per_frame},
        "notes": notes,
        "seconds": round(seconds, 2),
    }
    json_path = plan.out_dir / "eval.json"
    tmp = json_path.with_name(".eval.json.partial")
    tmp.write_text(json.dumps(_json_safe(record), indent=1))
    os.replace(tmp, json_path)

    plots = {}
    for key in [*image_columns(region), *measures.plotted]:
        series = {n: per_frame[n][key] for n in names if key in per_frame[n]}
        plots[columns[key]] = series
    caption = " | ".join(plan.labels)
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
        plan.out_dir / "report.html", table, plots, {caption: video_path},
        title=f"vid2vid evaluation: {run_dir.name}", notes=text,
        tables={"Drift: first vs last third of the evaluated frames (drift = first - last)":
                drift_rows(drift)})
    return EvalResult(table, json_path, report_path, video_path, done, seconds, columns, drift)
