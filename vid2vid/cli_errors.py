"""How the command line ends on an expected failure: one line on stderr, no traceback.

A `UserError` (bad input, stated with its fix), Ctrl-C (finished work is kept)
and a full disk (free space, run again to resume) each print one line and
exit non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import sys

import click


class OneLineErrors(click.Group):
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
