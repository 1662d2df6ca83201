"""Bad input to the command line: one line on stderr, never a traceback.

Command-line cases run ``tf1norm.cli.app.main(argv)`` in-process and expect one
line on stderr naming the problem, exit status 2 for a usage error and 1 for a
failure (a missing, truncated or foreign file), never a traceback. ``CASES``
is graded by ``tools/audit_bad_input.py``; every case must be "clear". The cases
of ``tf1norm.bounds`` are in test_bad_input_bounds.py, the tests of the audit
itself in test_audit_bad_input.py.
"""

import os
import pathlib
import subprocess
import sys

import pytest

from tf1norm.cli import app as command_line
from bad_input_cli_files import _at, _files, run_cli

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
from audit_bad_input import Case, Exit, grade  # noqa: E402

USAGE, FAILURE = Exit(2), Exit(1)


CKPT, NET = _at("model.ckpt"), _at("net.npz")

CASES = [
    # the command line: usage errors (exit status 2)
    Case("cli", run_cli(), USAGE, ["tf1norm", "required", "command"]),
    Case("cli", run_cli("bogus"), USAGE, ["invalid choice", "'bogus'"]),
    Case("cli", run_cli("norms"), USAGE, ["required", "checkpoint"]),
    Case("cli", run_cli("norms", CKPT, "--threshold", "0"), USAGE, ["--threshold", "'0'"]),
    Case("cli", run_cli("norms", CKPT, "--threshold", "nan"), USAGE, ["--threshold", "'nan'"]),
    Case("cli", run_cli("norms", CKPT, "--threshold", "-1"), USAGE, ["--threshold", "'-1'"]),
    Case("cli", run_cli("norms", CKPT, "--threshold", "1e400"), USAGE, ["--threshold", "'1e400'"]),
    Case("cli", run_cli("norms", CKPT, "--threshold", "abc"), USAGE, ["--threshold", "'abc'"]),
    Case("cli", run_cli("norms", CKPT, "--exclude", "["), USAGE, ["--exclude", "'['"]),
    Case(
        "cli", run_cli("bounds", NET, "--lower", "nan", "--upper", "1"), USAGE, ["--lower", "'nan'"]
    ),
    Case(
        "cli", run_cli("bounds", NET, "--lower", "0", "--upper", "inf"), USAGE, ["--upper", "'inf'"]
    ),
    Case(
        "cli",
        run_cli("bounds", NET, "--lower", "0", "0", "0", "--upper", "1"),
        USAGE,
        ["--lower", "1 or 2 values", "got 3"],
    ),
    Case(
        "cli",
        run_cli("bounds", NET, "--lower", "1", "--upper", "0"),
        USAGE,
        ["--lower", "--upper", "swap"],
    ),
    Case(
        "cli",
        run_cli("bounds", NET, "--lower", "0", "--upper", "1", "--method", "bogus"),
        USAGE,
        ["--method", "'bogus'"],
    ),
    Case(
        "cli",
        run_cli("bounds", NET, "--lower", "0", "--upper", "1", "--time-limit", "0"),
        USAGE,
        ["--time-limit", "'0'"],
    ),
    Case("cli", run_cli("bounds", NET, "--upper", "1"), USAGE, ["required", "--lower"]),
    Case(
        "cli",
        run_cli("bounds", CKPT, "--lower", "0", "--upper", "1"),
        USAGE,
        ["--input", "--output", "tf1norm tensors"],
    ),
    Case(
        "cli",
        run_cli(
            "bounds", CKPT, "--lower", "0", "--upper", "1", "--input", "x:0", "--output", "y:0"
        ),
        USAGE,
        ["--output", "'y:0'", "tf1norm tensors"],
    ),
    Case("cli", run_cli("plot", "norms", CKPT), USAGE, ["required", "-o"]),
    # the command line: failures (exit status 1), each naming the file
    Case("cli", run_cli("norms", _at("missing")), FAILURE, ["no checkpoint", "missing"]),
    Case("cli", run_cli("norms", _at("empty_dir")), FAILURE, ["no checkpoint", "empty_dir"]),
    Case(
        "cli",
        run_cli("norms", _at("short_data")),
        FAILURE,
        ["short_data", "truncated", "dense/kernel"],
    ),
    Case("cli", run_cli("norms", _at("short_index")), FAILURE, ["short_index", "cannot read"]),
    Case(
        "cli", run_cli("tensors", _at("missing.meta")), FAILURE, ["no graph file", "missing.meta"]
    ),
    Case("cli", run_cli("tensors", _at("short_index")), FAILURE, ["short_index"]),
    Case(
        "cli",
        run_cli("bounds", _at("garbage.npz"), "--lower", "0", "--upper", "1"),
        FAILURE,
        ["cannot read model file", "garbage.npz", "not a .npz archive", "numpy.savez"],
    ),
    Case(
        "cli",
        run_cli("bounds", _at("long_line.nnet"), "--lower", "0", "--upper", "1"),
        FAILURE,
        ["long_line.nnet", "data line 2", "5 layer sizes", "'xxxxxxxx", "... (5000000 characters)"],
    ),
    Case(
        "cli",
        run_cli("bounds", _at("binary.nnet"), "--lower", "0", "--upper", "1"),
        FAILURE,
        ["binary.nnet", "not a text .nnet file", "byte 0", "write_nnet"],
    ),
    Case(
        "cli",
        run_cli(
            "bounds",
            _at("short_traced"),
            "--lower",
            "0",
            "--upper",
            "1",
            "--input",
            "x:0",
            "--output",
            "y:0",
        ),
        FAILURE,
        ["cannot read 'dense/kernel'", "short_traced", "truncated", "copy it again"],
    ),
    Case(
        "cli",
        run_cli("convert-checkpoint", _at("short_data"), _at("converted/model")),
        FAILURE,
        ["cannot read 'dense/kernel'", "short_data", "truncated", "copy it again"],
    ),
    Case(
        "cli",
        run_cli("convert-checkpoint", _at("short_index"), _at("converted/model")),
        FAILURE,
        ["cannot read checkpoint", "short_index", ".index and .data files"],
    ),
    Case(
        "cli",
        run_cli("bounds", NET, "--lower=-1e30", "--upper", "1", "--method", "exact"),
        USAGE,
        ["--lower", "±1e+15", "-1e+30", "--method crown"],
    ),
    Case(
        "cli",
        run_cli("bounds", NET, "--lower", "0", "--upper", "1e16", "--method", "milp"),
        USAGE,
        ["--upper", "±1e+15", "1e+16", "Rescale the inputs"],
    ),
    Case(
        "cli",
        run_cli("bounds", _at("garbage.h5"), "--lower", "0", "--upper", "1"),
        FAILURE,
        ["cannot read model file", "garbage.h5"],
    ),
    Case(
        "cli",
        run_cli("bounds", _at("garbage.keras"), "--lower", "0", "--upper", "1"),
        FAILURE,
        ["cannot read model file", "garbage.keras"],
    ),
    Case(
        "cli",
        run_cli("bounds", _at("empty.npz"), "--lower", "0", "--upper", "1"),
        FAILURE,
        ["empty.npz", "kernel_0"],
    ),
    Case(
        "cli",
        run_cli("bounds", _at("missing.npz"), "--lower", "0", "--upper", "1"),
        FAILURE,
        ["no model file", "missing.npz"],
    ),
    Case(
        "cli",
        run_cli("bounds", _at("nan.npz"), "--lower", "0", "--upper", "1"),
        FAILURE,
        ["nan.npz", "`kernel`", "nan"],
    ),
    Case(
        "cli",
        run_cli("plot", "norms", _at("missing"), "-o", _at("x.png")),
        FAILURE,
        ["no checkpoint", "missing"],
    ),
    Case(
        "cli",
        run_cli("plot", "norms", _at("empty_dir"), "-o", _at("x.png")),
        FAILURE,
        ["no checkpoints", "empty_dir"],
    ),
    Case(
        "cli",
        run_cli("plot", "norms", _at("short_data"), "-o", _at("x.png")),
        FAILURE,
        ["short_data", "truncated"],
    ),
    Case(
        "cli",
        run_cli("plot", "norms", CKPT, "-o", _at("no_dir/x.png")),
        FAILURE,
        ["cannot write plot", "no_dir/x.png"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.apis[0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_answered_clearly(case):
    verdict, detail = grade(case)
    assert verdict == "clear", detail


def test_the_audit_script_runs_as_one_command():
    script = pathlib.Path(__file__).resolve().parent.parent / "tools" / "audit_bad_input.py"
    result = subprocess.run(
        [sys.executable, str(script), "--pattern", "test_bad_input_cli.py"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{len(CASES)} cases" in result.stdout
    assert f"  clear           {len(CASES)}\n" in result.stdout


def test_debug_shows_the_traceback_of_a_file_error(capsys):
    with pytest.raises(Exception) as info:
        command_line.main(["norms", os.path.join(_files(), "short_data"), "--debug"])
    assert "short_data" in str(info.value)


def test_a_usage_error_exits_2_in_a_real_process():
    result = subprocess.run(
        [sys.executable, "-m", "tf1norm", "norms", "x", "--threshold", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "tf1norm: error: argument --threshold: must be a finite number > 0; got '-1', e.g. 1.0 "
        "(see `tf1norm norms --help`)"
    ]


def _tf1norm_process(*argv):
    """``python -m tf1norm argv`` with TensorFlow's C++ log level at its loudest."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0")
    return subprocess.run(
        [sys.executable, "-m", "tf1norm", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )


def test_tensorflow_logs_nothing_during_a_command_unless_verbose(tmp_path):
    """The first device lookup (here: converting creates variables) logs from C++ at any
    TF_CPP_MIN_LOG_LEVEL ("failed call to cuInit" on a machine without a GPU)."""
    quiet = _tf1norm_process("convert-checkpoint", CKPT(), str(tmp_path / "quiet" / "model"))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    failed = _tf1norm_process("convert-checkpoint", _at("short_data")(), str(tmp_path / "x"))
    assert failed.returncode == 1
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert "truncated" in failed.stderr


def test_a_long_nnet_line_is_shortened_in_the_message(capsys):
    assert (
        command_line.main(["bounds", _at("long_line.nnet")(), "--lower", "0", "--upper", "1"]) == 1
    )
    assert len(capsys.readouterr().err) < 400
