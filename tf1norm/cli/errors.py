"""The command line's two kinds of error, kept free of heavy imports.

``UsageError`` means the command was asked for something it cannot do (a bad
flag value, a tensor name that is not in the graph): exit status 2.
``CommandError`` means the work itself failed (a missing file, a solver that
ran out of time): exit status 1. Both carry a one-line message that names the
fix; ``tf1norm`` prints it without a traceback unless ``--debug`` is given.
"""

USAGE_STATUS = 2
FAILURE_STATUS = 1
INTERRUPTED_STATUS = 130  # 128 + SIGINT, as a shell reports Ctrl-C


class UsageError(Exception):
    """A wrong argument; the message names the argument, the value and the fix."""


class CommandError(Exception):
    """The command could not do its work; the message names the cause and the fix."""
