"""The `vid2vid` command line.

Only click is imported at module level (with `vid2vid.cli_errors`, which turns expected
failures into one line); each command imports its stage (`preprocess`, `train`, `infer`)
inside its body, so `vid2vid --help` and `--version` answer instantly without loading torch
or mediapipe. A command is registered here only once it works end to end.
"""

from __future__ import annotations

from pathlib import Path

import click

from vid2vid import __version__
from dream.cli import dream as dream_command
from vid2vid.cli_errors import OneLineErrors


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vid2vid")
def cli() -> None:
    """Conditional video-to-video synthesis: pose, edges or labels -> video.

    \b
    vid2vid preprocess dance.mp4          video -> dataset directory data/dance/
    vid2vid train --progressive           datasets in data/ -> runs/<name>/
    vid2vid transfer other.mp4 data/dance the dancer doing other.mp4's moves
    vid2vid evaluate runs/<name>          quality on the held-out frames
    vid2vid dream runs/<name>             new motion for the trained person
    """


def _parse_classes(ctx, param, value):
    if value is None:
        return None
    try:
        classes = tuple(int(v) for v in value.replace(" ", "").split(",") if v)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of class IDs, "
                                 "e.g. 24,25,26") from None
    if any(c < 0 or c > 255 for c in classes):
        raise click.BadParameter(f"{value!r}: class IDs are 0..255")
    return classes


@cli.command()
@click.argument("inputs", nargs=-1, required=False, metavar="[VIDEO_OR_FOLDER]...")
@click.option("-o", "--out", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: data/<stem>; with several inputs, "
                   "OUT/<stem> for each).")
@click.option("--max-size", type=click.IntRange(16, 8192), default=1024, show_default=True,
              help="Longest side of the stored frames in pixels (aspect kept, never upscaled).")
@click.option("--fps", type=click.FloatRange(0.1, 1000), default=None,
              help="Resample to this frame rate (default: keep the source's; "
                   "25 for frame folders).")
@click.option("--start", default=None, metavar="TIME|FRAME",
              help="First frame kept: seconds ('12.5', '12s', '1:02.5') or a frame number ('300').")
@click.option("--end", default=None, metavar="TIME|FRAME",
              help="Stop before this time or frame number (same forms as --start).")
