"""The label-to-scene task's data import: frames + per-frame label maps -> a dataset directory.

Semantic label maps are not detected from the frames (as poses are): they come
with the data, one 8-bit class-ID PNG per frame (Cityscapes' `*_labelIds.png`,
or NVIDIA vid2vid's `train_A/<seq>/`), optionally with instance-ID PNGs. This
module copies them beside the frames in the dataset layout the pose pipeline
writes (`vid2vid.dataset_dir`), so training, transfer and evaluation read a
scene dataset exactly as they read a dancer:

    frames/NNNNNN.jpg     RGB frames at the stored size
    labels/NNNNNN.png     8-bit class IDs, resized with nearest neighbour (IDs are never blended)
    instances/NNNNNN.png  16-bit instance IDs, when instance maps were given
    seg/NNNNNN.png        8-bit, 255 on the foreground classes: the target of the
                          generator's foreground mask (persons and vehicles for Cityscapes)
    flow/NNNNNN.png       backward flow N -> N-1 of the frames, as for poses

There is no pose/ or edges/ folder. Files are written to temporary names and
renamed into place, and a frame is appended to `.progress.jsonl` only once all
its files exist, so an interrupted import resumes where it stopped, as
the other pipelines do (with the helpers of `preprocess.dataset_writer`).

Label maps are matched to the source's frames by sorted (natural) order: one
map per frame of the frame folder, or per frame of the video at the chosen
--fps. --start/--end then pick the same range out of both.

The map helpers at the end (`one_hot`, `instance_boundary`) are what the
generator is conditioned on: vid2vid's one-hot label channels plus the
instance boundaries, which tell apart two cars the labels alone merge.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from preprocess.dataset_writer import (JPEG_QUALITY, Journal, PreprocessOptions, Summary,
                                       WarningLog, base_meta, check_truncation, clear_dataset,
                                       complete_meta, imwrite_atomic, input_sha256, make_dirs,
                                       prepare_output, probe_range, progress_total,
                                       read_journal)
from preprocess.flow import make_flow
from vid2vid.dataset_dir import META, PROGRESS, frame_path, read_meta, write_json_atomic
from vid2vid.errors import UserError
from vid2vid.flow_png import write_flow_png
from vid2vid.label_maps import (CITYSCAPES_FG_CLASSES, CITYSCAPES_NUM_CLASSES, read_instance_png,
                                 read_label_folder, read_label_png)
from vid2vid.png import write_png
from vid2vid.video import FOLDER_FPS, VideoInfo, list_images, natural_key, read_frames

LABEL_DIRS = ("frames", "labels", "seg", "flow")  # plus "instances" when instance maps are given


@dataclass
class LabelSummary(Summary):
    """A `Summary` whose line speaks of classes, not of a person found."""

    classes: int = 0
    fps: float = 0.0             # the dataset's frame rate
    fps_assumed: bool = False    # a frame folder without --fps: the rate is FOLDER_FPS

    def line(self) -> str:
        if self.skipped:
            return f"{self.out}: already complete ({self.frames} frames); nothing to do"
        rate = self.frames / max(self.seconds, 1e-9)
        # Frame folders carry no rate; say which one the dataset got (Cityscapes is 17 fps).
        assumed = (f"; {self.fps:g} fps assumed for a frame folder, pass --fps to set it"
                   if self.fps_assumed else "")
        truncated = self.truncation_note()
        return (f"{self.out}: {self.frames} frames with label maps ({self.classes} classes "
                f"present), {self.seconds:.1f} s, {rate:.1f} frames/s{assumed}{truncated}")


# --------------------------------------------------------------------------- import

def _classes(options: PreprocessOptions) -> tuple[int, tuple[int, ...]]:
    """(num_classes, fg_classes) with Cityscapes' defaults, checked once."""
    n = CITYSCAPES_NUM_CLASSES if options.num_classes is None else int(options.num_classes)
    if not 1 <= n <= 256:
        raise UserError(f"--num-classes {n} is out of range; 8-bit label maps hold 1 to 256 "
                        "classes")
    fg = CITYSCAPES_FG_CLASSES if options.fg_classes is None else tuple(options.fg_classes)
    bad = [c for c in fg if not 0 <= int(c) < n]
    if bad:
        raise UserError(f"foreground class {bad[0]} is not below --num-classes {n}; pass "
                        f"--fg-classes IDs between 0 and {n - 1}")
    return n, tuple(sorted({int(c) for c in fg}))


