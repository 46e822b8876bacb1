"""`vid2vid dream`'s table (issue 14): the motion model against a motion graph and against
itself with plain sin/cos time embeddings, on dancer.avi's poses.

    python benchmarks/bench_dream.py DATASET [--minutes 10 | --steps N] [--seed 0] [--work DIR]
        [--png FILE] [--temperature T] [--set KEY=VALUE ...] [--no-sincos]

DATASET is dancer.avi preprocessed (`vid2vid preprocess ../shared/data/dancer.avi`).
The last 20 % of its frames are real held-out motion (never trained on); the
first 80 % train both models (`dream.training.train_motion`, the command's own
loop) and feed the motion graph. Every method makes 10 minutes of motion at the
dataset's 25 fps for each of `--dream-seeds` seeds (8: seeds 0-7). The Fréchet
distance and novelty are the mean over the seeds (one dream's Fréchet distance
swings 2-7x from seed to seed); the other measures read seed 0 (dream.motion_metrics):

- Fréchet distance to the held-out windows (16 frames: joints relative to the
  neck in torso lengths, and velocities; PCA to 24 dims fitted on training windows);
- bone lengths within the training range (all bones, per frame), teleports
  (fastest joint faster than the training's fastest, per frame);
- novelty: median distance of a window to its nearest training window, against
  the held-out real windows' median;
- long range: largest mean autocorrelation at lags beyond 2 s; motion in the
  last minute against the training's (std of positions, mean speed);
- 25 vs 50 fps of the same seed at the shared instants; training time; poses/s.
Prints a markdown table and writes JSON next to the picture.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from dream.checkpoint import load_motion_model
from dream.config import MINUTES_PER_TRAINING, MotionConfig
from dream.motion_data import load_motion, read_body_poses
from dream.motion_graph import motion_graph
from dream.motion_metrics import (PCA, absolute, autocorrelation, bone_lengths, frechet,
                                  joint_speed, nearest_distance, window_features)
from dream.pose_frame import fill_missing_joints
from dream.training import train_motion

HOLDOUT = 0.2
MINUTES_OF_MOTION = 10


def measures(gen: np.ndarray, ctx: dict) -> dict:
    fps = ctx["fps"]
    w = window_features(gen, stride=4)
    lengths = bone_lengths(gen, ctx["joints"])
    inside = ((lengths >= ctx["bone_lo"]) & (lengths <= ctx["bone_hi"])).all(1)
    speed = joint_speed(gen)
    acf = autocorrelation(gen)
    lag = int(2 * fps)
    last = gen[-int(60 * fps):]
    pos_std = absolute(last).reshape(len(last), -1).std(0).mean() / ctx["train_pos_std"]
    mean_speed = joint_speed(last).mean() / ctx["train_speed"]
    return {
        "frechet": frechet(ctx["pca"](w), ctx["held_pca"]),
        "bones_ok": float(inside.mean()),
        "teleports": float((speed > ctx["max_speed"]).mean()),
        "novelty": float(np.median(nearest_distance(w[::2], ctx["train_windows"]))),
        "max_acf_2s": float(acf[lag:len(acf) // 2].max()),
        "last_minute_std": float(pos_std),
        "last_minute_speed": float(mean_speed),
    }


def over_seeds(make, ctx: dict, seeds: int) -> dict:
    """The measures of `make(seed)` (10 minutes of motion) for seed 0, with the Fréchet
    distance and novelty averaged over seeds 0..seeds-1 (each seed's kept in the JSON)."""
    rows = [measures(make(s), ctx) for s in range(seeds)]
    out = dict(rows[0])
    for key in ("frechet", "novelty"):
        out[key + "_seeds"] = [r[key] for r in rows]
        out[key] = float(np.mean(out[key + "_seeds"]))
    out["frechet_seed0"] = rows[0]["frechet"]
    return out


def context(dataset: Path) -> tuple:
    seq = load_motion(dataset, HOLDOUT)
    meta, body = read_body_poses(dataset)
    found = (body[..., 2] > 0).sum(1) >= 5
    train_n = len(seq.features)
    held = seq.frame.to_features(fill_missing_joints(body, found))[train_n:]
    held_valid = found[train_n:]
    train_w = window_features(seq.features, 1, seq.valid)
    pca = PCA(train_w, 24)
    good = seq.features[seq.valid]
    lengths = bone_lengths(good, seq.frame.joints)
    speed = joint_speed(seq.features)[seq.valid[1:] & seq.valid[:-1]]
    ctx = {"fps": seq.frame.fps, "joints": seq.frame.joints, "pca": pca,
           "held_pca": pca(window_features(held, 1, held_valid)),
           "bone_lo": lengths.min(0), "bone_hi": lengths.max(0), "max_speed": speed.max(),
           "train_speed": speed.mean(), "train_windows": train_w,
           "train_pos_std": absolute(good).reshape(len(good), -1).std(0).mean(),
           "frame": seq.frame}
    return ctx, seq.features, seq.valid, held, held_valid


def skeleton_strip(features: np.ndarray, frame, fps: float, path: Path, count: int = 10,
                   every: float = 0.4) -> None:
    import cv2

    from vid2vid.data import N_KEYPOINTS, array_to_pose
    from vid2vid.render import render_pose

    kp = frame.to_keypoints(features)
    ks = [int(round(i * every * fps)) for i in range(count)]
    # One crop for every tile (the union of the shown poses' boxes): travel stays visible.
    pts = np.concatenate([kp[k][kp[k][:, 2] > 0, :2] for k in ks])
    pad = 0.15 * frame.torso
    x0, y0 = np.maximum(pts.min(0) - pad, 0).astype(int)
    x1, y1 = np.minimum(pts.max(0) + pad, frame.size).astype(int)
    tiles = []
    for k in ks:
        full = np.zeros((N_KEYPOINTS, 3), np.float32)
        full[:25] = kp[k]
        tile = np.ascontiguousarray(render_pose(array_to_pose(full), frame.size)[y0:y1, x0:x1])
        cv2.putText(tile, f"{k / fps:.1f}s", (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    (255, 255, 255), 1)
        tiles.append(np.pad(tile, ((0, 0), (0, 2), (0, 0)), constant_values=80))
    strip = np.concatenate(tiles, 1)
    cv2.imwrite(str(path), strip[..., ::-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--minutes", type=float, default=None,
                    help="training budget per model, all its restarts [5 per training]")
    ap.add_argument("--steps", type=int, default=None,
                    help="training steps per model instead of minutes (the same on a loaded CPU)")
    ap.add_argument("--work", type=Path, default=Path("benchmarks/.dream_cache"))
    ap.add_argument("--png", type=Path, default=Path("benchmarks/dream_cpu.png"))
    ap.add_argument("--seed", type=int, default=0, help="training seed of both models")
    ap.add_argument("--temperature", type=float, default=None,
                    help="motion noise scale when sampling both models (vid2vid dream's) "
                         "[the one each model's training picked]")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a MotionConfig field for both models, e.g. --set mbstd=4 (repeatable)")
    ap.add_argument("--no-sincos", action="store_true", help="skip baseline b (an ablation row)")
    ap.add_argument("--dream-seeds", type=int, default=8,
                    help="dreams (noise seeds 0..N-1) the Fréchet distance and novelty average")
    args = ap.parse_args()
    overrides = parse_overrides(ap, args.overrides)
    if args.dream_seeds < 1:
        ap.error("--dream-seeds must be at least 1")
    torch.manual_seed(0)
    ctx, train_f, train_valid, held, held_valid = context(args.dataset)
    fps = ctx["fps"]
    n = int(MINUTES_OF_MOTION * 60 * fps)
    times = np.arange(n) / fps
    rows, extra = {}, {}

    # Reference rows: real held-out motion against itself is the floor the others aim at.
    held_w = window_features(held, 1, held_valid)
    rows["real held-out (reference)"] = {
        "frechet": frechet(ctx["pca"](window_features(train_f, 4, train_valid)), ctx["held_pca"]),
        "novelty": float(np.median(nearest_distance(held_w, ctx["train_windows"]))),
    }
    t0 = time.time()
    rows["motion graph (baseline a)"] = over_seeds(
        lambda s: motion_graph(train_f, train_valid, n, seed=s), ctx, args.dream_seeds)
    extra["motion graph seconds"] = time.time() - t0

    steps = args.steps
    methods = (("dream (aligned, B-spline)", "aligned"),
               ("dream, sin/cos time (baseline b)", "sincos"))
    for name, embedding in methods[:1] if args.no_sincos else methods:
        out = args.work / embedding / "motion.pt"
        cfg = MotionConfig(**{"time_embedding": embedding, "holdout": HOLDOUT, "seed": args.seed,
                              **overrides})
        minutes = args.minutes or MINUTES_PER_TRAINING * cfg.restarts
        # The baseline gets the same steps the main model's minutes gave.
        result = train_motion([args.dataset], cfg, out, steps=steps,
                              minutes=None if steps else minutes, progress=False)
        steps = result.steps
        model = load_motion_model(out)
        G = model.generator
        temperature = model.temperature if args.temperature is None else args.temperature
        gen = G.sample(0, times, temperature)
        row = over_seeds(lambda s: gen if s == 0 else G.sample(s, times, temperature), ctx,
                         args.dream_seeds)
        row["train_seconds"], row["steps"], row["kept"] = result.seconds, result.steps, result.kept
        row["temperature"] = temperature
        row["judged_frechet"], row["judged_novelty"] = result.frechet, result.novelty
        row["novelty_floor"] = result.novelty_floor
        row["restart"], row["restarts"] = result.restart, result.restarts
        a, b = G.sample(0, np.arange(int(60 * 25)) / 25.0), G.sample(0, np.arange(60 * 50) / 50.0)
        row["fps_25_50_px"] = float(np.abs(a - b[::2]).max() * ctx["frame"].torso)
        t50 = np.arange(n * 2) / (2 * fps)
        best = min(_timed(lambda: G.sample(0, t50)) for _ in range(3))
        row["poses_per_s"] = len(t50) / best
        rows[name] = row
        if embedding == "aligned":
            skeleton_strip(gen, ctx["frame"], fps, args.png)
    args.png.parent.mkdir(parents=True, exist_ok=True)
    (args.work / "bench_dream.json").write_text(json.dumps({"rows": rows, **extra}, indent=1))
    print(table(rows))


def parse_overrides(ap: argparse.ArgumentParser, items: list[str]) -> dict:
    """`--set KEY=VALUE`s -> MotionConfig fields, each typed as the field's default."""
    defaults = MotionConfig().to_dict()
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key not in defaults:
            ap.error(f"--set {item}: want KEY=VALUE with KEY a MotionConfig field")
        if key in ("holdout", "seed"):
            ap.error(f"--set {key}: the bench fixes the held-out share; use --seed for the seed")
        kind = type(defaults[key])
        try:
            if kind is bool:        # bool("false") is True
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                out[key] = value.lower() in ("true", "1")
            else:
                out[key] = (tuple(float(v) for v in value.split(",")) if kind is tuple
                            else kind(value))
        except ValueError:
            ap.error(f"--set {item}: {key} wants a {kind.__name__}")
    return out


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def table(rows: dict) -> str:
    cols = [("frechet", "Fréchet (16-frame windows), mean of seeds ↓", "{:.2f}"),
            ("frechet_seed0", "Fréchet, seed 0", "{:.2f}"),
            ("bones_ok", "bones in training range ↑", "{:.2%}"),
            ("teleports", "teleport frames ↓", "{:.2%}"),
            ("novelty", "novelty (median NN dist.), mean of seeds", "{:.3f}"),
            ("max_acf_2s", "max autocorr. > 2 s ↓", "{:.2f}"),
            ("last_minute_std", "last-minute pose std / train", "{:.2f}"),
            ("last_minute_speed", "last-minute speed / train", "{:.2f}"),
            ("fps_25_50_px", "25 vs 50 fps (max px)", "{:.2g}"),
            ("train_seconds", "training s", "{:.0f}"),
            ("steps", "steps", "{:d}"),
            ("kept", "kept snapshot", "{:d}"),
            ("temperature", "temperature", "{:g}"),
            ("poses_per_s", "poses/s", "{:,.0f}")]
    lines = ["| method | " + " | ".join(c[1] for c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for name, row in rows.items():
        cells = [fmt.format(row[k]) if k in row else "–" for k, _, fmt in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