@click.option("--keypoints", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of OpenPose JSON (one per frame) to use instead of detecting poses.")
@click.option("--flow", "flow_method", type=click.Choice(["dis", "raft"]), default="dis",
              show_default=True, help="Optical flow: OpenCV DIS, or RAFT when its weights exist.")
@click.option("--no-flow", is_flag=True, help="Do not compute optical flow.")
@click.option("--smooth/--no-smooth", default=None,
              help="Smooth the keypoints over time, One-Euro [pose: on, zero phase; face: off].")
@click.option("--max-gap", type=click.IntRange(0, 100), default=5, show_default=True,
              help="Interpolate runs of at most this many frames without a person; "
                   "longer runs are flagged and left out of training.")
@click.option("--coarse-hands/--no-coarse-hands", default=True, show_default=True,
              help="Where the hand model misses a hand, store the body model's coarse one.")
@click.option("--coarse-face/--no-coarse-face", default=True, show_default=True,
              help="Where the face mesh misses the face, store the body model's eyes, nose, mouth.")
@click.option("--previews", is_flag=True,
              help="Also write maps/NNNNNN.jpg: the pose drawn over a darkened frame.")
@click.option("--task", type=click.Choice(["pose", "face", "labels"]), default="pose",
              show_default=True,
              help="What the model will be conditioned on: body poses, face landmarks + "
                   "edges (talking heads), or semantic label maps (scenes). Stored in "
                   "meta.json; train, transfer and evaluate read it from there.")
@click.option("--crop-size", type=click.IntRange(32, 2048), default=256, show_default=True,
              help="face: side of the stored square face crop in pixels.")
@click.option("--labels", "labels_dir", type=click.Path(exists=True, file_okay=False),
              default=None, help="labels: folder of per-frame 8-bit class-ID PNGs.")
@click.option("--instances", type=click.Path(exists=True, file_okay=False), default=None,
              help="labels: folder of per-frame instance-ID PNGs (optional).")
@click.option("--num-classes", type=click.IntRange(2, 256), default=None,
              help="labels: number of classes [35, Cityscapes'].")
@click.option("--fg-classes", default=None, metavar="ID,ID,...", callback=_parse_classes,
              help="labels: foreground class IDs for the fg/bg split [Cityscapes' persons "
                   "and vehicles: 24-33].")
@click.option("--from-vid2vid", "from_vid2vid", type=click.Path(), default=None,
              metavar="ROOT",
              help="Convert a dataset in NVIDIA vid2vid's layout (ROOT/train_A labels, "
                   "train_B frames, train_inst instances; one folder per sequence) into "
                   "OUT/<sequence> (default data/<ROOT name>/<sequence>); implies --task labels.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing dataset made from another video or other options.")
def preprocess(inputs, out, max_size, fps, start, end, keypoints, flow_method, no_flow,
               smooth, max_gap, coarse_hands, coarse_face, previews, task, crop_size,
               labels_dir, instances, num_classes, fg_classes, from_vid2vid, overwrite) -> None:
    """Turn videos (or folders of frames) into training datasets.

    \b
    vid2vid preprocess dance.mp4                       bodies (pose task)
    vid2vid preprocess talk.mp4 --task face            talking heads
    vid2vid preprocess street.mp4 --task labels --labels street_labels/
    vid2vid preprocess --from-vid2vid datasets/Cityscapes

    Writes frames/, the task's conditioning (pose/ OpenPose JSON; edges/;
    labels/ and instances/), seg/ (the foreground), flow/ and meta.json; see
    README "Dataset directory". Re-running skips finished work and resumes an
    interrupted run.
    """
    from preprocess.dataset_writer import PreprocessOptions
    from preprocess.pipeline import preprocess_command

    options = PreprocessOptions(
        max_size=max_size, fps=fps, start=start, end=end, keypoints=keypoints,
        flow=None if no_flow else flow_method, smooth=smooth, max_gap=max_gap,
        coarse_hands=coarse_hands, coarse_face=coarse_face, previews=previews, task=task,
        crop_size=crop_size, labels=labels_dir, instances=instances, num_classes=num_classes,
        fg_classes=fg_classes)
    preprocess_command(list(inputs), out, options, from_vid2vid, overwrite=overwrite)


@cli.command()
@click.option("--data", "data", multiple=True, type=click.Path(file_okay=False),
              help="Dataset directory from vid2vid preprocess (repeatable; default: every "
                   "dataset under ./data/).")
@click.option("--progressive", is_flag=True, default=None,
              help="Image stage first, then double frames per clip and resolution in turns.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML file of config keys (see a run's config.yaml); flags override it.")
@click.option("--preset", type=click.Choice(["tiny", "small", "base"]), default=None,
              help="Model size: tiny (tests), small (CPU, default), base (GPU).")
@click.option("--size", type=int, default=None, help="Final frame height in pixels [256].")
@click.option("--frames", type=int, default=None, help="Final frames per clip [8].")
@click.option("--steps", type=int, default=None,
              help="Training steps (batches) [10000]. With --resume: more steps extend the run.")
@click.option("--minutes", type=click.FloatRange(0.1, 7 * 24 * 60), default=None,
              help="Wall-clock budget instead of --steps: a short calibration fixes the steps "
                   "(printed, reproducible with --steps). With --resume: minutes more.")
@click.option("--batch-size", type=int, default=None, help="Clips per step and process [1].")
@click.option("--bptt", type=int, default=None,
              help="Frames back-propagated together; earlier outputs are detached [4].")
@click.option("--no-temporal", "temporal", flag_value=False, default=None,
              help="Per-frame baseline: no flow, warping or temporal discriminator.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Where to write the run (default: runs/<dataset>-<date>).")
@click.option("--resume", default=None, is_flag=False, flag_value="latest",
              metavar="[RUN|CKPT]",
              help="Continue a run exactly where it stopped (alone: the newest run of the data).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default=None,
              help="Autocast dtype [auto: bf16 on CUDA, fp32 on CPU].")
@click.option("--compile", "compile_", is_flag=True, default=None, help="torch.compile the generator.")
@click.option("--workers", type=int, default=None, help="Data loader processes.")
@click.option("--seed", type=int, default=None)
@click.option("--dry-run", is_flag=True,
              help="Check data, config, schedule and networks; print them; train nothing.")
def train(data, progressive, config_file, preset, size, frames, steps, minutes, batch_size,
          bptt, temporal, run_dir, resume, device, precision, compile_, workers, seed,
          dry_run) -> None:
    """Train a generator on preprocessed datasets (writes runs/<dataset>-<date>/).

    \b
    vid2vid train --progressive                      every dataset under ./data/
    vid2vid train --data data/dancer --size 128 --steps 300
    vid2vid train --data data/dancer --size 128 --minutes 20
    vid2vid train --resume runs/dancer-20261121-101500
    vid2vid train --resume runs/dancer-20261121-101500 --steps 3000   # train longer
    torchrun --nproc_per_node 4 -m vid2vid train --preset base --size 512
    """
    from train.cli import resolve_config
    from train.trainer import train as run_training

    overrides = dict(data=list(data) or None, progressive=progressive, preset=preset,
                     size=size, frames=frames, steps=steps, minutes=minutes,
                     batch_size=batch_size, bptt=bptt, temporal=temporal, device=device,
                     precision=precision, compile=compile_, workers=workers, seed=seed)
    cfg, resume_path = resolve_config(overrides, config_file, resume)
    run_training(cfg, run_dir=Path(run_dir) if run_dir else None, resume=resume_path,
                 dry_run=dry_run, extend_minutes=minutes if resume_path else None)


def _parse_size(ctx, param, value):
    if value is None:
        return None
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 1280x720") from None
    if w < 1 or h < 1:
        raise click.BadParameter(f"{value!r} must be positive, e.g. 1280x720")
    return w, h


@cli.command()
@click.argument("source", type=click.Path())
@click.argument("target", type=click.Path())
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="The mp4 to write (default: <source>_to_<target>.mp4 here).")
@click.option("--checkpoint", default=None, metavar="RUN|CKPT",
              help="Run directory or ckpt-*.pt (default: the newest in ./runs trained on TARGET).")
