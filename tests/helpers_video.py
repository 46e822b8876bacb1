"""Small videos and OpenPose files made inside tests (no downloads, fixed seeds)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vid2vid.pose import Pose, write_openpose_json


def real_video_path() -> Path:
    """The real dance video named by VID2VID_TEST_VIDEO, or skip."""
    path = os.environ.get("VID2VID_TEST_VIDEO")
    if not path or not Path(path).exists():
        pytest.skip("VID2VID_TEST_VIDEO is not set to an existing video (see shared/data/README.md)")
    return Path(path)


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """RGB uint8 frames -> an H.264 mp4 (or whatever the suffix says)."""
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, macro_block_size=2,
                                         quality=8, pix_fmt_out="yuv420p")
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()
    return path


def noise_frames(n: int, w: int = 96, h: int = 64, seed: int = 0) -> list[np.ndarray]:
    """Smooth random textures drifting sideways: no person, but real motion for flow."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w + n * 2, 3), dtype=np.uint8)
    import cv2

    base = cv2.GaussianBlur(base, (7, 7), 0)
    return [np.ascontiguousarray(base[:, 2 * i:2 * i + w]) for i in range(n)]


def cut_clip(src: Path, dst: Path, frames: int) -> Path:
    """The first `frames` frames of `src`, re-encoded losslessly enough for detection."""
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(src), "-frames:v", str(frames),
                    "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", "-an", str(dst)],
                   check=True)
    return dst


def synthetic_pose(t: float, w: int, h: int) -> Pose:
    """A plausible standing BODY_25 pose swaying with t, inside a w x h frame."""
    pose = Pose()
    cx = w / 2 + 5 * np.sin(t)
    rows = {  # (index, dx, dy) relative to the centre top, in fractions of h
        0: (0, 0.15), 1: (0, 0.25), 2: (-0.08, 0.25), 3: (-0.12, 0.38), 4: (-0.13, 0.5),
        5: (0.08, 0.25), 6: (0.12, 0.38), 7: (0.13, 0.5), 8: (0, 0.52), 9: (-0.05, 0.52),
        10: (-0.06, 0.7), 11: (-0.06, 0.88), 12: (0.05, 0.52), 13: (0.06, 0.7),
        14: (0.06, 0.88), 15: (-0.02, 0.13), 16: (0.02, 0.13), 17: (-0.04, 0.14),
        18: (0.04, 0.14), 19: (0.08, 0.92), 20: (0.09, 0.91), 21: (0.05, 0.9),
        22: (-0.08, 0.92), 23: (-0.09, 0.91), 24: (-0.05, 0.9),
    }
    for i, (dx, dy) in rows.items():
        pose.body[i] = (cx + dx * h, dy * h, 0.9)
    return pose


def write_pose_folder(folder: Path, n: int, w: int, h: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_openpose_json(folder / f"clip_{i:012d}_keypoints.json", synthetic_pose(i / 5, w, h))
    return folder


def figure_frame(pose: Pose, w: int, h: int, seed: int = 0) -> np.ndarray:
    """A synthetic person: thick coloured limbs drawn from `pose` over a fixed texture."""
    import cv2

    from vid2vid.pose import BODY_LIMBS

    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(rng.integers(60, 200, (h, w, 3), dtype=np.uint8), (9, 9), 0)
    for k, (a, b) in enumerate(BODY_LIMBS):
        pa, pb = pose.body[a], pose.body[b]
        if pa[2] > 0 and pb[2] > 0:
            color = (40 + 9 * k % 200, 200 - 7 * k % 150, 90 + 13 * k % 160)
            cv2.line(bg, (int(pa[0]), int(pa[1])), (int(pb[0]), int(pb[1])), color,
                     max(2, h // 16))
    return bg


def make_synthetic_dataset(root: Path, n: int = 60, w: int = 64, h: int = 64,
                           name: str = "figure", seed: int = 0) -> Path:
    """A complete dataset directory of a moving synthetic figure (poses imported as JSON)
    over the still texture `seed` draws."""
    from preprocess.dataset_writer import PreprocessOptions
    from preprocess.pose_pipeline import preprocess_video

    import cv2

    frames_dir = root / f"{name}_frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    poses_dir = root / f"{name}_openpose"
    poses_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pose = synthetic_pose(i / 3, w, h)
        write_openpose_json(poses_dir / f"{i:06d}.json", pose)
        cv2.imwrite(str(frames_dir / f"{i:06d}.png"), figure_frame(pose, w, h, seed)[..., ::-1])
    out = root / name
    # the renderer's exact keypoints: nothing to smooth, and the frames show them
    preprocess_video(frames_dir, out, PreprocessOptions(keypoints=str(poses_dir), smooth=False),
                     progress=False)
    return out
