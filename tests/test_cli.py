"""The ``tf1norm`` command line: fast help, one-line errors and exit codes, tensors,
--exclude, bounds tables and plots, Ctrl-C and --time-limit.

Most tests call ``cli.main([...])`` in this process; the few that need a fresh
interpreter (help time, log noise, a real Ctrl-C) are marked slow.
"""

import importlib
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tf1norm.cli import app as cli
from tf1norm.cli import commands as cli_commands
from tf1norm._src.compat import tf, v1

ROOT = pathlib.Path(__file__).resolve().parent.parent
HIDDEN = np.array([[3.0, 0.0, 0.6, 0.0], [4.0, 0.0, 0.8, 0.0], [0.0, 0.5, 0.0, 0.0]])
OUTPUT = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 1.0]])


def _save(directory, step, scale):
    """A 3-4-2 ReLU net like the main job's (X:0 -> dnn/output/BiasAdd:0), trained-looking."""
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, (None, 3), name="X")
        y = v1.placeholder(tf.int64, (None,), name="y")
        with v1.name_scope("dnn"):
            hidden = v1.layers.dense(
                x,
                4,
                tf.nn.relu,
                name="hidden1",
                kernel_initializer=v1.constant_initializer(HIDDEN * scale),
            )
            logits = v1.layers.dense(
                hidden, 2, name="output", kernel_initializer=v1.constant_initializer(OUTPUT)
            )
        loss = v1.losses.sparse_softmax_cross_entropy(y, logits)
        step_var = v1.train.get_or_create_global_step()
        v1.train.MomentumOptimizer(0.1, 0.9).minimize(loss, step_var)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(step_var.assign(step))
            return v1.train.Saver().save(sess, os.path.join(directory, "model.ckpt"), step)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("logdir")
    for step, scale in ((10, 1.0), (2, 0.5)):  # written out of step order on purpose
        _save(str(directory), step, scale)
    return directory


@pytest.fixture(scope="module")
def checkpoint(logdir):
    return str(logdir / "model.ckpt-10")