@click.option("--compare", is_flag=True,
              help="Also write <out>_compare.mp4: source | driving pose | result.")
@click.option("--no-normalize", "no_normalize", is_flag=True,
              help="Use the source poses as they are (no scaling/placing onto the target).")
@click.option("--smooth/--no-smooth", default=True, show_default=True,
              help="Smooth the driving keypoints over time, zero phase (One-Euro forwards "
                   "and backwards over the whole clip: no lag).")
@click.option("--lend/--no-lend", default=True, show_default=True,
              help="pose: hands and face the SOURCE never shows (OpenPose JSON without them) "
                   "are lent by TARGET's own frames, turned with the arms and head.")
@click.option("--max-gap", type=click.IntRange(0, 1000), default=5, show_default=True,
              help="Runs of at most this many frames without a person hold the last pose; "
                   "longer runs are drawn empty.")
@click.option("--max-frames", type=click.IntRange(1), default=None,
              help="Stop after this many source frames.")
@click.option("--fps", type=click.FloatRange(0.1, 1000), default=None,
              help="Frame rate of a pose folder that is not a dataset's pose/ (a dataset's "
                   "comes from its meta.json); of a frame folder (default 25).")
@click.option("--source-size", default=None, metavar="WxH", callback=_parse_size,
              help="Frame size the poses of a pose folder are in, when it is not a dataset's "
                   "pose/ (a dataset's comes from its meta.json).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16: autocast; faster on GPUs, far slower on CPUs without bf16 units.")
@click.option("--compile", "compile_", is_flag=True,
              help="torch.compile the generator: faster frames on GPUs after a compile of "
                   "a minute or two (on CPUs the compile rarely pays back).")
@click.option("--instances", type=click.Path(exists=True, file_okay=False), default=None,
              help="labels: instance maps of the SOURCE label folder (default: vid2vid's "
                   "sibling *_inst/<sequence> folder when there is one).")
