"""Label-to-scene generation: a folder of label maps drives a model trained on scenes.

    LABELS_DIR/*.png (8-bit class IDs) [+ instance maps] --the target's centred geometry-->
      one-hot classes + instance boundaries (vid2vid.tasks.LabelTask) --> G_ema --> mp4

The labels need no real frames, so a test sequence whose pictures were never
seen (NVIDIA vid2vid's `test_A/<seq>`) renders as a video. Instance maps come
from `--instances DIR`, or, in vid2vid's layout, from the sibling `*_inst`
folder of the same sequence (`test_A/seq` -> `test_inst/seq`). A model trained
with instance maps but driven without them gets class boundaries instead, and
says so once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from infer.driving import Driving, TransferOptions
from infer.trained import TrainedGenerator
from vid2vid.data import centered_geometry
from vid2vid.errors import UserError
from vid2vid.label_maps import read_instance_png, read_label_folder, read_label_png

_NO_KEYPOINTS = np.zeros((137, 3), np.float32)


def instance_folder(labels: Path, given: str | None) -> Path | None:
    """`--instances`, else vid2vid's sibling layout (`X_A/seq` -> `X_inst/seq`), else None."""
    if given is not None:
        folder = Path(given)
        if not folder.is_dir():
            raise UserError(f"--instances {folder} is not a folder; pass the folder of instance "
                            "maps that goes with the labels, or leave it out")
        return folder
    parent = labels.parent
    if parent.name.endswith("_A"):
        sibling = parent.parent / (parent.name[:-2] + "_inst") / labels.name
        if sibling.is_dir():
            return sibling
    return None


def label_driving(source: Path, target_root: Path, meta: dict, model: TrainedGenerator,
                  options: TransferOptions, progress: bool) -> Driving:
    """A folder of label maps -> the model's maps, one per label file, in natural order."""
    task = model.task
    if not source.is_dir():
        raise UserError(f"SOURCE {source} is not a folder; a scene model is driven by a folder "
                        "of label maps (8-bit class-ID PNGs, e.g. test_A/<sequence>)")
    files = read_label_folder(source)
    inst_dir = instance_folder(source, options.instances)
    inst_files = read_label_folder(inst_dir, "instance") if inst_dir else None
    if inst_files is not None and len(inst_files) != len(files):
        raise UserError(f"{inst_dir} holds {len(inst_files)} instance maps but {source} "
                        f"{len(files)} label maps; pass the matching folder with --instances")
    if task.instances and inst_files is None:
        print(f"note: no instance maps for {source}; the model was trained with instance "
              "boundaries, class boundaries stand in (pass --instances DIR)")
    if options.max_frames is not None:
        files = files[:options.max_frames]
        inst_files = inst_files[:options.max_frames] if inst_files else None
    fps = float(options.fps or meta.get("fps") or 30.0)
    size = model.frame_size

    def maps() -> Iterator[np.ndarray]:
        geometry = None
        for k, path in enumerate(files):
            labels = read_label_png(path)
            if geometry is None:
                geometry = centered_geometry((labels.shape[1], labels.shape[0]), size)
            stored = {"labels": geometry.image(labels, cv2.INTER_NEAREST)}
            if inst_files is not None:
                ids = read_instance_png(inst_files[k])
                stored["instances"] = geometry.image(ids, cv2.INTER_NEAREST)
            elif task.instances:
                stored["instances"] = stored["labels"]
            yield task.maps(_NO_KEYPOINTS, stored, size)

    return Driving(source, fps, len(files), maps, None, ("labels", "result"))
