"""``tf1norm`` command line (also ``python -m tf1norm``).

    tf1norm norms CHECKPOINT [--threshold T] [--exclude REGEX ...] [--all]
    tf1norm tensors CHECKPOINT|META
    tf1norm bounds MODEL --lower L [L ...] --upper U [U ...] [--method M [M ...]]
                   [--input NAME --output NAME] [--time-limit S] [--plot FILE.png]
    tf1norm plot norms LOGDIR|CHECKPOINT ... -o FILE.png [--threshold T]
    tf1norm verify MODEL --lower L ... --upper U ... (--top-class I | --spec FILE)
                   [--threshold T] [--method M] [--time-limit S]
    tf1norm convert-checkpoint TF1_CHECKPOINT OUTPUT_PREFIX [--exclude REGEX ...]

Arguments are parsed before TensorFlow is imported, so ``--help`` answers at
once. TensorFlow's C++ and Python log lines are hidden unless ``--verbose``,
for the whole command (not only while TensorFlow loads).
Errors print one line naming the fix (``--debug`` shows the traceback); exit
status 0 success, 1 a failure (or units above ``norms --threshold``), 2 a
usage error, 130 Ctrl-C; ``verify`` exits 0 proved, 3 falsified, 4 unknown.
"""

import argparse
import contextlib
import math
import os
import re
import sys
import warnings

from tf1norm.cli import convert as cli_convert
from tf1norm.cli import verify as cli_verify
from tf1norm.cli.errors import (
    FAILURE_STATUS,
    INTERRUPTED_STATUS,
    USAGE_STATUS,
    CommandError,
    UsageError,
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit status 2, via UsageError."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def positive_number(text):
    """argparse type: a finite number > 0."""
    value = finite_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text!r}, e.g. 1.0")
    return value