class _MapSource:
    """The label (and instance) map of each decoded frame, checked and at the stored size."""

    def __init__(self, source: Path, info: VideoInfo, labels: list[Path],
                 instances: list[Path] | None, num_classes: int):
        self.source, self.info, self.num_classes = source, info, num_classes
        self.labels, self.instances = labels, instances
        # Frame i of a folder read at --fps is image int(i * step) (vid2vid.video.read_frames).
        self.step = FOLDER_FPS / info.fps if info.is_folder else 1.0

    def index(self, i: int) -> int:
        j = int(i * self.step)
        if j >= len(self.labels):
            raise UserError(f"{self.labels[0].parent} holds {len(self.labels)} label maps but "
                            f"{self.source} has more frames; pass one label PNG per frame")
        return j

    def _fit(self, image: np.ndarray, path: Path, kind: str) -> np.ndarray:
        w, h = self.info.source_size
        if image.shape != (h, w):
            raise UserError(f"{path} is {image.shape[1]}x{image.shape[0]} but the frames of "
                            f"{self.source} are {w}x{h}; {kind} maps must have the frames' size")
        if self.info.size != self.info.source_size:
            image = cv2.resize(image, self.info.size, interpolation=cv2.INTER_NEAREST_EXACT)
        return image

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(labels `[h, w]` uint8, instances `[h, w]` uint16 or None) of decoded frame i."""
        j = self.index(i)
        path = self.labels[j]
        labels = read_label_png(path)
        top = int(labels.max(initial=0))
        if top >= self.num_classes:
            raise UserError(f"{path} holds class ID {top} but there are {self.num_classes} "
                            f"classes (IDs 0-{self.num_classes - 1}); pass --num-classes "
                            f"{top + 1} or fix the map")
        labels = self._fit(labels, path, "label")
        inst = None
        if self.instances is not None:
            inst = self._fit(read_instance_png(self.instances[j]), self.instances[j], "instance")
        return labels, inst


def _check_counts(source: Path, info: VideoInfo, labels_dir: Path, labels: list[Path],
                  instances_dir: Path | None, instances: list[Path] | None) -> None:
    """Refuses a map count that cannot match the frames before anything is written.

    A folder's frame count is exact; a video's is the container's estimate, so
    here only a clear mismatch is refused and the exact count is checked once
    the video has been decoded to its end.
    """
    if instances is not None and len(instances) != len(labels):
        raise UserError(f"{instances_dir} holds {len(instances)} instance maps but {labels_dir} "
                        f"holds {len(labels)} label maps; pass one instance PNG per label map")
    if info.is_folder:
        n = len(list_images(source))
        if len(labels) != n:
            raise UserError(f"{labels_dir} holds {len(labels)} label maps but {source} holds "
                            f"{n} frames; pass one label PNG per frame")
    elif info.expected_frames:
        est = info.expected_frames
        if abs(len(labels) - est) > max(2, 0.02 * est):
            raise UserError(f"{labels_dir} holds {len(labels)} label maps but {source} has about "
                            f"{est} frames at {info.fps:g} fps; pass one label PNG per frame "
                            "(at the --fps you choose)")


def import_labels(source: Path, out: Path, options: PreprocessOptions,
                  overwrite: bool = False, progress: bool = True) -> LabelSummary:
    """Writes the label dataset of one sequence; resumes or returns at once when work exists.

    `source` is a video file or a folder of frames; `options.labels` the folder of
    per-frame class-ID PNGs and `options.instances` an optional folder of
    instance-ID PNGs, both matched to the frames by sorted order.
    """
    t0 = time.time()
    source, out = Path(source), Path(out)
    if options.task != "labels":
        raise ValueError(f"import_labels needs options.task == 'labels', got {options.task!r}")
    if options.labels is None:
        raise UserError("the labels task needs --labels FOLDER: one 8-bit class-ID PNG per frame")
    num_classes, fg_classes = _classes(options)
    labels_dir = Path(options.labels)
    instances_dir = None if options.instances is None else Path(options.instances)
    label_files = read_label_folder(labels_dir, "label")
    instance_files = None if instances_dir is None else read_label_folder(instances_dir,
                                                                          "instance")
    info, first, stop = probe_range(source, options)
    _check_counts(source, info, labels_dir, label_files, instances_dir, instance_files)
    maps = _MapSource(source, info, label_files, instance_files, num_classes)
    if maps.step * first < len(label_files):
        maps.read(first)  # a wrong size or class ID stops here, before anything is written

    identity = {"sha256": input_sha256(source), "options": options.to_dict()}
    # The options name the label folders, not their contents: hash those too, so edited
    # maps are not mistaken for the finished dataset of the old ones.
    maps_sha = {"sha256": input_sha256(labels_dir),
                "instances_sha256": None if instances_dir is None else input_sha256(instances_dir)}
    old = read_meta(out) if out.is_dir() else None
    if (old is not None and old.get("source", {}).get("sha256") == identity["sha256"]
            and old.get("options") == identity["options"]
            and {k: old.get("labels", {}).get(k) for k in maps_sha} != maps_sha):
        if old.get("complete") and not overwrite:
            raise UserError(f"{out} holds a dataset of these frames made from other label maps "
                            f"(the files in {labels_dir} changed); pass --overwrite to rebuild it")
        # An interrupted import of other maps (say, after fixing the map it stopped at) is
        # only a partial cache: start over rather than mix old and new maps.
        if not old.get("complete"):
            print(f"{out}: the label maps changed since the interrupted run; starting over",
                  flush=True)
        clear_dataset(out)
    existing = prepare_output(out, identity, overwrite)
    if existing is not None and existing.get("complete"):
        return LabelSummary(out, existing["frames"], existing["frames"], 0, time.time() - t0,
                            skipped=True,
                            classes=len(existing.get("labels", {}).get("class_ids", [])))
    if existing is None:  # a fresh start: no journal of an earlier dataset may be resumed
        (out / PROGRESS).unlink(missing_ok=True)
    make_dirs(out, False, LABEL_DIRS + (("instances",) if instance_files is not None else ()))

    warn = WarningLog()
    flow = None if options.flow is None else make_flow(options.flow, warn)
    meta = base_meta("labels", source, info, identity, first, stop, flow and flow.name)
    meta["labels"] = {
        "num_classes": num_classes, "fg_classes": list(fg_classes),
        "instances": instance_files is not None, "class_ids": [],
        "source": str(labels_dir.resolve()),
        "instances_source": None if instances_dir is None else str(instances_dir.resolve()),
        **maps_sha,
    }
    write_json_atomic(out / META, meta)

    resume = len(read_journal(out))
    present = np.zeros(256, bool)  # which class IDs occur, over the frames stored so far
    if resume:
        print(f"{out}: resuming after {resume} finished frames", flush=True)
        for k in range(resume):
            present |= np.bincount(read_label_png(frame_path(out, "labels", k)).ravel(),
                                   minlength=256) > 0
    fg_lut = np.zeros(256, np.uint8)
    fg_lut[list(fg_classes)] = 255

    total = progress_total(info, first, stop)
    from tqdm import tqdm

    bar = tqdm(total=total or None, initial=resume, unit="frame", disable=not progress,
               desc=out.name, dynamic_ncols=True, mininterval=0.5)
    decode_from = first + max(resume - 1, 0)
    n = resume
    last = decode_from - 1  # absolute index of the last decoded frame
    prev_rgb = prev_gray = None
    try:
        with Journal(out) as journal:
            for i, rgb in enumerate(read_frames(info, decode_from, stop), start=decode_from):
                last = i
                gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
                if resume and i == decode_from:
                    # The frame before the resume point: only needed as flow's previous frame.
                    prev_rgb, prev_gray = rgb, gray
                    continue
                k = i - first
                labels, inst = maps.read(i)
                present |= np.bincount(labels.ravel(), minlength=256) > 0
                imwrite_atomic(frame_path(out, "frames", k), rgb[..., ::-1],
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                write_png(frame_path(out, "labels", k), labels)
                if inst is not None:
                    write_png(frame_path(out, "instances", k), inst)
                write_png(frame_path(out, "seg", k), fg_lut[labels])
                if flow is not None and prev_gray is not None:
                    write_flow_png(frame_path(out, "flow", k),
                                   flow(gray, prev_gray, rgb, prev_rgb))
                journal.commit(k, "found")
                n = k + 1
                bar.update(1)
                prev_rgb, prev_gray = rgb, gray
    finally:
        bar.close()

    if n == 0:
        raise UserError(f"{source} has no frames in the chosen range; check --start/--end "
                        "or the file")
    if not info.is_folder:
        if stop is None or last + 1 < stop:  # decoded to the end: the exact count is known
            if last + 1 != len(label_files):
                raise UserError(f"{labels_dir} holds {len(label_files)} label maps but {source} "
                                f"has {last + 1} frames at {info.fps:g} fps; pass one label PNG "
                                "per frame")
    truncated = check_truncation(source, info, n, first, stop, warn)
    meta["labels"]["class_ids"] = np.flatnonzero(present).tolist()
    meta["truncated"] = truncated  # before "frames", where label datasets have always had it
    complete_meta(out, meta, ["found"] * n, truncated, warn.messages)
    return LabelSummary(out, n, n, 0, time.time() - t0,
                        classes=len(meta["labels"]["class_ids"]), truncated=truncated,
                        fps=info.fps, fps_assumed=info.is_folder and options.fps is None)


def convert_vid2vid(root: Path, out: Path, options: PreprocessOptions,
                    overwrite: bool = False, progress: bool = True) -> list[LabelSummary]:
    """Imports a dataset in NVIDIA vid2vid's layout, one dataset directory per sequence.

        ROOT/train_A/<seq>/*.png     label maps       -> OUT/<seq>/labels
        ROOT/train_B/<seq>/*.jpg     real frames      -> OUT/<seq>/frames
        ROOT/train_inst/<seq>/*.png  instance maps    -> OUT/<seq>/instances (if present)

    The test split (test_A/, test_inst/) has no real frames, so it is not a
    training dataset: it stays where it is, to be generated from by
    `vid2vid transfer`, and this says so.
    """
    root, out = Path(root), Path(out)
    layout = ("train_A/<seq>/*.png label maps, train_B/<seq>/*.jpg frames, optional "
              "train_inst/<seq>/*.png")
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; pass the root of a dataset in NVIDIA "
                        f"vid2vid's layout ({layout})")
    train_a = root / "train_A"
    if not train_a.is_dir():
        raise UserError(f"{root} has no train_A folder; pass the root of a dataset in NVIDIA "
                        f"vid2vid's layout ({layout})")
    seqs = sorted((p.name for p in train_a.iterdir() if p.is_dir()), key=natural_key)
    if not seqs:
        raise UserError(f"{train_a} holds no sequence folders; vid2vid's layout keeps each "
                        "sequence's label maps in train_A/<seq>/")
    for seq in seqs:  # every sequence is checked before the first is converted
        if not (root / "train_B" / seq).is_dir():
            raise UserError(f"{root / 'train_B' / seq} is missing: sequence {seq} has label maps "
                            f"but no real frames; add its frames there or remove "
                            f"{train_a / seq}")
    summaries = []
    for seq in seqs:
        inst = root / "train_inst" / seq
        seq_options = replace(options, task="labels", labels=str(train_a / seq),
                              instances=str(inst) if inst.is_dir() else None)
        summary = import_labels(root / "train_B" / seq, out / seq, seq_options,
                                overwrite=overwrite, progress=progress)
        print(summary.line(), flush=True)
        summaries.append(summary)
    test_a = root / "test_A"
    tests = (sorted((p.name for p in test_a.iterdir() if p.is_dir()), key=natural_key)
             if test_a.is_dir() else [])
    if tests:
        example = tests[0] if len(tests) == 1 else "<seq>"
        print(f"{test_a}: {len(tests)} test label sequence(s) without real frames "
              f"({', '.join(tests)}), left in place; once a model is trained on {out}, "
              f"generate from them with: vid2vid transfer {test_a / example} <dataset dir>",
              flush=True)
    return summaries
