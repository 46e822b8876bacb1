"""Rendered dreams: does the generator draw the person the motion model dreamed? (issue 14)

    python benchmarks/bench_dream_render.py RUN [--motion MOTION.pt] [--seconds 60]
        [--seeds 0,1,2] [--work DIR] [--png FILE]

For each seed `vid2vid dream RUN` runs twice: with the hands and face lent by
the training frames (infer.details, the default) and with the body alone
(`--body-only`, what dream wrote before). mediapipe then re-detects the body
on every rendered frame, each frame on its own (infer.redetect, as `vid2vid
evaluate`'s pose columns: the whole frame, and a square crop around the
dreamed person's box): the share of frames where a person is found and the
distance of the found body to the dreamed one, in dreamed torso lengths.
Prints a markdown table, writes JSON and a picture (the dreamed maps with
details | body only | with details, a few instants of seed 0).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dream.command import dream
from infer.redetect import PoseProbe
from vid2vid import metrics
from vid2vid.data import array_to_pose, centered_geometry, pose_to_array, render_maps
from vid2vid.pose import read_openpose_json
from vid2vid.video import probe, read_frames

BOX_MARGIN = 0.1        # as vid2vid evaluate's person box
VARIANTS = (("body only", False), ("hands and face lent", True))


def redetect(video: Path, pose_dir: Path, probe_: PoseProbe, size: tuple[int, int]) -> dict:
    """Re-detection of the dreamed body on each rendered frame (module docstring)."""
    info = probe(video, max_size=100_000, fps=None)
    poses = [read_openpose_json(p) for p in sorted(pose_dir.glob("*.json"))]
    geometry = None
    found, found_box, driving = [], [], []
    for k, rgb in enumerate(read_frames(info)):
        if geometry is None:
            geometry = centered_geometry(size, rgb.shape[:2])
        kp = geometry.keypoints(pose_to_array(poses[k]))
        pose = array_to_pose(kp)
        box = metrics.pose_boxes([pose], (rgb.shape[0], rgb.shape[1]), BOX_MARGIN)
        whole, in_box = probe_(rgb, tuple(box[0].tolist()))
        found.append(whole)
        found_box.append(in_box)
        driving.append(pose)
    pc, pcb = metrics.pose_consistency(found, driving), metrics.pose_consistency(found_box,
                                                                                 driving)
    return {"frames": len(driving), "pose_found": pc.detection_rate,
            "pose_distance": pc.distance, "pose_found_person": pcb.detection_rate,
            "pose_distance_person": pcb.distance}


def picture(folders: dict[str, Path], videos: dict[str, Path], size: tuple[int, int],
            path: Path, instants: int = 5) -> None:
    import cv2

    lent = folders["hands and face lent"]
    files = sorted(lent.glob("*.json"))
    ks = np.linspace(0, len(files) - 1, instants + 2).round().astype(int)[1:-1]
    frames = {name: list(read_frames(probe(v, max_size=100_000, fps=None))) for name, v in
              videos.items()}
    h, w = next(iter(frames.values()))[0].shape[:2]
    geometry = centered_geometry(size, (h, w))
    rows = []
    for k in ks:
        kp = geometry.keypoints(pose_to_array(read_openpose_json(files[k])))
        tiles = [render_maps(kp, (h, w))] + [frames[name][k] for name, _ in VARIANTS]
        rows.append(np.concatenate(tiles, 1))
    image = np.concatenate(rows, 0)
    image = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image[..., ::-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a vid2vid train run of a pose dataset")
    ap.add_argument("--motion", default=None, help="motion.pt [the one vid2vid dream finds]")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seeds", default="0,1,2", help="dream seeds, comma-separated")
    ap.add_argument("--work", type=Path, default=Path("benchmarks/.dream_render_cache"))
    ap.add_argument("--png", type=Path, default=Path("benchmarks/dream_render_cpu.jpg"))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    probe_ = PoseProbe()
    rows: dict[str, list[dict]] = {name: [] for name, _ in VARIANTS}
    for seed in seeds:
        folders, videos = {}, {}
        for name, details in VARIANTS:
            out = args.work / f"seed{seed}-{'details' if details else 'body'}.mp4"
            t0 = time.time()
            result = dream(args.run, seconds=args.seconds, seed=seed, out=out,
                           motion=args.motion, device="cpu", progress=False, details=details)
            size = read_size(result.poses)
            row = redetect(result.video, result.poses, probe_, size)
            row.update(seed=seed, render_seconds=result.seconds,
                       seconds=time.time() - t0, parts=list(result.details))
            rows[name].append(row)
            folders[name], videos[name] = result.poses, result.video
            print(f"seed {seed}, {name}: {row}", flush=True)
        if seed == seeds[0]:
            picture(folders, videos, size, args.png)
    probe_.close()
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "bench_dream_render.json").write_text(json.dumps(rows, indent=1))
    print(table(rows))


def read_size(pose_dir: Path) -> tuple[int, int]:
    from infer.pose_driving import read_pose_clip

    _, size = read_pose_clip(pose_dir)
    return size


def table(rows: dict[str, list[dict]]) -> str:
    lines = ["| dream render | seeds | pose found / distance (whole frame) | "
             "pose found / distance (person box) |", "|---|---|---|---|"]
    for name, rs in rows.items():
        seeds = ", ".join(str(r["seed"]) for r in rs)
        cells = []
        for found, dist in (("pose_found", "pose_distance"),
                            ("pose_found_person", "pose_distance_person")):
            cells.append(", ".join(f"{r[found]:.1%} / {r[dist]:.3f}" for r in rs))
        lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
