"""The one exception type that reaches the user as a one-line message.

Code anywhere raises `UserError("what is wrong with which file; what to do")`
for bad input; the CLI prints it without a traceback and exits non-zero.
Everything else that escapes is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input or environment, stated with its fix."""