def finite_number(text):
    """argparse type: a finite float (no nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
    return value


def regex(text):
    """argparse type: a compiled regular expression."""
    try:
        return re.compile(text)
    except re.error as error:
        raise argparse.ArgumentTypeError(
            f"is not a valid regular expression {text!r}: "
            f"{error}; escape special characters with \\"
        ) from None


def _common_flags():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's log lines (hidden by default)"
    )
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return common


def _add_norms(commands, common):
    norms = commands.add_parser(
        "norms", parents=[common], help="per-unit weight norms of a checkpoint"
    )
    norms.add_argument("checkpoint", help="checkpoint prefix, or a directory (latest checkpoint)")
    norms.add_argument(
        "--threshold",
        type=positive_number,
        help="count units whose norm exceeds it; exit status 1 when any does",
    )
    norms.add_argument(
        "--exclude",
        type=regex,
        action="append",
        default=[],
        metavar="REGEX",
        help="leave out variables whose name matches (re.search); repeatable, "
        "e.g. --exclude '^output/'",
    )
    norms.add_argument("--all", action="store_true", help="include optimizer slot variables")


def _add_tensors(commands, common):
    tensors = commands.add_parser(
        "tensors", parents=[common], help="list variables and candidate input/output tensors"
    )
    tensors.add_argument("checkpoint", help="checkpoint prefix, directory or .meta file")


def _add_bounds(commands, common):
    ranges = commands.add_parser(
        "bounds", parents=[common], help="output bounds of a network over an input box"
    )
    ranges.add_argument("model", help=".keras, .h5, .npz, .nnet, .onnx or a TF1 checkpoint prefix")
    ranges.add_argument(
        "--lower",
        type=finite_number,
        nargs="+",
        required=True,
        help="box lower corner: one value for every input, or one per input",
    )
    ranges.add_argument(
        "--upper",
        type=finite_number,
        nargs="+",
        required=True,
        help="box upper corner: one value for every input, or one per input",
    )
    ranges.add_argument(
        "--method",
        nargs="+",
        default=["crown"],
        metavar="METHOD",
        choices=["interval", "crown", "alpha-crown", "exact", "milp", "sample", "all"],
        help="one or more of interval, crown, alpha-crown, exact, milp, sample; "
        "'all' = every method but exact and milp (default: crown)",
    )
    ranges.add_argument("--input", help="input placeholder name (TF1 checkpoints), e.g. X:0")
    ranges.add_argument(
        "--output", help="output tensor name (TF1 checkpoints); see `tf1norm tensors CHECKPOINT`"
    )
    ranges.add_argument(
        "--time-limit",
        type=positive_number,
        metavar="SECONDS",
        help="stop exact/milp after this many seconds and show the sound bounds "
        "found so far, marked not exact (default: 600)",
    )
    ranges.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw each output's range per method into this image",
    )


def _add_plot(commands, common):
    plot = commands.add_parser("plot", help="draw figures (PNG)")
    kinds = plot.add_subparsers(dest="kind", required=True, parser_class=_Parser)
    norms = kinds.add_parser(
        "norms", parents=[common], help="per-layer unit-norm distributions over checkpoints"
    )
    norms.add_argument(
        "paths",
        nargs="+",
        metavar="LOGDIR|CHECKPOINT",
        help="checkpoint prefixes, or directories (all their checkpoints)",
    )
    norms.add_argument(
        "-o", "--output", required=True, metavar="FILE.png", help="the image to write"
    )
    norms.add_argument("--threshold", type=positive_number, help="draw this max-norm line")
    norms.add_argument(
        "--exclude",
        type=regex,
        action="append",
        default=[],
        metavar="REGEX",
        help="leave out variables whose name matches; repeatable",
    )


def build_parser():
    """The ``tf1norm`` argument parser (no TensorFlow import)."""
    parser = _Parser(
        prog="tf1norm",
        description="tf1norm tools: inspect checkpoints, bound "
        "network outputs, plot norms. Exit status: 0 ok, 1 failure, 2 usage "
        "error, 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _common_flags()
    for add in (_add_norms, _add_tensors, _add_bounds, _add_plot):
        add(commands, common)
    cli_verify.add_parser(commands, common, finite_number, positive_number)
    cli_convert.add_parser(commands, common, regex)
    return parser


def quiet_tensorflow(verbose, hide_warnings=True):
    """Import TensorFlow without its C++ log lines, and hide its Python warnings.

    TF 2.21 prints "Could not find cuda drivers" and similar lines while it loads,
    even when ``TF_CPP_MIN_LOG_LEVEL`` is set from Python rather than the shell,
    so the import runs with the process's stderr (file descriptor 2) pointed at
    ``os.devnull``. ``verbose`` keeps everything. ``hide_warnings=False`` keeps
    Python's warnings filters as they are (the legacy examples choose their own).
    """
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if hide_warnings:
            warnings.simplefilter("ignore")  # deprecation notes of TF and tf-keras
    tf = _import_tensorflow() if verbose else _with_stderr_silenced(_import_tensorflow)
    tf.get_logger().setLevel("INFO" if verbose else "ERROR")
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.ERROR)


def _import_tensorflow():
    from tf1norm._src.compat import tf

    return tf


def _with_stderr_silenced(function):
    """``function()`` with file descriptor 2 on ``os.devnull`` (C++ writes there directly)."""
    with native_stderr_silenced():
        return function()


@contextlib.contextmanager
def native_stderr_silenced():
    """File descriptor 2 on ``os.devnull``; Python's ``sys.stderr`` still reaches the terminal.

    TensorFlow's C++ code writes its log straight to descriptor 2 at any time, not
    only while it loads (the "failed call to cuInit" line comes with the first
    device lookup, e.g. when a command creates a variable), and whatever
    ``TF_CPP_MIN_LOG_LEVEL`` the user has set. tf1norm's own lines (the error
    line, progress bars) go through ``sys.stderr``, which is pointed at a copy of
    the original descriptor for the duration when it was writing to descriptor 2.
    """
    original = sys.stderr
    original.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    if _writes_to_descriptor(original, 2):
        sys.stderr = os.fdopen(
            os.dup(saved),
            "w",
            buffering=1,
            encoding=getattr(original, "encoding", None) or "utf-8",
            errors="backslashreplace",
        )
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        if sys.stderr is not original:
            sys.stderr.close()
            sys.stderr = original
        os.close(saved)
        os.close(devnull)


def _writes_to_descriptor(stream, descriptor):
    try:
        return stream.fileno() == descriptor
    except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is an OSError
        return False


def _run(args):
    """Run the command; TensorFlow's C++ log stays hidden throughout unless ``--verbose``."""
    from tf1norm.cli import commands as cli_commands

    with contextlib.nullcontext() if args.verbose else native_stderr_silenced():
        quiet_tensorflow(args.verbose)
        command = {
            "norms": cli_commands.norms,
            "tensors": cli_commands.tensors,
            "bounds": cli_commands.bounds,
            "plot": cli_commands.plot,
            "verify": cli_verify.verify,
            "convert-checkpoint": cli_convert.convert,
        }[args.command]
        return command(args, sys.stdout)


def _fail(args, error, status):
    where = f"tf1norm {getattr(args, 'command', '') or ''}".strip()
    print(f"{where}: error: {error}", file=sys.stderr)
    return status


def _discard_stdout():
    """Point stdout at os.devnull, so the interpreter's final flush cannot fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. captured)
        pass


def main(argv=None):
    """Run ``tf1norm`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = argparse.Namespace(command=None, debug="--debug" in argv)
    try:
        args = build_parser().parse_args(argv)
        return _run(args)
    except KeyboardInterrupt:
        print("\ntf1norm: interrupted (Ctrl-C)", file=sys.stderr)
        return INTERRUPTED_STATUS
    except BrokenPipeError:  # `tf1norm ... | head`: the reader left; say nothing more
        _discard_stdout()
        return FAILURE_STATUS
    except (UsageError, CommandError) as error:
        if args.debug:
            raise
        return _fail(args, error, USAGE_STATUS if isinstance(error, UsageError) else FAILURE_STATUS)
    except Exception as error:  # noqa: BLE001  (one line unless --debug)
        if args.debug:
            raise
        return _fail(
            args,
            f"{type(error).__name__}: {error} (rerun with --debug for the traceback)".replace(
                "\n", " "
            ),
            FAILURE_STATUS,
        )


if __name__ == "__main__":
    sys.exit(main())
