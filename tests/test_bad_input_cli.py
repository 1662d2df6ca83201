"""Bad input to ``tf1norm.bounds`` and the command line, and the audit's coverage of the
public API.

Command-line cases run ``tf1norm.cli.app.main(argv)`` in-process and expect one
line on stderr naming the problem, exit status 2 for a usage error and 1 for a
failure (a missing, truncated or foreign file), never a traceback. ``CASES``
is graded by ``tools/audit_bad_input.py``; every case must be "clear".
"""

import functools
import math
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import tf1norm
from tf1norm import bounds
from tf1norm.cli import app as command_line
from tf1norm._src.compat import tf, v1

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
from audit_bad_input import Case, Exit, cli, grade, load_cases  # noqa: E402

V, E, USAGE, FAILURE = ValueError, TypeError, Exit(2), Exit(1)


@functools.lru_cache(maxsize=None)
def _files():
    """A scratch directory with a good checkpoint, damaged copies and foreign files."""
    root = tempfile.mkdtemp(prefix="tf1norm_bad_cli_")
    with tf.Graph().as_default():
        kernel = v1.get_variable("dense/kernel", [3, 2], initializer=tf.ones_initializer())
        with v1.Session() as session:
            session.run(kernel.initializer)
            prefix = v1.train.Saver().save(session, os.path.join(root, "model.ckpt"))
    for name, damaged in (("short_data", ".data-00000-of-00001"), ("short_index", ".index")):
        for suffix in (".index", ".data-00000-of-00001", ".meta"):
            shutil.copy(prefix + suffix, os.path.join(root, name + suffix))
        path = os.path.join(root, name + damaged)
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    _traced_checkpoint(root)
    with open(os.path.join(root, "long_line.nnet"), "w") as handle:
        handle.write("4,2,2,2\n" + "x" * 5_000_000 + "\n")
    open(os.path.join(root, "binary.nnet"), "wb").write(b"\xff\xfe\x00 not text\n")
    for name in ("garbage.npz", "garbage.h5", "garbage.keras"):
        open(os.path.join(root, name), "wb").write(b"\x00\x01 not a model")
    np.savez(os.path.join(root, "empty.npz"))
    np.savez(
        os.path.join(root, "net.npz"),
        kernel_0=np.ones((2, 2)),
        bias_0=np.zeros(2),
        activations=np.array(["linear"]),
    )
    np.savez(
        os.path.join(root, "nan.npz"),
        kernel_0=np.full((2, 2), np.nan),
        bias_0=np.zeros(2),
        activations=np.array(["linear"]),
    )
    os.makedirs(os.path.join(root, "empty_dir"))
    return root


def _traced_checkpoint(root):
    """``traced.ckpt`` (x:0 -> y:0 through dense/kernel), and ``short_traced``, its data halved."""
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        kernel = v1.get_variable("dense/kernel", [3, 2], initializer=tf.ones_initializer())
        tf.identity(tf.matmul(x, kernel), name="y")
        with v1.Session() as session:
            session.run(kernel.initializer)
            prefix = v1.train.Saver().save(session, os.path.join(root, "traced.ckpt"))
    for suffix in (".index", ".data-00000-of-00001", ".meta"):
        shutil.copy(prefix + suffix, os.path.join(root, "short_traced" + suffix))
    path = os.path.join(root, "short_traced.data-00000-of-00001")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def _restore_into_kernel(name):
    kernel = v1.get_variable("dense/kernel", [3, 2])
    with v1.Session() as session:
        session.run(kernel.initializer)
        return tf1norm.restore_plain_checkpoint(session, os.path.join(_files(), name))


def _read_kernel(name):
    kernel = v1.get_variable("dense/kernel", [3, 2])
    return bounds.graph_value_reader(checkpoint=os.path.join(_files(), name))(kernel)


def _at(name):
    return lambda: os.path.join(_files(), name)


def run_cli(*argv):
    """A case call: ``tf1norm.cli.app.main`` with ``argv`` (callables are resolved first)."""
    return lambda: cli([a() if callable(a) else a for a in argv])()


CKPT, NET = _at("model.ckpt"), _at("net.npz")
KERNEL = np.array([[1.0, -1.0], [0.5, 2.0]])


def _net(kernel=KERNEL, bias=None):
    return bounds.Network.from_numpy([kernel], [np.zeros(2) if bias is None else bias], ["relu"])


