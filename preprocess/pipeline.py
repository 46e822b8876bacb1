"""`vid2vid preprocess`: videos (or frame folders) -> dataset directories, one per input.

This module checks the command's options against the task, picks the output
folder of each input and hands it to the pipeline of the chosen task:
`preprocess.pose_pipeline` (bodies), `preprocess.face` (talking heads) or
`preprocess.labels` (scenes with label maps, or a whole dataset in NVIDIA
vid2vid's layout). What the three share, the options included, is
`preprocess.dataset_writer`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from preprocess.dataset_writer import PreprocessOptions, Summary
from preprocess.face import preprocess_face_video
from preprocess.labels import convert_vid2vid, import_labels
from preprocess.pose_pipeline import preprocess_video
from vid2vid.errors import UserError

# The pipeline of each task: (source, out, options, overwrite=...) -> its summary.
_TASK_PIPELINES = {"pose": preprocess_video, "face": preprocess_face_video,
                   "labels": import_labels}


def preprocess_many(inputs: list[str], out: str | None, options: PreprocessOptions,
                    overwrite: bool = False) -> list[Summary]:
    """Preprocesses each input into `out` (one input), `out/<stem>` (several) or `data/<stem>`."""
    summaries = []
    if options.task == "labels" and len(inputs) > 1:
        raise UserError("--labels names one folder of label maps, so give one VIDEO with it "
                        "(run vid2vid preprocess once per video)")
    run = _TASK_PIPELINES[options.task]
    stems = [Path(p).stem if Path(p).suffix else Path(p).name for p in inputs]
    if len(set(stems)) != len(stems):
        raise UserError("several inputs share a name (" + ", ".join(sorted(
            {s for s in stems if stems.count(s) > 1})) + "); preprocess them one at a time with -o")
    for path, stem in zip(inputs, stems):
        if out is None:
            target = Path("data") / stem
        elif len(inputs) == 1:
            target = Path(out)
        else:
            target = Path(out) / stem
        summary = run(Path(path), target, options, overwrite=overwrite)
        print(summary.line(), flush=True)
        summaries.append(summary)
    return summaries


def preprocess_command(inputs: list[str], out: str | None, options: PreprocessOptions,
                       from_vid2vid: str | None = None, overwrite: bool = False) -> None:
    """`vid2vid preprocess`: the inputs (or the NVIDIA vid2vid dataset at `from_vid2vid`,
    which implies the labels task), after the options are checked against the task."""
    if from_vid2vid is not None:
        if inputs:
            raise UserError("--from-vid2vid converts a whole dataset; give no VIDEO with it")
        options = replace(options, task="labels")
    elif not inputs:
        raise UserError("give at least one VIDEO_OR_FOLDER (or --from-vid2vid ROOT); see "
                        "vid2vid preprocess --help")
    task = options.task
    if task == "labels" and from_vid2vid is None and options.labels is None:
        raise UserError("--task labels needs --labels DIR, the folder of per-frame label maps "
                        "(or --from-vid2vid ROOT for NVIDIA vid2vid's layout)")
    if task != "labels" and (options.labels or options.instances or options.num_classes
                             or options.fg_classes):
        raise UserError("--labels, --instances, --num-classes and --fg-classes belong to "
                        "--task labels")
    if task != "pose" and options.keypoints:
        raise UserError("--keypoints imports body poses; it belongs to --task pose")
    if from_vid2vid is not None:
        root = Path(from_vid2vid)
        convert_vid2vid(root, Path(out) if out else Path("data") / root.resolve().name,
                        options, overwrite=overwrite)
        return
    preprocess_many(inputs, out, options, overwrite=overwrite)
