"""Does mediapipe find the synthetic dancer of `vid2vid sample`? Detection rate and error.

    python benchmarks/bench_sample_detection.py [--seconds 4] [--size 256] [--seed 0]

For each motion: renders a sample, runs `preprocess_video` on it with the
detector (no --keypoints, no flow), and compares the detected BODY_25 points
with the ground truth the sample wrote. Prints the detection rate (frames where
the detector itself found a person; interpolated frames do not count) and the
mean distance between matching keypoints (both present) over the true torso
length (neck to mid-hip).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from preprocess.dataset_writer import PreprocessOptions
    from preprocess.pose_pipeline import preprocess_video
    from preprocess.synthetic_dancer import MOTIONS, SampleOptions, write_sample
    from vid2vid.dataset_dir import frame_path, read_meta
    from vid2vid.pose import BODY, read_openpose_json

    for motion in MOTIONS:
        with tempfile.TemporaryDirectory() as tmp:
            video = Path(tmp) / f"{motion}.mp4"
            sample = write_sample(video, SampleOptions(motion=motion, seconds=args.seconds,
                                                       size=args.size, seed=args.seed))
            out = Path(tmp) / "ds"
            preprocess_video(video, out, PreprocessOptions(flow=None), progress=False)
            flags = read_meta(out)["per_frame"]
            errors, detected = [], 0
            for k in range(sample.frames):
                if not flags["person"][k] or flags["interpolated"][k]:
                    continue
                detected += 1
                truth = read_openpose_json(sample.keypoints / f"{k:06d}.json").body
                found = read_openpose_json(frame_path(out, "pose", k)).body
                torso = np.linalg.norm(truth[BODY["Neck"], :2] - truth[BODY["MidHip"], :2])
                both = (truth[:, 2] > 0) & (found[:, 2] > 0)
                errors.append(np.linalg.norm(truth[both, :2] - found[both, :2], axis=1) / torso)
            err = np.concatenate(errors).mean() if errors else float("nan")
            print(f"{motion:7s} {args.size}px {sample.frames} frames: detection rate "
                  f"{detected / sample.frames:6.1%}, keypoint error {err:.3f} torso lengths")


if __name__ == "__main__":
    main()
