"""Audit of tf1norm's answers to bad input: each case graded clear, vague, wrong type,
internal error or silent.

    python tools/audit_bad_input.py [--verbose] [--pattern 'test_bad_input*.py']

The cases live in ``tests/test_bad_input*.py`` (each module's ``CASES``, a
list of ``Case``); the tests assert every case is graded "clear", and this
script prints the count per grade and every case that is not clear.

A case calls a piece of the public API (``tf1norm.__all__``, ``tf1norm.bounds``,
the command line through ``tf1norm.cli.app.main``) with one bad input, inside a
fresh graph. Grades:

* **clear**: the expected exception type, with a message that contains every
  expected word (at least the argument's name, usually the value and the
  function); for the command line, the expected exit status with one line on
  stderr (Python's ``sys.stderr`` and file descriptor 2, where TensorFlow's C++
  log goes, together) containing the words. A value that only exists at run
  time (ids fed to an embedding lookup) expects the
  ``tf.errors.InvalidArgumentError`` of the assertion that checks it;
* **vague**: the expected type or status, but a word is missing (or the command
  line printed more than one line);
* **wrong type**: another ``ValueError``/``TypeError`` (or a ``tf.errors``
  error, or another exit status) than expected;
* **internal error**: an exception a user should never see (``AttributeError``,
  ``KeyError``, ``IndexError``, ``re.error``, configparser's, ``UnicodeDecodeError``,
  ``IsADirectoryError``, ``OverflowError``, ...), or the command line's
  catch-all "rerun with --debug" line;
* **silent**: no error at all (the input was accepted).
"""

import argparse
import collections
import contextlib
import importlib.util
import io
import os
import pathlib
import sys
import time
import warnings

GRADES = ("clear", "vague", "wrong type", "internal error", "silent")
_ROOT = pathlib.Path(__file__).resolve().parent.parent


class Case(collections.namedtuple("Case", "api call error words")):
    """One bad input: ``call()`` should raise ``error`` with every word in ``words``.

    Attributes:
      api: the public name(s) exercised, e.g. ``"max_norm"`` or
        ``("create_train_op", "add_decoupled_weight_decay")``; ``"cli"`` and
        ``"bounds.<name>"`` for the command line and the bounds package.
      call: a function of no arguments, run inside a fresh ``tf.Graph``.
      error: the exception type expected, or ``Exit(status)`` for the command line.
      words: strings the message (or the one stderr line) must contain.
    """

    @property
    def apis(self):
        return (self.api,) if isinstance(self.api, str) else tuple(self.api)

    def __str__(self):
        return f"{'/'.join(self.apis)}: {', '.join(map(str, self.words))}"


class Exit(collections.namedtuple("Exit", "status")):
    """The command line's expected exit status (2 usage error, 1 failure)."""


class CliResult(Exception):
    """What ``cli(argv)`` saw: the exit status and stderr's non-empty lines."""

    def __init__(self, status, lines):
        super().__init__(lines[-1] if lines else f"exit status {status}, nothing printed")
        self.status, self.lines = status, lines


def cli(argv):
    """A case call running ``tf1norm.cli.app.main(argv)``; it raises ``CliResult`` unless status 0.

    Both Python's ``sys.stderr`` and file descriptor 2 (where TensorFlow's C++
    code logs, e.g. "failed call to cuInit") are captured: a C++ log line
    counts as a second line.
    """

    def call():
        from tf1norm.cli import app as command_line

        err, out = io.StringIO(), io.StringIO()
        with (
            _descriptor_2_captured() as native,
            contextlib.redirect_stderr(err),
            contextlib.redirect_stdout(out),
        ):
            status = command_line.main([str(a) for a in argv])
        if status != 0:
            text = native[0] + err.getvalue()
            raise CliResult(status, [line for line in text.splitlines() if line.strip()])
        return out.getvalue()

    return call


@contextlib.contextmanager
def _descriptor_2_captured():
    """Send file descriptor 2 to a temporary file; yields a list holding its text after."""
    import tempfile

    sys.stderr.flush()
    saved, text = os.dup(2), []
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text.append(capture.read())


def _internal_types():
    import configparser
    import re

    return (
        AttributeError,
        KeyError,
        IndexError,
        re.error,
        configparser.Error,
        UnicodeDecodeError,
        IsADirectoryError,
        OverflowError,
        NameError,
        NotImplementedError,
        AssertionError,
        ZeroDivisionError,
        RecursionError,
    )


def grade(case):
    """``(grade, detail)`` of one case, run in a fresh graph with warnings silenced."""
    from tf1norm._src.compat import tf

    with tf.Graph().as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = case.call()
        except Exception as error:  # noqa: BLE001  (grading every kind is the point)
            return _grade_error(case, error)
    return "silent", f"returned {result!r:.100}"


def _grade_error(case, error):
    detail = f"{type(error).__name__}: {error}"
    if isinstance(case.error, Exit):
        return _grade_exit(case, error), detail
    if isinstance(error, _internal_types()) and not issubclass(case.error, _internal_types()):
        return "internal error", detail
    if not isinstance(error, case.error):
        return "wrong type", detail
    return ("clear" if all(str(w) in str(error) for w in case.words) else "vague"), detail


def _grade_exit(case, error):
    if not isinstance(error, CliResult):
        return "internal error"
    if any("rerun with --debug" in line or "Traceback" in line for line in error.lines):
        return "internal error"
    if error.status != case.error.status:
        return "wrong type"
    if len(error.lines) != 1 or not all(str(w) in error.lines[0] for w in case.words):
        return "vague"
    return "clear"


def load_cases(directory=_ROOT / "tests", pattern="test_bad_input*.py"):
    """Every ``CASES`` entry of ``tests/test_bad_input*.py``, as ``(module name, case)``."""
    sys.path.insert(0, str(directory))
    cases = []
    for path in sorted(directory.glob(pattern)):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases.extend((path.stem, case) for case in getattr(module, "CASES", []))
    return cases


def audit(cases, progress=None):
    """``[(module, case, grade, detail)]`` for ``[(module, case)]``."""
    results = []
    for module, case in cases if progress is None else progress(cases):
        results.append((module, case, *grade(case)))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print every case's message")
    parser.add_argument(
        "--pattern",
        default="test_bad_input*.py",
        help="case modules in tests/ (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    from tf1norm.cli.app import quiet_tensorflow
    from tqdm import tqdm

    quiet_tensorflow(verbose=False)

    start = time.perf_counter()
    results = audit(
        load_cases(pattern=args.pattern), progress=lambda c: tqdm(c, desc="cases", disable=None)
    )
    counts = collections.Counter(result[2] for result in results)
    for module, case, verdict, detail in results:
        if verdict != "clear" or args.verbose:
            print(f"[{verdict}] {module}: {case}\n    {detail[:300]}")
    apis = {api.split(".")[0] for _, case, _, _ in results for api in case.apis}
    print(
        f"{len(results)} cases ({sum(isinstance(c.error, Exit) for _, c, _, _ in results)} "
        f"command line) over {len(apis)} public names, "
        f"{time.perf_counter() - start:.1f} s:"
    )
    for name in GRADES:
        print(f"  {name:15s} {counts.get(name, 0)}")
    return 0 if counts.get("clear", 0) == len(results) else 1


if __name__ == "__main__":
    # Run the importable module, whose Case/Exit/CliResult the test modules use
    # (as __main__ these classes would be copies that isinstance does not match).
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import audit_bad_input

    sys.exit(audit_bad_input.main())