def transfer(source, target, out, checkpoint, compare, no_normalize, smooth, lend, max_gap,
             max_frames, fps, source_size, device, precision, compile_, instances) -> None:
    """Drive TARGET's model with SOURCE (writes an mp4). What SOURCE is depends on
    the task TARGET was preprocessed for (its meta.json):

    \b
    pose    SOURCE's dancer's motion, performed by TARGET's person. SOURCE: a video
            (poses detected in memory, nothing else written), a folder of frames,
            a folder of OpenPose JSON, or a dataset directory
    face    SOURCE's face video (expressions and head motion) spoken by TARGET's face,
            landmarks aligned part by part to TARGET's face shape
    labels  a folder of label maps (8-bit class IDs) rendered as TARGET's scenes
    TARGET  the target's dataset directory (data/<name>) or its pose/ folder

    The result has one frame per source frame, at the source frame rate, with
    the source's audio. Poses are normalised onto the target (Everybody Dance
    Now: scale and position from both people's ankles and heights).

    \b
    vid2vid transfer dance.mp4 data/dancer -o dancer_dances.mp4 --compare
    vid2vid transfer other/pose data/dancer --checkpoint runs/dancer-20261121-101500
    vid2vid transfer drive.mp4 data/talk/
    vid2vid transfer cityscapes/test_A/seq0100 data/cityscapes/seq0000
    """
    from infer.driving import TransferOptions
    from infer.transfer import transfer as run_transfer

    options = TransferOptions(checkpoint=checkpoint, compare=compare, normalize=not no_normalize,
                              smooth=smooth, lend=lend, max_gap=max_gap, max_frames=max_frames,
                              device=device, precision=precision, compile=compile_, fps=fps,
                              source_size=source_size, instances=instances)
    result = run_transfer(Path(source), Path(target), out, options)
    click.echo(result.line())


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--data", default=None, type=click.Path(file_okay=False),
              help="Evaluate on this dataset only (default: every dataset of the run; also "
                   "where a moved dataset now is).")
@click.option("--baseline", default=None, metavar="RUN2",
              help="Another run on the same data as an extra row (e.g. one trained with "
                   "--no-temporal).")
@click.option("--max-frames", type=click.IntRange(1), default=None,
              help="Evaluate only the first N held-out frames.")
@click.option("--split", type=click.Choice(["holdout", "train"]), default="holdout",
              show_default=True,
              help="train: the training frames instead (a sanity check; retrieval is exact).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for eval.json, eval_compare.mp4 and report.html (default: RUN).")
@click.option("--gap", type=click.IntRange(0), default=None,
              help="Held-out frames left out after the last training frame, so the first "
                   "scored frame is not nearly a training frame [8; half of a shorter "
                   "held-out range].")
def evaluate(run, data, baseline, max_frames, split, device, out, gap) -> None:
    """Score a run on its held-out frames (self-reenactment), with baselines.

    Generates the held-out frames from their own maps and compares them with
    the real ones: PSNR, SSIM and warp error (flicker), on the full frame and on
    the person / face / foreground box; bodies add pose consistency, faces
    landmark consistency. Rows for the model, the nearest training frame by
    pose, face landmarks or label map (retrieval), --baseline, and the real
    video. Writes eval.json, eval_compare.mp4 and report.html into RUN.

    \b
    vid2vid evaluate runs/dancer-20261121-101500
    vid2vid evaluate runs/dancer-A --baseline runs/dancer-B-no-temporal
    """
    from infer.evaluate import evaluate as run_evaluate

    result = run_evaluate(run, data=data, baseline=baseline, max_frames=max_frames,
                          device=device, out=out, split=split, gap=gap)
    click.echo(result.format_table())
    click.echo(f"{result.frames} frames in {result.seconds:.1f} s; wrote {result.json_path}, "
               f"{result.report_path}, {result.video_path}")


@cli.command()
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--motion", type=click.Choice(["sway", "groove"]), default="sway",
              show_default=True,
              help="sway: side steps and arm waves (calm); groove: hops, twists, arms overhead.")
@click.option("--seconds", type=click.FloatRange(0.04, 3600), default=8.0, show_default=True)
@click.option("--size", type=click.IntRange(64, 4096), default=256, show_default=True,
              help="Frame height in pixels (even); frames are square.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Colours, background and small motion variations.")
