"""`vid2vid dream`'s command line, registered by `vid2vid.cli`.

Only click and the config's constants at module level, like the other
commands: the stage is imported inside the body, so `vid2vid --help` stays
instant.
"""

from __future__ import annotations

import click

from dream.config import TEMPERATURES   # dataclasses only: --help stays instant


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(), metavar="RUN | --train DATASET...")
@click.option("--train", "train_", is_flag=True,
              help="Train the motion model on the DATASETs' poses instead of dreaming.")
@click.option("--seconds", type=click.FloatRange(0.04, 24 * 3600), default=10.0,
              show_default=True, help="Length of the dream.")
@click.option("--fps", type=click.FloatRange(1, 240), default=None,
              help="Frame rate of the dream [the run's dataset's]; any rate, same motion.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Which dream (the same seed is the same motion at every frame rate).")
@click.option("--temperature", type=click.FloatRange(*TEMPERATURES), default=None,
              help="Motion noise scale [the one training picked, else 1]: above it, livelier "
                   "motion, farther from the training's.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="The mp4 to write [dream_<run>_seed<seed>.mp4]; the poses go to "
                   "<out>_pose/.")
@click.option("--compare", is_flag=True,
              help="Also write <out>_compare.mp4: dreamed skeleton | pose map | result.")
@click.option("--motion", "motion_path", default=None, metavar="MOTION_PT",
              help="Motion model to dream with [RUN/motion.pt, else the newest "
                   "runs/motion-*/ trained on RUN's dataset].")
@click.option("--poses-only", is_flag=True, help="Write the pose folder only, no video.")
@click.option("--whole-body", is_flag=True,
              help="Every limb from the same moment of the dream (no limb streams): the "
                   "model's own whole-body moves, closer to the training dance.")
@click.option("--body-only", is_flag=True,
              help="Dream the body alone: no hands or face lent by the run's training frames.")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="--train: training steps of each of the motion model's trainings (2, "
                   "the judge keeps the best), instead of --minutes.")
@click.option("--minutes", type=click.FloatRange(0.1, 24 * 60), default=None,
              help="--train: wall-clock budget for all trainings [5 each: 10], calibrated "
                   "into steps (printed).")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="--train: where motion.pt goes [runs/motion-<dataset>-<date>/]; a "
                   "generator run's folder makes it that run's motion model.")
@click.option("--holdout", type=click.FloatRange(0, 0.9), default=0.2, show_default=True,
              help="--train: last share of each dataset left out (as vid2vid train).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
def dream(paths, train_, seconds, fps, seed, temperature, out, compare, motion_path,
          poses_only, whole_body, body_only, steps, minutes, run_dir, holdout, device) -> None:
    """New motion for a trained person: as long as you like, at any frame rate.

    \b
    vid2vid dream --train data/dancer [data/other ...]   the motion model (minutes, CPU)
    vid2vid dream runs/dancer-20261121-101500 --seconds 60 --fps 50 --seed 3 --compare

    A continuous-time motion model over BODY_25 keypoints (StyleGAN-V, DIGAN,
    StyleSV ideas): any instant costs the same, so length is free. Writes the
    dreamed poses as OpenPose JSON (<out>_pose/, readable by vid2vid transfer)
    and renders them with RUN's generator. With --poses-only, RUN may be a
    motion model's own folder (runs/motion-*): no generator is needed.
    """
    import sys
    import time
    from pathlib import Path

    from vid2vid.errors import UserError

    if train_:
        from dream.checkpoint import MOTION_FILE
        from dream.config import MINUTES_PER_TRAINING, MotionConfig
        from dream.training import train_motion
        from infer.trained import resolve_device

        if not paths:
            raise UserError("dream --train needs dataset directories, e.g. vid2vid dream "
                            "--train data/dancer")
        if steps is not None and minutes is not None:
            raise UserError("--steps and --minutes both size the training; pass one")
        folder = Path(run_dir) if run_dir else Path("runs") / (
            f"motion-{Path(paths[0]).name}{'+more' if len(paths) > 1 else ''}-"
            f"{time.strftime('%Y%m%d-%H%M%S')}")
        cfg = MotionConfig(holdout=holdout, seed=seed)
        if steps is None:
            minutes = minutes or MINUTES_PER_TRAINING * cfg.restarts
        try:
            result = train_motion(list(paths), cfg, folder / MOTION_FILE, steps=steps,
                                  minutes=minutes, device=resolve_device(device))
        except KeyboardInterrupt:
            # Motion training has no resume (minutes, not hours): say so, unlike train's line.
            click.echo(f"\ninterrupted: {folder / MOTION_FILE} was not written (it is saved when "
                       "training ends); run the same command again to train from the start",
                       err=True)
            sys.exit(130)
        click.echo(result.line())
        return
    from dream.command import dream as run_dream

    if len(paths) != 1:
        raise UserError("dream takes one RUN (a vid2vid train run), e.g. vid2vid dream "
                        "runs/dancer-<date>; or --train DATASET... to train the motion model")
    result = run_dream(paths[0], seconds=seconds, fps=fps, seed=seed, out=out, compare=compare,
                       motion=motion_path, device=device, render=not poses_only,
                       temperature=temperature, whole_body=whole_body,
                       details=not body_only)
    click.echo(result.line())