CASES = [
    # tf1norm.bounds
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [math.nan, 0], [1, 1]),
        V,
        ["`lower`", "finite", "nan", "feature 0"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [-math.inf, 0], [1, 1]),
        V,
        ["`lower`", "finite", "-inf"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [0, 0], [1, math.inf]),
        V,
        ["`upper`", "finite", "inf", "feature 1"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(np.full((2, 2), np.nan)), [0, 0], [1, 1]),
        V,
        ["layer 0", "`kernel`", "nan"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(bias=[np.inf, 0]), [0, 0], [1, 1], "interval"),
        V,
        ["layer 0", "`bias`", "inf"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [1, 0], [0, 1]),
        V,
        ["`lower`", "`upper`", "feature 0"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [0, 0, 0], [1, 1, 1]),
        V,
        ["`lower`", "`upper`", "2 values", "3"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [0, 0], [1, 1], "bogus"),
        V,
        ["output_bounds", "method", "'bogus'"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds("net", [0, 0], [1, 1]),
        E,
        ["output_bounds", "`network`", "str"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), ["a", 0], [1, 1]),
        E,
        ["`lower`", "'a'"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [0, 0], [1, 1], spec=[[math.nan, 1.0]]),
        V,
        ["output_bounds", "`spec`", "finite"],
    ),
    Case(
        "bounds.Network",
        lambda: bounds.Network.from_numpy([KERNEL], [], ["relu"]),
        V,
        ["from_numpy", "1 weights", "0 biases"],
    ),
    Case("bounds.Dense", lambda: bounds.Dense(np.ones(3)), V, ["Dense", "`kernel`", "(3,)"]),
    Case("bounds.Dense", lambda: bounds.Dense(KERNEL, np.ones(3)), V, ["Dense", "`bias`", "(3,)"]),
    Case("bounds.Activation", lambda: bounds.Activation("swish"), V, ["Activation", "'swish'"]),
    Case("bounds.Network", lambda: bounds.Network([]), V, ["Network", "first layer"]),
    Case(
        "bounds.Network",
        lambda: bounds.Network.from_numpy([KERNEL], [np.zeros(2)], "relu"),
        E,
        ["from_numpy", "`activations`", "'relu'", "activations=['relu', 'linear']"],
    ),
    Case(
        "bounds.lipschitz_bound",
        lambda: bounds.lipschitz_bound([KERNEL]),
        E,
        ["lipschitz_bound", "`network`", "list", "Network.from_numpy"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [-1e30, -1e30], [1e30, 1e30], "exact"),
        V,
        ["exact", "`lower`", "±1e+15", "-1e+30", "feature 0", "HiGHS", "crown"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [0, 0], [1, 2e15], "milp"),
        V,
        ["exact", "`upper`", "±1e+15", "2e+15", "feature 1", "Rescale the inputs"],
    ),
    Case(
        "bounds.graph_value_reader",
        lambda: bounds.graph_value_reader(checkpoint="/nonexistent/model.ckpt"),
        V,
        [
            "graph_value_reader",
            "`checkpoint`",
            "'/nonexistent/model.ckpt'",
            "no checkpoint files",
            "Saver.save",
        ],
    ),
    Case(
        "bounds.graph_value_reader",
        lambda: _read_kernel("short_data"),
        V,
        [
            "graph_value_reader",
            "`checkpoint`",
            "'dense/kernel'",
            "short_data",
            "truncated",
            "copy it again",
        ],
    ),
    Case(
        "bounds.graph_value_reader",
        lambda: bounds.graph_value_reader(),
        E,
        ["graph_value_reader", "`session`", "None", "tf.compat.v1.Session"],
    ),
    Case(
        "restore_plain_checkpoint",
        lambda: _restore_into_kernel("short_data"),
        V,
        [
            "restore_plain_checkpoint",
            "`path`",
            "'dense/kernel'",
            "short_data",
            "truncated",
            "copy it again",
        ],
    ),
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

# Public names the audit does not call with bad input, and why.
EXEMPT = {
    "Constraint": "abstract base class; its subclasses are audited",
    "Transform": "abstract base class; every built-in transform is audited",
    "StepContext": "built by create_train_op for transforms, not by users",
    "Finding": "a result record returned by check_train_op",
    "skip_nonfinite": "takes no arguments",
    "require_v1_layers": "takes no arguments",
}


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.apis[0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_answered_clearly(case):
    verdict, detail = grade(case)
    assert verdict == "clear", detail


def test_every_public_callable_is_audited_or_exempt():
    audited = {api for _, case in load_cases() for api in case.apis}
    public = {
        name
        for name in tf1norm.__all__
        if callable(getattr(tf1norm, name))
        and not isinstance(getattr(tf1norm, name), type(tf1norm))
    }
    missing = sorted(public - audited - set(EXEMPT))
    assert not missing, f"public callables without a bad-input case: {missing}"
    assert not set(EXEMPT) & audited, "an exempt name has cases: drop the exemption"
    assert len(load_cases()) >= 150


def _raise(error):
    raise error


GRADED = [
    (Case("x", lambda: _raise(ValueError("f: `a` bad; got 1.")), V, ["`a`", "1"]), "clear"),
    (Case("x", lambda: _raise(ValueError("f: bad.")), V, ["`a`"]), "vague"),
    (Case("x", lambda: _raise(TypeError("f: `a` bad.")), V, ["`a`"]), "wrong type"),
    (Case("x", lambda: _raise(KeyError("a")), V, ["a"]), "internal error"),
    (Case("x", lambda: _raise(OverflowError("`a`")), V, ["`a`"]), "internal error"),
    (Case("x", lambda: None, V, ["`a`"]), "silent"),
    (Case("cli", run_cli("norms"), USAGE, ["checkpoint"]), "clear"),
    (Case("cli", run_cli("norms"), FAILURE, ["checkpoint"]), "wrong type"),
    (Case("cli", run_cli("norms"), USAGE, ["nothing like this"]), "vague"),
    (Case("cli", run_cli("norms", "x", "--threshold", "0"), USAGE, ["--threshold"]), "clear"),
]


@pytest.mark.parametrize("case,expected", GRADED)
def test_the_audit_grades_each_kind_of_answer(case, expected):
    assert grade(case)[0] == expected


def test_the_audit_counts_grades_and_fails_unless_all_clear(capsys, monkeypatch):
    import audit_bad_input

    monkeypatch.setattr(
        audit_bad_input, "load_cases", lambda **_: [("m", case) for case, _ in GRADED]
    )
    assert audit_bad_input.main([]) == 1
    out = capsys.readouterr().out
    assert "10 cases (4 command line)" in out
    for name, count in (
        ("clear", 3),
        ("vague", 2),
        ("wrong type", 2),
        ("internal error", 2),
        ("silent", 1),
    ):
        assert f"  {name:15s} {count}\n" in out


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