@click.option("--fps", type=click.FloatRange(1, 240), default=25.0, show_default=True)
def sample(out, motion, seconds, size, seed, fps) -> None:
    """Render a synthetic dancer to OUT (mp4) with its true keypoints beside it.

    Writes OUT and OUT_stem_openpose/NNNNNN.json (OpenPose BODY_25, face and
    hands, in frame pixels): a video to try every stage on without a download.

    \b
    vid2vid sample sway.mp4
    vid2vid preprocess sway.mp4 --keypoints sway_openpose
    """
    from preprocess.synthetic_dancer import SampleOptions, write_sample

    result = write_sample(out, SampleOptions(motion=motion, seconds=seconds, size=size,
                                             seed=seed, fps=fps))
    click.echo(result.line())


@cli.command()
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--presets", default=None,
              help="Comma-separated model presets [CPU: tiny,small; CUDA: small,base].")
@click.option("--sizes", default="128,256", show_default=True,
              help="Comma-separated frame heights in pixels (square frames).")
@click.option("--frames", type=click.IntRange(1), default=4, show_default=True,
              help="Clip length of the training step.")
@click.option("--repeats", type=click.IntRange(1), default=20, show_default=True,
              help="Timed iterations per measurement (at most).")
@click.option("--seconds", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Stop timing a measurement after this long (at least 2 iterations).")
@click.option("--no-train", is_flag=True, help="Only the generator's inference.")
@click.option("--compile/--no-compile", "compile_", default=None,
              help="Add torch.compile rows [on for CUDA; off for CPU, where compiling takes "
                   "minutes].")
@click.option("--levels", type=click.IntRange(1, 4), default=1, show_default=True,
              help="Generator levels (2: base at half size plus one enhancer).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench(device, presets, sizes, frames, repeats, seconds, no_train, compile_, levels,
          as_json) -> None:
    """Speed, memory and FLOPs of the networks on synthetic inputs (no dataset).

    Per preset and size: generator inference frames/s, training steps/s and
    frames/s, peak memory, FLOPs per frame and, on CUDA, the share of the
    card's bf16 peak; bf16, channels_last, torch.compile and (inference on
    CUDA) CUDA graphs each against eager fp32 of the same run.

    \b
    vid2vid bench                                   CPU: tiny,small at 128 and 256 px
    vid2vid bench --presets base --sizes 512 --json
    """
    import json

    from train.bench import bench_settings, run_bench
    from train.bench_table import format_table

    preset_list, size_list = bench_settings(device, presets, sizes, levels)
    progress = None if as_json else (lambda line: click.echo(line, err=True))
    result = run_bench(preset_list, size_list, device=device, frames=frames, repeats=repeats,
                       seconds=seconds, train=not no_train, compile_=compile_, levels=levels,
                       progress=progress)
    click.echo(json.dumps(result, indent=1) if as_json else format_table(result))


# The CPU demo's training beyond its preset, passed as <out>/train.yaml (--config).
DEMO_CPU_TRAIN = {"lr_g": 2e-4, "lr_d": 8e-4, "loss": {"fg_mask": 10.0}}


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="demo",
              show_default=True, help="Folder for everything the demo writes.")
@click.option("--quick", is_flag=True,
              help="A smoke run in under a minute (tiny model, 64 px, few steps).")
@click.option("--minutes", type=click.FloatRange(0.1, 24 * 60), default=None,
              help="Training budget [2.5 on CPU, 20 on CUDA]; a short calibration turns it "
                   "into steps, printed.")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="Training steps instead of a budget (to repeat a demo exactly).")
