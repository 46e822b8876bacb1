"""The `vid2vid` command line.

Only click is imported at module level; each command imports its stage
(`preprocess`, `train`, `infer`) inside its body, so `vid2vid --help` and
`vid2vid --version` answer instantly without loading torch or mediapipe.
A command is registered here only once it works end to end.
"""

from __future__ import annotations

import errno
import sys

import click

from vid2vid import __version__


class _Vid2VidGroup(click.Group):
    """Turns expected failures into one-line messages instead of tracebacks."""

    def invoke(self, ctx: click.Context):
        from vid2vid.errors import UserError

        try:
            return super().invoke(ctx)
        except UserError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo(
                "\ninterrupted: finished work is kept; run the same command again to resume",
                err=True,
            )
            sys.exit(130)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                where = f" writing {e.filename}" if e.filename else ""
                click.echo(
                    f"error: disk full{where}; free some space and run the same command "
                    "again to resume",
                    err=True,
                )
                sys.exit(2)
            raise


@click.group(cls=_Vid2VidGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vid2vid")
def cli() -> None:
    """Conditional video-to-video synthesis: pose, edges or labels -> video.

    \b
    vid2vid preprocess dance.mp4     video -> dataset directory data/dance/
    """


@cli.command()
@click.argument("inputs", nargs=-1, required=True, metavar="VIDEO_OR_FOLDER...")
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
              show_default=True,
              help="Optical flow: OpenCV DIS, or torchvision RAFT when its weights are present.")
@click.option("--no-flow", is_flag=True, help="Do not compute optical flow.")
@click.option("--smooth/--no-smooth", default=False, show_default=True,
              help="One-Euro filter the keypoints over time (on top of mediapipe's tracking).")
@click.option("--max-gap", type=click.IntRange(0, 100), default=5, show_default=True,
              help="Interpolate runs of at most this many frames without a person; "
                   "longer runs are flagged and left out of training.")
@click.option("--previews", is_flag=True,
              help="Also write maps/NNNNNN.jpg: the pose drawn over a darkened frame.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing dataset made from another video or other options.")
def preprocess(inputs, out, max_size, fps, start, end, keypoints, flow_method, no_flow,
               smooth, max_gap, previews, overwrite) -> None:
    """Turn videos (or folders of frames) into training datasets.

    Writes frames/, pose/ (OpenPose JSON), seg/, edges/, flow/ and meta.json;
    see README "Dataset directory". Re-running skips finished work and
    resumes an interrupted run.
    """
    from preprocess.pipeline import PreprocessOptions, preprocess_many

    options = PreprocessOptions(
        max_size=max_size, fps=fps, start=start, end=end, keypoints=keypoints,
        flow=None if no_flow else flow_method, smooth=smooth, max_gap=max_gap,
        previews=previews,
    )
    preprocess_many(list(inputs), out, options, overwrite=overwrite)


def main() -> None:
    cli(prog_name="vid2vid")


if __name__ == "__main__":
    main()
