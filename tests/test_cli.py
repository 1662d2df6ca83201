"""The ``tf1norm`` command line: one-line errors and exit codes, tensors, norms and
--exclude, plots of norms.

The tests call ``cli.main([...])`` in this process. The bounds command (tables,
plots, --time-limit, Ctrl-C) is in test_cli_bounds.py; the tests that need a fresh
interpreter (help time, log noise, a real Ctrl-C; slow) in test_cli_process.py.
"""

import numpy as np
import pytest

from tf1norm.cli import app as cli
from tf1norm.cli import commands as cli_commands

from cli_helpers import _one_line_error, _run


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
