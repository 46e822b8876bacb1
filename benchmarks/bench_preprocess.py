"""Preprocessing speed: end to end vs a bare mediapipe Holistic loop, same frames.

    python benchmarks/bench_preprocess.py [VIDEO] [--frames 300]

End to end = `preprocess_video` on the first N frames into a fresh folder
(decode, Holistic pose + mask, DIS flow, edges, all files written, start-up
included). Bare = the same Holistic settings over the same N frames already
decoded in memory: the floor that detection alone sets. Prints both rates and
their ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def bare_holistic(frames: list[np.ndarray]) -> float:
    from preprocess.detect import HolisticDetector

    detector = HolisticDetector()
    detector(frames[0])  # the first call loads the graph: time the steady state
    t = time.perf_counter()
    for f in frames:
        detector._holistic.process(f)
    dt = time.perf_counter() - t
    detector.close()
    return len(frames) / dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?",
                        default=os.environ.get("VID2VID_TEST_VIDEO", "../shared/data/dancer.avi"))
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()

    from preprocess.dataset_writer import PreprocessOptions
    from preprocess.pose_pipeline import preprocess_video
    from vid2vid.video import probe, read_frames

    src = Path(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        summary = preprocess_video(src, Path(tmp) / "ds", PreprocessOptions(end=str(args.frames)),
                                   progress=False)
        e2e = summary.frames / (time.perf_counter() - t)
    info = probe(src, 1024, None)
    frames = list(read_frames(info, 0, args.frames))
    bare = bare_holistic(frames)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
    print(f"video: {src.name}, {len(frames)} frames at {info.size[0]}x{info.size[1]}")
    print(f"end to end (pose+mask+flow+edges+writes, start-up included): {e2e:6.1f} frames/s")
    print(f"bare mediapipe Holistic loop (frames in memory):            {bare:6.1f} frames/s")
    print(f"ratio end-to-end / bare: {e2e / bare:.2f}")


if __name__ == "__main__":
    main()