def _run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(err, *needles):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tf1norm") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["norms", "ckpt", "--threshold", "0"], "'0'"),
        (["norms", "ckpt", "--threshold", "nan"], "'nan'"),
        (["norms", "ckpt", "--threshold", "-1"], "'-1'"),
        (["norms", "ckpt", "--exclude", "output/(kernel"], "regular expression"),
        (["bounds", "m.npz", "--lower", "nan", "--upper", "1"], "'nan'"),
        (["bounds", "m.npz", "--lower", "0", "--upper", "inf"], "'inf'"),
        (["bounds", "m.npz", "--lower", "0", "--upper", "1", "--method", "best"], "best"),
        (["bounds", "m.npz", "--lower", "0", "--upper", "1", "--time-limit", "0"], "time-limit"),
        (["plot", "norms", "ckpt"], "-o"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(capsys, argv, needle):
    status, out, err = _run(capsys, *argv)
    assert status == 2 and out == ""
    _one_line_error(err, needle, "--help")


def test_bad_argument_raises_with_debug():
    with pytest.raises(Exception, match="threshold"):
        cli.main(["norms", "ckpt", "--threshold", "0", "--debug"])


@pytest.mark.parametrize(
    "argv",
    [
        ["norms", "{missing}"],
        ["tensors", "{missing}"],
        ["plot", "norms", "{missing}", "-o", "x.png"],
        ["bounds", "{missing}", "--lower", "0", "--upper", "1"],
    ],
    ids=["norms", "tensors", "plot", "bounds"],
)
def test_a_missing_checkpoint_names_the_index_file(capsys, tmp_path, argv):
    missing = str(tmp_path / "nowhere" / "model.ckpt")
    status, _, err = _run(capsys, *[a.format(missing=missing) for a in argv])
    assert status == 1
    _one_line_error(err, "no checkpoint", "model.ckpt.index", "prefix")


def test_a_directory_without_checkpoints(capsys, tmp_path):
    status, _, err = _run(capsys, "norms", str(tmp_path))
    assert status == 1
    _one_line_error(err, "no checkpoint in directory", "prefix")


def test_a_missing_model_file(capsys, tmp_path):
    status, _, err = _run(capsys, "bounds", str(tmp_path / "m.npz"), "--lower", "0", "--upper", "1")
    assert status == 1
    _one_line_error(err, "no model file", "m.npz")


def test_tensors_lists_variables_inputs_and_outputs(capsys, checkpoint):
    status, out, _ = _run(capsys, "tensors", checkpoint)
    assert status == 0
    variables, inputs, outputs = (
        out.split("inputs (")[0],
        *out.split("inputs (")[1].split("outputs ("),
    )
    rows = {line.split()[0]: line.split()[1:] for line in variables.splitlines()[1:]}
    assert rows["hidden1/kernel"] == ["(3,", "4)", "float32"]
    assert rows["output/bias"] == ["(2,)", "float32"]
    assert rows["global_step"] == ["()", "int64"]
    assert "hidden1/kernel/Momentum" in rows
    assert "X:0" in inputs and "[None, 3]" in inputs and "y:0" in inputs
    output_names = [line.split()[0] for line in outputs.splitlines()[1:]]
    assert output_names == ["dnn/output/BiasAdd:0"]  # not hidden1, not gradients


def test_tensors_accepts_the_meta_file_and_the_directory(capsys, logdir, checkpoint):
    _, from_meta, _ = _run(capsys, "tensors", checkpoint + ".meta")
    _, from_dir, _ = _run(capsys, "tensors", str(logdir))
    assert "dnn/output/BiasAdd:0" in from_meta and "variables in" not in from_meta
    assert f"variables in {logdir / 'model.ckpt-2'}:" in from_dir  # the last one saved


def test_norms_threshold_and_exclude(capsys, checkpoint):
    status, out, _ = _run(capsys, "norms", checkpoint, "--threshold", "1.0")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:3]}
    assert rows["hidden1/kernel"][-4:] == ["0.0000", "0.7500", "5.0000", "1"]  # norms 5 1 .5 0
    assert rows["output/kernel"][-1] == "2"  # norms sqrt(5) and sqrt(2)
    assert status == 1 and "3 units above --threshold 1" in out and "--exclude" in out
    status, out, _ = _run(
        capsys,
        "norms",
        checkpoint,
        "--threshold",
        "5.0",
        "--exclude",
        "^output/",
        "--exclude",
        "nothing",
    )
    assert status == 0 and "output/kernel" not in out and "hidden1/kernel" in out
    assert "Momentum" not in out


def test_norms_exclude_everything_is_an_error(capsys, checkpoint):
    status, _, err = _run(capsys, "norms", checkpoint, "--exclude", ".")
    assert status == 1
    _one_line_error(err, "--exclude")


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


def test_plot_norms_of_a_logdir_in_step_order(capsys, logdir, tmp_path):
    from matplotlib.image import imread

    prefixes, steps = cli_commands.checkpoints_in_step_order([str(logdir)])
    assert [steps[p] for p in prefixes] == [2, 10]
    png = tmp_path / "norms.png"
    status, out, _ = _run(
        capsys,
        "plot",
        "norms",
        str(logdir),
        "-o",
        str(png),
        "--threshold",
        "1",
        "--exclude",
        "Momentum",
    )
    assert status == 0 and "2 checkpoints" in out
    image = imread(png)
    assert image.shape[:2] == (600, 1000)
    assert np.mean(image[..., :3].min(axis=-1) < 0.9) > 0.01


def test_plot_to_an_unwritable_path(capsys, checkpoint, tmp_path):
    status, _, err = _run(
        capsys, "plot", "norms", checkpoint, "-o", str(tmp_path / "missing" / "x.png")
    )
    assert status == 1
    _one_line_error(err, "cannot write plot", "directory exists")


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


def _default_sigint():
    """``preexec_fn`` of a child that must see Ctrl-C (it inherits an ignored SIGINT)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