@click.option("--seed", type=int, default=0, help="Training seed [0]; the clips stay the same.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.pass_context
def demo(ctx, out_dir, quick, minutes, steps, seed, device) -> None:
    """The whole pipeline on the toolkit's own synthetic dancer.

    Renders a training clip (motion "sway") and a driving clip ("groove"),
    preprocesses the first with its exact keypoints, trains the small preset
    progressively, makes the trained figure perform the driving motion, and
    evaluates the run. Every step is the same command a user would type.
    """
    import shutil
    import time

    import torch
    import yaml

    t0, out = time.time(), Path(out_dir)
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if steps is not None and minutes is not None:
        raise click.UsageError("--steps and --minutes both size the training; pass one")
    if quick:
        # Smoke run: every stage once, nothing worth looking at.
        preset, size, frames, seconds = "tiny", 64, 2, 2.0
        steps = steps or 12
    elif cuda:
        preset, size, frames, seconds = "small", 256, 8, 12.0
        minutes = minutes or (None if steps else 20.0)
    else:
        # 2.5 minutes of training, calibrated to this machine (a slow day gets fewer steps,
        # not a longer demo): with sampling, preprocessing, transfer and evaluation the
        # whole demo takes about 3.5 minutes on 2 CPU cores.
        preset, size, frames, seconds = "small", 128, 4, 8.0
        minutes = minutes or (None if steps else 2.5)
    click.echo(f"demo: {preset} preset, {size} px, "
               + (f"{steps} training steps" if steps else f"{minutes:g} minutes of training")
               + f" on {'cuda' if cuda else 'cpu'}; writing {out}/")
    out.mkdir(parents=True, exist_ok=True)
    train_video, drive_video = out / "train.mp4", out / "drive.mp4"
    render = 2 * size
    ctx.invoke(sample, out=str(train_video), motion="sway", seconds=seconds, size=render)
    ctx.invoke(sample, out=str(drive_video), motion="groove", seconds=seconds / 2, size=render,
               seed=0)
    dataset = out / "data" / "train"     # the renderer's exact keypoints: not smoothed
    ctx.invoke(preprocess, inputs=(str(train_video),), out=str(dataset),
               keypoints=str(out / "train_openpose"), smooth=False, overwrite=True)
    run = out / "run"
    if run.exists():
        shutil.rmtree(run)
    # In a CPU demo's few hundred steps, twice vid2vid's learning rates and a 10x
    # foreground-mask loss draw a sharper figure (RESULTS.md, "vid2vid demo").
    config_file = None
    if not (quick or cuda):
        config_file = out / "train.yaml"
        config_file.write_text(yaml.safe_dump(DEMO_CPU_TRAIN))
    ctx.invoke(train, data=(str(dataset),), progressive=True,
               config_file=str(config_file) if config_file else None,
               preset=preset, size=size, frames=frames, steps=steps, minutes=minutes,
               run_dir=str(run), device=device, seed=seed)
    steps = yaml.safe_load((run / "config.yaml").read_text())["steps"]   # what the budget gave
    result = out / "transfer.mp4"
    # Same figure, same camera: no normalisation is needed, and the true renders of
    # the driving motion are exactly what the result should look like.
    ctx.invoke(transfer, source=str(drive_video), target=str(dataset), out=str(result),
               checkpoint=str(run), compare=True, no_normalize=True, device=device)
    ctx.invoke(evaluate, run=str(run), device=device)
    from infer.reference import controlled_report

    # The controlled benchmark has its own page: run/report.html scores self-reenactment
    # of the training motion; this one scores the new motion against its true renders.
    controlled, page = controlled_report(
        result, drive_video, out / "transfer_compare.mp4", out,
        notes=(f"Trained on the synthetic dancer's 'sway' ({preset} preset, {size} px, "
               f"{steps} steps, seed {seed}), driven by 'groove', compared frame by frame "
               f"with the exact renders of 'groove' ({drive_video}). The run's own "
               f"evaluation (held-out frames, baselines): {run / 'report.html'}."))
    click.echo(f"controlled benchmark (trained on 'sway', driven by 'groove', against the true "
               f"'groove' renders, {controlled['frames']} frames): PSNR "
               f"{controlled['psnr_db']:.2f} dB, SSIM {controlled['ssim']:.3f} -> "
               f"{out / 'controlled.json'}, {page}")
    click.echo(f"demo done in {time.time() - t0:.0f} s. Look at: {result}, "
               f"{out / 'transfer_compare.mp4'}, {page}, {run / 'report.html'} "
               f"(training samples in {run / 'samples'})")


# `vid2vid dream` lives with its stage (dream/cli.py imports only click at module level).
cli.add_command(dream_command)


def main() -> None:
    cli(prog_name="vid2vid")


if __name__ == "__main__":
    main()
