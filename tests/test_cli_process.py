"""The tf1norm command line in a fresh interpreter (all slow): help is fast and imports
no TensorFlow, TensorFlow log lines stay hidden unless --verbose, a real Ctrl-C ends
an exact solve at once."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cli_helpers import ROOT


def _default_sigint():
    """``preexec_fn`` of a child that must see Ctrl-C (it inherits an ignored SIGINT)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _fresh(*argv, timeout=120, env=None):
    return subprocess.run(
        [sys.executable, "-m", "tf1norm", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=dict(os.environ, **(env or {})),
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    [[], ["norms"], ["tensors"], ["bounds"], ["plot", "norms"]],
    ids=["main", "norms", "tensors", "bounds", "plot"],
)
def test_help_is_fast_and_does_not_import_tensorflow(argv):
    start = time.monotonic()
    done = _fresh(*argv, "--help")
    elapsed = time.monotonic() - start
    assert done.returncode == 0 and "usage: tf1norm" in done.stdout, done.stderr
    assert done.stderr == "" and elapsed < 3.0, (elapsed, done.stderr)


@pytest.mark.slow
def test_parsing_imports_no_tensorflow():
    code = (
        "import sys, tf1norm.cli.app; "
        "tf1norm.cli.app.build_parser().parse_args(['norms', 'x']); "
        "print(sorted(m for m in ('tensorflow', 'tf_keras', 'matplotlib') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.slow
def test_tensorflow_log_lines_hidden_unless_verbose(checkpoint):
    clean = dict(os.environ)
    clean.pop("TF_CPP_MIN_LOG_LEVEL", None)
    quiet = subprocess.run(
        [sys.executable, "-m", "tf1norm", "norms", checkpoint],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=clean,
    )
    assert quiet.returncode == 0 and "hidden1/kernel" in quiet.stdout
    assert quiet.stderr == "", quiet.stderr
    verbose = subprocess.run(
        [sys.executable, "-m", "tf1norm", "norms", checkpoint, "--verbose"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=clean,
    )
    assert verbose.returncode == 0 and ".cc:" in verbose.stderr  # TensorFlow's C++ log lines


def _slow_relu_network(path):
    """A 30-120-60-4 ReLU net whose first exact MILP takes well over 30 s."""
    rng = np.random.default_rng(0)
    sizes = [30, 120, 60, 4]
    arrays = {}
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        arrays[f"kernel_{k}"] = rng.normal(size=(a, b)) / np.sqrt(a)
    for k, b in enumerate(sizes[1:]):
        arrays[f"bias_{k}"] = rng.normal(size=b) * 0.1
    np.savez(path, activations=np.array(["relu", "relu", "linear"]), **arrays)


@pytest.mark.slow
def test_ctrl_c_ends_a_real_exact_solve_at_once(tmp_path):
    model = tmp_path / "net.npz"
    _slow_relu_network(model)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tf1norm",
            "bounds",
            str(model),
            "--lower",
            "-1",
            "--upper",
            "1",
            "--method",
            "exact",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=_default_sigint,
    )
    started = process.stderr.readline()  # printed just before the solve starts
    assert "Ctrl-C stops" in started, started
    time.sleep(1.0)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and time.monotonic() - sent < 3.0
    assert err.strip().splitlines() == ["tf1norm: interrupted (Ctrl-C)"]
