"""The legacy examples run on offline data; the CLI reads their checkpoints (slow)."""

import pathlib
import sys

import numpy as np
import pytest

from tf1norm.cli import app as cli
from tf1norm._src.compat import tf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "legacy_examples"))

import seed_000_renorm  # noqa: E402
import seed_002_max_norm_mlp  # noqa: E402
import seed_002_mirrored_fit  # noqa: E402
import seed_003_weight_decay  # noqa: E402
import conv3d_batch_norm  # noqa: E402
import seed_001_weight_norm  # noqa: E402
import seed_004_spectral_norm  # noqa: E402
import seed_001_output_ranges  # noqa: E402
import word2vec_max_norm  # noqa: E402
import local_cluster  # noqa: E402
import slim_train  # noqa: E402

pytestmark = pytest.mark.slow


def test_seed_000_prints_the_seed_matrices(capsys):
    values = seed_000_renorm.main([])
    out = capsys.readouterr().out
    assert "clip rows" in out and "torch.renorm columns" in out
    rows = values["max_norm(x, 10, axes=1)  # clip rows"]
    np.testing.assert_allclose(rows[2:], [[6, 8], [6, 8]], rtol=1e-6)


@pytest.fixture(scope="module")
def seed_002_run(tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("seed002")
    return seed_002_max_norm_mlp.main(["--epochs", "3", "--checkpoint-dir", str(ckpt)])


def test_seed_002_trains_under_max_norm(seed_002_run):
    assert seed_002_run["accuracy"] >= 0.85
    assert 0.999 <= seed_002_run["largest_norm"] <= 1.0 + 1e-5  # active, and respected


def test_seed_002_seed_recipe_gives_the_same_model(seed_002_run, tmp_path, capsys):
    two_runs = seed_002_max_norm_mlp.main(
        ["--epochs", "3", "--two-runs", "--checkpoint-dir", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert "check_train_op: ['never runs', 'never runs']" in out  # the seed's op alone
    assert two_runs["accuracy"] == pytest.approx(seed_002_run["accuracy"], abs=0.02)


def test_seed_003_layer_params_and_decay_flavours(capsys):
    result = seed_003_weight_decay.main(["--epochs", "3"])
    assert result["layer_params_accuracy"] >= 0.8
    decay = result["decay"]
    assert decay["seed 003 SGD decay step"] == decay["decoupled (AdamW)"]
    assert decay["L2 in the loss (coupled)"] != decay["decoupled (AdamW)"]
    out = capsys.readouterr().out
    assert "identical results: True" in out
    assert "Rows 2 and 3 apply the same update by construction" in out  # stated, not hidden
    assert "applies w -= Adam(g + 0.05·w)" in out
    assert out.count("applies w -= Adam(g); w -= 1e-3·0.05·w_old") == 2


def test_cli_norms_reports_checkpoint_norms(seed_002_run, capsys):
    status = cli.main(["norms", seed_002_run["checkpoint"], "--threshold", "1.0"])
    out = capsys.readouterr().out
    reader = tf.train.load_checkpoint(seed_002_run["checkpoint"])
    hidden1 = np.linalg.norm(reader.get_tensor("hidden1/kernel"), axis=0)
    line = next(row for row in out.splitlines() if row.startswith("hidden1/kernel"))
    assert f"{hidden1.max():9.4f}" in line and line.split()[-1] == "0"
    assert "Momentum" not in out  # optimizer slots hidden by default
    output_over = int(
        np.sum(np.linalg.norm(reader.get_tensor("output/kernel"), axis=0) > 1.0 + 1e-6)
    )
    assert status == (1 if output_over else 0)
    assert (
        cli.main(
            ["norms", seed_002_run["checkpoint"], "--threshold", "1.0", "--exclude", "^output/"]
        )
        == 0
    )  # the deliberately unconstrained layer


def test_cli_tensors_names_the_main_jobs_input_and_logits(seed_002_run, capsys):
    assert cli.main(["tensors", seed_002_run["checkpoint"]]) == 0
    out = capsys.readouterr().out
    inputs, outputs = out.split("inputs (")[1].split("outputs (")
    assert "X:0" in inputs
    assert [line.split()[0] for line in outputs.splitlines()[1:]] == ["dnn/output/BiasAdd:0"]
    status = cli.main(
        [
            "bounds",
            seed_002_run["checkpoint"],
            "--input",
            "X:0",
            "--output",
            "dnn/output/BiasAdd:0",
            "--lower",
            "0",
            "--upper",
            "1",
            "--method",
            "interval",
            "sample",
        ]
    )
    assert status == 0 and "INNER range" in capsys.readouterr().out


def test_data_rejects_a_wrong_npz(tmp_path):
    import data

    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a Keras mnist.npz"):
        data.load(str(bad))


def test_conv3d_batch_norm_learns_the_motion(capsys):
    result = conv3d_batch_norm.main(["--steps", "60"])
    out = capsys.readouterr().out
    assert "check_train_op: ok" in out and "UPDATE_OPS: 4" in out
    assert result["accuracy"] >= 0.9


def test_word2vec_caps_only_the_rows_it_looks_up():
    result = word2vec_max_norm.main(["--steps", "300", "--vocabulary", "5000"])
    assert result["largest_seen_norm"] <= 1.0 + 1e-6
    assert result["seen"] < 5000 and result["untouched_equal"]


def test_seed_001_projection_pins_norms_weight_norm_learns_them():
    result = seed_001_weight_norm.main(["--epochs", "2"])
    for norms in result["unit_norm"]["norms"].values():
        np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    learned = np.concatenate(list(result["weight_norm"]["norms"].values()))
    assert learned.std() > 0.1  # gains differ per filter
    assert result["weight_norm"]["accuracy"] >= 0.8


def test_seed_004_loop_builds_and_normalizes_every_layer():
    result = seed_004_spectral_norm.main(["--epochs", "3"])
    np.testing.assert_allclose(result["normalized_sigmas"], 1.0, atol=5e-3)
    assert result["accuracy"] >= 0.7


def test_seed_001_output_ranges(capsys):
    results = seed_001_output_ranges.main([])
    out = capsys.readouterr().out
    lines = {
        line.split(" range ")[0].strip(): line.split(" range ")[1]
        for line in out.splitlines()
        if " range [" in line
    }
    assert lines == {
        "one linear layer, weights [1, 1]": "[0, 2]",
        "one linear layer, weights [-0.5, 1]": "[-0.5, 1]",
        "two all-ones linear layers": "[0, 4]",
    }
    exact, inner = results["exact"], results["sample"]
    for method in ("interval", "crown", "alpha-crown"):
        low, high = results[method]
        assert np.all(low <= exact[0] + 1e-6) and np.all(high >= exact[1] - 1e-6), method
    assert np.all(exact[0] <= inner[0] + 1e-6) and np.all(exact[1] >= inner[1] - 1e-6)


@pytest.mark.parametrize("mode", [[], ["--sync"]], ids=["async", "sync"])
def test_local_cluster_trains_under_max_norm(tmp_path, mode):
    result = local_cluster.main(
        ["--ps", "1", "--workers", "2", "--steps", "200", "--logdir", str(tmp_path)] + mode
    )
    assert result["global_step"] >= 200 and result["accuracy"] >= 0.85
    assert 0.999 <= result["largest_norm"] <= 1.0 + 1e-5  # active, and respected


def test_slim_learning_train_drives_create_train_op_and_stops(tmp_path):
    """A TF1 process (eager disabled, as slim programs are): its own interpreter."""
    import json
    import subprocess

    script = pathlib.Path(__file__).resolve().parent.parent / "legacy_examples" / "slim_train.py"
    run = subprocess.run(
        [sys.executable, str(script), "--steps", "150", "--logdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.split("result: ")[-1])
    assert result["global_step"] == 150 and result["accuracy"] >= 0.85
    assert all(1.5 <= n <= 2.0 + 1e-5 for n in result["largest_norms"].values()), result


EXAMPLES = [
    seed_002_max_norm_mlp,
    seed_002_mirrored_fit,
    seed_003_weight_decay,
    conv3d_batch_norm,
    seed_001_weight_norm,
    seed_004_spectral_norm,
    seed_001_output_ranges,
    word2vec_max_norm,
    local_cluster,
    slim_train,
]


@pytest.mark.parametrize("module", EXAMPLES, ids=lambda m: m.__name__)
def test_every_example_flag_has_help_and_shows_its_default(module, monkeypatch):
    import argparse

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", lambda self, argv=None: self)
    parser = module.parse_args([])
    assert parser.formatter_class is argparse.ArgumentDefaultsHelpFormatter
    missing = [a.option_strings for a in parser._actions if not a.help]
    assert missing == []


def test_seed_002_removes_its_temporary_checkpoint(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = seed_002_max_norm_mlp.main(["--epochs", "1"])
    assert result["accuracy"] > 0.5 and list(tmp_path.iterdir()) == []


def test_missing_scikit_learn_names_the_fix(monkeypatch):
    import data

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(SystemExit, match=r"pip install '\.\[examples\]'.*--data"):
        data.load()


# ---------------------------------------------------------------- quiet examples

EXAMPLES_DIR = pathlib.Path(__file__).resolve().parent.parent / "legacy_examples"
TF_LOG_LINE = r"absl::InitializeLog|oneDNN custom operations|cuda drivers|cuInit|^[IWE]\d{4} "


def _run_main_job(*flags):
    """seed_002 for one epoch in a fresh interpreter without TF_CPP_MIN_LOG_LEVEL: its output."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP_")}
    run = subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / "seed_002_max_norm_mlp.py"), "--epochs", "1", *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    return run.stdout


def test_seed_002_mirrored_fit_equals_one_device():
    """model.fit under MirroredStrategy (2 logical CPUs, a fresh process: the CPU is split
    before TensorFlow's first op) against one device with the same global batches."""
    import re
    import subprocess

    run = subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / "seed_002_mirrored_fit.py"), "--epochs", "5"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    number = r"([0-9.e+-]+)"
    runs = re.findall(rf"test accuracy {number}, largest unit norm {number}", run.stdout)
    assert len(runs) == 2, run.stdout  # 2 replicas, then one device
    for accuracy, norm in runs:
        assert float(accuracy) > 0.9 and float(norm) <= 1.0 + 1e-5, run.stdout
    difference = re.search(rf"2 replicas vs one device: {number}", run.stdout)
    assert float(difference.group(1)) <= 1e-5, run.stdout


def test_main_job_starts_with_its_own_output():
    import re

    output = _run_main_job()
    assert output.splitlines()[0].startswith("data: "), output[:2000]
    assert not re.search(TF_LOG_LINE, output, re.MULTILINE), output[:2000]


def test_main_job_verbose_shows_tensorflows_log():
    import re

    output = _run_main_job("--verbose")
    assert re.search(TF_LOG_LINE, output, re.MULTILINE), output[:2000]
    assert "data: " in output


# data.py imports no TensorFlow; cluster_worker (and its exclusive_update) is imported by
# local_cluster's task, after it
PROGRAMS = sorted(
    p
    for p in EXAMPLES_DIR.glob("*.py")
    if p.name not in ("data.py", "cluster_worker.py", "exclusive_update.py")
)


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_every_example_quiets_tensorflow_before_importing_it(path):
    """Each program calls the shared helper before its first TensorFlow import."""
    source = path.read_text()
    first_import = source.index("import tensorflow as tf")
    assert 0 <= source.find("data.quiet_tensorflow(") < first_import, path.name
    if "parse_args" in source and path.name != "local_cluster.py":
        assert "data.add_verbose_argument(parser)" in source, path.name
