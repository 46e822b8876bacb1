"""The dataset directory: the files `preprocess` writes and `train` reads.

    meta.json          see `write_meta` / README "Dataset directory"
    frames/NNNNNN.jpg  RGB frames at the stored size
    pose/NNNNNN.json   OpenPose JSON in stored-frame pixels
    seg/NNNNNN.png     person mask, 8-bit (255 = person)
    edges/NNNNNN.png   Canny edges + face sketch, 8-bit
    flow/NNNNNN.png    backward flow N -> N-1, KITTI 16-bit (see vid2vid.flow_png); none for 0
    labels/NNNNNN.png  label task: 8-bit class IDs (no pose/ or edges/ then)
    instances/NNNNNN.png  label task, optional: 16-bit instance IDs
    maps/NNNNNN.jpg    optional previews (pose over the darkened frame)

Every file is written to a temporary name and renamed into place, so a file
that exists is complete. `meta.json` has `"complete": true` only once every
frame is stored; a run that stopped early leaves `"complete": false` and a
`.progress.jsonl` journal from which the next run resumes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vid2vid.errors import UserError

FORMAT_VERSION = 1
META = "meta.json"
PROGRESS = ".progress.jsonl"
RAW_POSES = ".pose_raw.npy"     # pose --smooth: the detections, until meta.json is complete
SUBDIRS = ("frames", "pose", "seg", "edges", "flow")
# Every folder any task writes (labels/ and instances/: the label task), for clean-ups.
ALL_SUBDIRS = (*SUBDIRS, "labels", "instances", "maps")


def frame_name(index: int) -> str:
    return f"{index:06d}"


def frame_path(root: Path, kind: str, index: int) -> Path:
    suffix = {"frames": ".jpg", "pose": ".json", "maps": ".jpg"}.get(kind, ".png")
    return root / kind / (frame_name(index) + suffix)


def write_json_atomic(path: Path, data: dict) -> None:
    """Writes JSON to `path` through a temp file, fsync and rename (never half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_meta(root: Path) -> dict | None:
    """meta.json of a dataset directory, or None if there is none."""
    path = Path(root) / META
    if not path.exists():
        return None
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is unreadable ({e}); delete it and run vid2vid preprocess "
                        "again") from None
    if not isinstance(meta, dict) or meta.get("format") != "vid2vid-dataset":
        raise UserError(f"{path} is not a vid2vid dataset meta.json")
    if meta.get("version", 0) > FORMAT_VERSION:
        raise UserError(f"{path} was written by a newer vid2vid (format {meta['version']}); "
                        "upgrade vid2vid")
    return meta


def load_dataset(root: Path) -> dict:
    """meta.json of a finished dataset; a clear error for anything else."""
    meta = read_meta(root)
    if meta is None:
        raise UserError(f"{root} is not a dataset directory (no {META}); create one with "
                        "vid2vid preprocess VIDEO")
    if not meta.get("complete"):
        raise UserError(f"{root} is an unfinished dataset; run vid2vid preprocess "
                        f"{meta.get('source', {}).get('path', 'VIDEO')} again to finish it")
    return meta
