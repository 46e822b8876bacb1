"""Transfer from a body-only SOURCE: do the lent hands and face help? (infer.details)

    python benchmarks/bench_transfer_details.py RUN DATA [--work DIR] [--png FILE]

OpenPose writes BODY_25 alone unless run with `--hand --face`, so a folder of
its JSON drives a model, trained on maps that always draw hands and a face,
with maps it never saw. The source here is DATA's own held-out poses (the
frames `vid2vid train` kept out) written three ways: as stored (body, hands,
face: the reference), body only with `vid2vid transfer --no-lend` (what
transfer did before), and body only with the hands and face lent by DATA's
frames (the default). Each drives RUN through `vid2vid transfer`; mediapipe
then re-detects the body on every result frame, each on its own, the whole
frame and a square crop round the driving person's box, as
bench_dream_render.py does: the share of frames with a person and the
distance of the found body to the driving one, in torso lengths. Prints a
markdown table and writes a picture (a row of results per variant).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dream_render import redetect  # noqa: E402  (a sibling script, not a package)
from infer.driving import TransferOptions  # noqa: E402
from infer.pose_driving import write_pose_clip  # noqa: E402
from infer.redetect import PoseProbe  # noqa: E402
from infer.transfer import transfer  # noqa: E402
from vid2vid.data import array_to_pose, pose_to_array  # noqa: E402
from vid2vid.dataset_dir import frame_path, load_dataset  # noqa: E402
from vid2vid.pose import read_openpose_json, write_openpose_json  # noqa: E402
from vid2vid.runs import read_run_config  # noqa: E402
from vid2vid.video import probe, read_frames  # noqa: E402

VARIANTS = (("stored (body, hands, face)", "stored", True),
            ("body only, --no-lend", "body", False),
            ("body only, lent (default)", "body", True))


def write_source(data: Path, meta: dict, first: int, stop: int, folder: Path,
                 body_only: bool) -> Path:
    """DATA's poses first..stop-1 as a pose folder (with clip.yaml); hands and face dropped
    when `body_only`."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(first, stop):
        kp = pose_to_array(read_openpose_json(frame_path(data, "pose", k)))
        if body_only:
            kp[25:] = 0
        write_openpose_json(folder / f"{k - first:06d}.json", array_to_pose(kp))
    write_pose_clip(folder, float(meta["fps"]), tuple(meta["size"]))
    return folder


def picture(videos: dict[str, Path], png: Path, picks=(40, 120, 200, 280)) -> None:
    """Rows: the variants' results; columns: frames `picks`; twice the size."""
    import cv2

    rows = []
    for video in videos.values():
        info = probe(video, max_size=100_000, fps=None)
        frames = [next(iter(read_frames(info, k, k + 1))) for k in picks]
        rows.append(np.concatenate(frames, 1))
    grid = np.concatenate(rows, 0)
    grid = cv2.resize(grid, (grid.shape[1] * 2, grid.shape[0] * 2),
                      interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(png), grid[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a vid2vid train run of DATA")
    ap.add_argument("data", type=Path, help="the pose dataset the run was trained on")
    ap.add_argument("--work", type=Path, default=Path("benchmarks/.transfer_details_cache"))
    ap.add_argument("--png", type=Path, default=Path("benchmarks/transfer_details_cpu.jpg"))
    args = ap.parse_args()
    meta = load_dataset(args.data)
    n = int(meta["frames"])
    # The held-out frames, as vid2vid.data.index_dataset keeps them out of training.
    first = int(np.floor(n * (1.0 - float(read_run_config(args.run)["holdout"]))))
    probe_ = PoseProbe()
    lines = ["| driving SOURCE | pose found / distance (whole frame) | "
             "pose found / distance (person box) |", "|---|---|---|"]
    videos = {}
    for name, kind, lend in VARIANTS:
        source = write_source(args.data, meta, first, n, args.work / kind, kind == "body")
        out = args.work / f"{kind}-{'lend' if lend else 'nolend'}.mp4"
        result = transfer(source, args.data, out,
                          TransferOptions(checkpoint=str(args.run), lend=lend, device="cpu"),
                          progress=False)
        # Against the source's own body: the stored poses (the body is the same in all three).
        row = redetect(result.output, args.work / "stored" if kind == "body" else source,
                       probe_, tuple(meta["size"]))
        videos[name] = result.output
        lines.append(f"| {name} | {row['pose_found']:.1%} / {row['pose_distance']:.3f} | "
                     f"{row['pose_found_person']:.1%} / {row['pose_distance_person']:.3f} |")
        print(lines[-1], flush=True)
    probe_.close()
    picture(videos, args.png)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
