"""The `vid2vid` command run in-process, from a given working directory."""

from __future__ import annotations

import os

from click.testing import CliRunner

from vid2vid.cli import cli


def run_cli(args, cwd) -> tuple[int, str]:
    """(exit code, output) of `vid2vid ARGS` run with `cwd` as the working directory."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, [str(a) for a in args])
    finally:
        os.chdir(old)
    return result.exit_code, result.output
