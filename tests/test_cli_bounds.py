"""tf1norm bounds: box and tensor-name errors, the table of every method and its plot,
exact bounds of an npz network, --time-limit and Ctrl-C during an exact solve."""

import importlib
import os
import signal
import threading
import time

import numpy as np
import pytest

from cli_helpers import _one_line_error, _run


def test_bounds_on_a_checkpoint_needs_names_and_suggests_them(capsys, checkpoint):
    status, _, err = _run(capsys, "bounds", checkpoint, "--lower", "0", "--upper", "1")
    assert status == 2
    _one_line_error(err, "--input X:0 --output dnn/output/BiasAdd:0", "tf1norm tensors")


def test_bounds_wrong_tensor_name(capsys, checkpoint):
    status, _, err = _run(
        capsys,
        "bounds",
        checkpoint,
        "--input",
        "X:0",
        "--output",
        "logits/BiasAdd:0",
        "--lower",
        "0",
        "--upper",
        "1",
    )
    assert status == 2
    _one_line_error(
        err,
        "--output 'logits/BiasAdd:0'",
        "did you mean",
        "dnn/output/BiasAdd:0",
        f"tf1norm tensors {checkpoint}",
    )


@pytest.mark.parametrize(
    "lower, upper, needle", [(["0", "0"], ["1"], "--lower needs 1 or 3"), (["1"], ["0"], "swap")]
)
def test_bounds_box_errors(capsys, checkpoint, lower, upper, needle):
    status, _, err = _run(
        capsys,
        "bounds",
        checkpoint,
        "--input",
        "X:0",
        "--output",
        "dnn/output/BiasAdd:0",
        "--lower",
        *lower,
        "--upper",
        *upper,
    )
    assert status == 2
    _one_line_error(err, needle)


def _tables(out):
    tables = {}
    for block in out.split("\nmethod ")[1:]:
        header, _, *rows = block.strip().splitlines()
        rows = [row for row in rows if row.split() and row.split()[0].isdigit()]
        tables[header.split(":")[0]] = (
            header,
            np.array([[float(v) for v in r.split()[1:3]] for r in rows]),
        )
    return tables


def test_bounds_all_methods_table_and_plot(capsys, checkpoint, tmp_path):
    from matplotlib.image import imread

    png = tmp_path / "bounds.png"
    status, out, _ = _run(
        capsys,
        "bounds",
        checkpoint,
        "--input",
        "X:0",
        "--output",
        "dnn/output/BiasAdd:0",
        "--lower",
        "0",
        "--upper",
        "1",
        "--method",
        "all",
        "--plot",
        str(png),
    )
    assert status == 0 and f"wrote {png}" in out
    tables = _tables(out)
    assert list(tables) == ["interval", "crown", "alpha-crown", "sample"]
    # by hand: hidden = relu(3a+4b, .5c, .6a+.8b, 0); out0 = 2h0 in [0, 14], out1 = h1 in [0, .5]
    true_range = np.array([[0, 14], [0, 0.5]])
    assert "INNER range" in tables["sample"][0] and "not a bound" in tables["sample"][0]
    inner = tables["sample"][1]
    assert np.all(inner[:, 0] >= true_range[:, 0]) and np.all(inner[:, 1] <= true_range[:, 1])
    for method in ("interval", "crown", "alpha-crown"):
        assert "sound bounds" in tables[method][0]
        np.testing.assert_allclose(tables[method][1], true_range, atol=1e-5)  # tight here
    image = imread(png)
    assert image.shape[:2] == (500, 1000)
    assert np.mean(image[..., :3].min(axis=-1) < 0.9) > 0.01  # bars and text, not blank


def test_bounds_exact_on_an_npz_network(capsys, tmp_path):
    model = tmp_path / "linear.npz"
    np.savez(
        model,
        kernel_0=np.array([[1.0], [-0.5]]),
        bias_0=np.array([0.25]),
        activations=np.array(["linear"]),
    )
    status, out, err = _run(
        capsys, "bounds", str(model), "--lower", "0", "--upper", "1", "--method", "exact", "sample"
    )
    assert status == 0 and "Ctrl-C stops" in err
    tables = _tables(out)
    assert "the true range" in tables["exact"][0]
    np.testing.assert_allclose(tables["exact"][1], [[-0.25, 1.25]], atol=1e-12)


def _slow_exact(seconds):
    def exact(network, lower, upper, progress=None, **options):
        time.sleep(seconds)  # stands in for a MILP that runs for minutes
        raise AssertionError("the command should have stopped waiting")

    return exact


def test_exact_time_limit_stops_the_command(capsys, monkeypatch, checkpoint):
    monkeypatch.setattr(importlib.import_module("tf1norm.bounds.exact"), "exact", _slow_exact(30))
    start = time.monotonic()
    status, out, err = _run(
        capsys,
        "bounds",
        checkpoint,
        "--input",
        "X:0",
        "--output",
        "dnn/output/BiasAdd:0",
        "--lower",
        "0",
        "--upper",
        "1",
        "--method",
        "exact",
        "--time-limit",
        "0.5",
    )
    # a solver that ignores its time limit: CROWN bounds, marked not exact, no hang
    assert status == 0 and time.monotonic() - start < 10
    assert "showing CROWN bounds" in err
    rows = [line for line in out.splitlines() if "(time limit)" in line]
    assert len(rows) == 2 and all(row.endswith("not exact (time limit)") for row in rows), out


@pytest.fixture
def sigint_raises():
    """Ctrl-C raises KeyboardInterrupt here, however pytest was started.

    A shell starts a background job (``pytest ... &`` without job control)
    with SIGINT ignored, and Python then installs no handler: the Ctrl-C
    tests would test the shell, not tf1norm.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_exact_ends_at_once(capsys, monkeypatch, checkpoint, sigint_raises):
    monkeypatch.setattr(importlib.import_module("tf1norm.bounds.exact"), "exact", _slow_exact(30))
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    status, _, err = _run(
        capsys,
        "bounds",
        checkpoint,
        "--input",
        "X:0",
        "--output",
        "dnn/output/BiasAdd:0",
        "--lower",
        "0",
        "--upper",
        "1",
        "--method",
        "exact",
    )
    timer.join()
    assert status == 130 and time.monotonic() - start < 10
    assert err.strip().splitlines()[-1] == "tf1norm: interrupted (Ctrl-C)"
