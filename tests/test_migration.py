"""TF1 graph program vs the same model code in a TF2 step: equal step by step.

Each case writes the model once with TF1 APIs (``tf.compat.v1.layers``,
tf1norm getters/regularizers); the TF1 side builds it in a graph with
``create_train_op``, the TF2 side runs it inside a
``track_tf1_style_variables`` layer with ``make_train_step`` in a
``tf.function``, and ``migration.compare_steps`` compares every variable,
optimizer slot, ``u``/``g``, moving statistic and the global step after each
of 10 steps (float32).

How equal is "equal" depends on which kernels the two runtimes run, so the
tolerance is derived, not measured. Both sides compute the same float32 ops;
on Intel CPUs, and with ``TF_ENABLE_ONEDNN_OPTS=0`` on any CPU, they also run
the same kernels and agree exactly (measured: 0). On AMD CPUs with oneDNN on,
the graph runtime and ``tf.function`` pick different oneDNN convolution and
matmul kernels, which add the same products in another order. A float32 sum
of ``n`` terms added in another order differs by about ``sqrt(n) * u * sum|x|``
(``u = 2**-24``, the rounding errors of a random-order sum behave like a random
walk; the worst case is ``(n - 1) * u``), and ``STEPS`` steps can add such a
difference each step. Hence ``reordered_sum_tolerance(n)`` for each model, with
``n`` the longest reduction of its gradients (batch x output positions of a
convolution). Measured on a 2-core AMD EPYC with oneDNN on: 1.15e-6 (weight-norm
conv net) and 1.25e-6 (batch-norm conv net) after 10 steps, against a tolerance
of 1.9e-5 for their n = 16 * 8 * 8 reductions.
"""

import math

import numpy as np
import pytest

import tf1norm
from tf1norm import migration
from tf1norm._src.compat import tf, v1

STEPS = 10
UNIT_ROUNDOFF = 2.0**-24  # float32


def reordered_sum_tolerance(terms):
    """Relative difference allowed after ``STEPS`` steps whose longest float32
    reduction has ``terms`` terms summed in another order (see the module doc)."""
    return STEPS * math.sqrt(terms) * UNIT_ROUNDOFF


# Dense models: batch 16, so each weight's gradient sums 16 products; the
# forward matmuls sum at most 32 (the widest layer). Conv nets: conv1's kernel
# gradient sums over 16 images x 8 x 8 output positions.
TOLERANCE = reordered_sum_tolerance(32)
CONV_TOLERANCE = reordered_sum_tolerance(16 * 8 * 8)


def _layers():
    return tf1norm.require_v1_layers()


def _xent(logits, y):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))


def seed_002_mlp(x, y):
    """Seed 002: 784-300-100-10 shape (scaled down), max-norm on the hidden kernels."""
    init = v1.variance_scaling_initializer(scale=2.0)
    reg = tf1norm.max_norm_regularizer(threshold=0.3)
    h = _layers().dense(
        x, 32, tf.nn.relu, kernel_initializer=init, kernel_regularizer=reg, name="hidden1"
    )
    h = _layers().dense(
        h, 16, tf.nn.relu, kernel_initializer=init, kernel_regularizer=reg, name="hidden2"
    )
    return _xent(_layers().dense(h, 5, kernel_initializer=init, name="output"), y)


def plain_mlp(x, y):
    h = _layers().dense(x, 32, tf.nn.relu, kernel_initializer=_glorot(), name="hidden1")
    return _xent(_layers().dense(h, 5, kernel_initializer=_glorot(), name="output"), y)


def _glorot():
    """get_variable's default, spelled out.

    Left implicit, the TF1 graph and the shim draw different initial kernels
    under ``DeterministicRandomTestTool`` (the default initializer is made in
    a different place, so its random op gets another count).
    """
    return v1.glorot_uniform_initializer()


def spectral_mlp(x, y):
    with v1.variable_scope("mlp", custom_getter=tf1norm.spectral_norm_getter()):
        h = _layers().dense(x, 32, tf.nn.relu, kernel_initializer=_glorot(), name="hidden1")
        h = _layers().dense(h, 16, tf.nn.relu, kernel_initializer=_glorot(), name="hidden2")
        return _xent(_layers().dense(h, 5, kernel_initializer=_glorot(), name="output"), y)


def weight_norm_convnet(x, y):
    with v1.variable_scope("convnet", custom_getter=tf1norm.weight_norm_getter()):
        h = _layers().conv2d(
            x, 4, 3, activation=tf.nn.relu, kernel_initializer=_glorot(), name="conv1"
        )
        h = _layers().conv2d(
            h, 4, 3, strides=2, activation=tf.nn.relu, kernel_initializer=_glorot(), name="conv2"
        )
        return _xent(
            _layers().dense(_layers().flatten(h), 5, kernel_initializer=_glorot(), name="logits"), y
        )


def batch_norm_convnet(x, y):
    h = _layers().conv2d(x, 4, 3, use_bias=False, kernel_initializer=_glorot(), name="conv1")
    h = tf.nn.relu(tf1norm.batch_norm(h, training=True, name="bn1"))
    h = _layers().conv2d(h, 4, 3, strides=2, kernel_initializer=_glorot(), name="conv2")
    return _xent(
        _layers().dense(_layers().flatten(h), 5, kernel_initializer=_glorot(), name="logits"), y
    )


def embedding_model(x, y):
    """Row max-norm of an embedding table (only looked-up rows, after the update)."""
    ids = tf.cast(tf.abs(x[:, :4]) * 3, tf.int32) % 12
    table = v1.get_variable("embedding", [12, 6], initializer=v1.random_normal_initializer())
    rows = tf1norm.embedding_lookup(table, ids, max_norm=0.8)
    return _xent(
        _layers().dense(tf.reshape(rows, [-1, 24]), 5, kernel_initializer=_glorot(), name="output"),
        y,
    )


class _Shim(tf.keras.layers.Layer):
    """The TF1 model code as a tf-keras layer (the model-mapping shim)."""

    def __init__(self, model_fn):
        super().__init__()
        self.model_fn = model_fn

    @v1.keras.utils.track_tf1_style_variables
    def call(self, x, y):
        return self.model_fn(x, y)


def _batches(image):
    rng = np.random.default_rng(7)
    shape = (16, 10, 10, 1) if image else (16, 20)
    return [
        (rng.normal(size=shape).astype(np.float32), rng.integers(0, 5, 16).astype(np.int32))
        for _ in range(3)
    ]


def compare(model_fn, make_optimizer, make_transforms, image=False, jit=False):
    """``compare_steps`` of ``model_fn`` trained by create_train_op vs make_train_step."""

    def build_tf1(inputs):
        return tf1norm.create_train_op(
            model_fn(*inputs), make_optimizer(), transforms=make_transforms()
        )

    def build_tf2():
        layer, optimizer = _Shim(model_fn), make_optimizer()
        step = tf1norm.make_train_step(optimizer, make_transforms())

        @tf.function(jit_compile=jit)
        def step_fn(x, y):
            return step(lambda: layer(x, y), lambda: layer.trainable_variables)

        return step_fn, lambda: migration.tf1_variable_map(layer.variables, optimizer, step)

    return migration.compare_steps(build_tf1, build_tf2, _batches(image), steps=STEPS)


def _assert_equal_steps(report, expected_names, tolerance=TOLERANCE):
    assert len(report.per_step) == STEPS
    missing = set(expected_names) - set(report.per_variable)
    assert not missing, f"not compared: {missing}\n{report}"
    assert report.max_difference <= tolerance, str(report)


def test_seed_002_max_norm_mlp_momentum_clip():
    report = compare(
        seed_002_mlp,
        lambda: v1.train.MomentumOptimizer(0.5, 0.9),
        lambda: [tf1norm.clip_by_value(-1.0, 1.0)],
    )
    _assert_equal_steps(
        report, ["hidden1/kernel", "hidden2/kernel", "hidden1/kernel/Momentum", "global_step"]
    )
    assert not report.only_tf1


def test_seed_003_decoupled_decay_adam():
    report = compare(
        plain_mlp,
        lambda: v1.train.AdamOptimizer(0.05),
        lambda: [
            tf1norm.clip_by_global_norm(1.0),
            tf1norm.add_decoupled_weight_decay(0.1, exclude=["bias"]),
        ],
    )
    _assert_equal_steps(report, ["hidden1/kernel/Adam_1", "beta1_power", "global_step"])
    assert not report.only_tf1


def test_seed_004_spectral_norm_u_and_slots():
    report = compare(spectral_mlp, lambda: v1.train.AdamOptimizer(0.01), lambda: [])
    _assert_equal_steps(
        report, ["mlp/hidden1/kernel/sn_u", "mlp/output/kernel/sn_u", "mlp/hidden2/kernel/Adam"]
    )
    assert not report.only_tf1


def test_weight_norm_convnet_g():
    report = compare(
        weight_norm_convnet, lambda: v1.train.AdamOptimizer(0.01), lambda: [], image=True
    )
    _assert_equal_steps(
        report,
        ["convnet/conv1/kernel/wn_g", "convnet/conv1/kernel/wn_g/Adam", "convnet/logits/kernel"],
        CONV_TOLERANCE,
    )
    assert not report.only_tf1


def test_batch_norm_convnet_moving_statistics():
    report = compare(
        batch_norm_convnet, lambda: v1.train.MomentumOptimizer(0.1, 0.9), lambda: [], image=True
    )
    _assert_equal_steps(
        report, ["bn1/moving_mean", "bn1/moving_variance", "bn1/gamma"], CONV_TOLERANCE
    )
    assert not report.only_tf1


def test_embedding_row_max_norm_sparse_updates():
    report = compare(embedding_model, lambda: v1.train.AdamOptimizer(0.1), lambda: [])
    _assert_equal_steps(report, ["embedding", "embedding/Adam", "output/kernel"])
    assert not report.only_tf1


def test_max_norm_with_jit_compile():
    """XLA fuses and reorders the float32 reductions (softmax, norms): ~1 ulp per step."""
    report = compare(
        seed_002_mlp,
        lambda: v1.train.AdamOptimizer(0.05),
        lambda: [tf1norm.clip_by_global_norm(1.0)],
        jit=True,
    )
    assert "hidden1/kernel/Adam" in report.per_variable
    assert report.max_difference <= 1e-5, str(report)


def test_keras_adam_matches_tf1_adam_slots():
    """A Keras 3 Adam in the TF2 step: kernels and m/v slots named and equal to TF1's."""
    keras = pytest.importorskip("keras")

    def build_tf1(inputs):
        return tf1norm.create_train_op(
            seed_002_mlp(*inputs),
            v1.train.AdamOptimizer(0.05, epsilon=1e-7),
            transforms=[tf1norm.add_decoupled_weight_decay(0.1)],
        )

    def build_tf2():
        layer, optimizer = _Shim(seed_002_mlp), keras.optimizers.Adam(0.05, epsilon=1e-7)
        step = tf1norm.make_train_step(optimizer, [tf1norm.add_decoupled_weight_decay(0.1)])
        step_fn = tf.function(
            lambda x, y: step(lambda: layer(x, y), lambda: layer.trainable_variables)
        )
        return step_fn, lambda: migration.tf1_variable_map(layer.variables, optimizer, step)

    report = migration.compare_steps(build_tf1, build_tf2, _batches(False), steps=STEPS)
    # Keras 3 Adam updates m as m += (g - m)(1 - b1) where TF1 computes
    # b1 m + (1 - b1) g, and divides by sqrt(v) + eps with v near 0 for rarely
    # active units: float32 rounding differs by ulps that m/sqrt(v) amplifies.
    assert report.max_difference <= 5e-5, str(report)
    assert "hidden1/kernel/Adam_1" in report.per_variable
    assert report.only_tf1 == ["beta1_power", "beta2_power"]


def test_relative_difference_definition():
    assert migration.relative_difference([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert migration.relative_difference([1.0, -2.0], [1.0, -1.0]) == pytest.approx(0.5)
    assert migration.relative_difference([1.0], [1.0, 2.0]) == float("inf")


def test_compare_steps_detects_a_wrong_port():
    """A TF2 port that forgets the max-norm transform differs from the TF1 program."""

    def build_tf1(inputs):
        return tf1norm.create_train_op(seed_002_mlp(*inputs), v1.train.AdamOptimizer(0.05))

    def build_tf2():
        layer, optimizer = _Shim(plain_mlp_named_like_seed_002), v1.train.AdamOptimizer(0.05)
        step = tf1norm.make_train_step(optimizer)
        step_fn = tf.function(
            lambda x, y: step(lambda: layer(x, y), lambda: layer.trainable_variables)
        )
        return step_fn, lambda: migration.tf1_variable_map(layer.variables, optimizer, step)

    report = migration.compare_steps(build_tf1, build_tf2, _batches(False), steps=3)
    assert report.max_difference > 1e-3
    assert report.per_variable["hidden1/kernel"] > 1e-3


def plain_mlp_named_like_seed_002(x, y):
    init = v1.variance_scaling_initializer(scale=2.0)
    h = _layers().dense(x, 32, tf.nn.relu, kernel_initializer=init, name="hidden1")
    h = _layers().dense(h, 16, tf.nn.relu, kernel_initializer=init, name="hidden2")
    return _xent(_layers().dense(h, 5, kernel_initializer=init, name="output"), y)


@pytest.mark.parametrize("steps, batches", [(0, [(np.zeros(2),)]), (2, [])])
def test_compare_steps_bad_input(steps, batches):
    with pytest.raises(ValueError, match="compare_steps"):
        migration.compare_steps(lambda inputs: None, lambda: None, batches, steps=steps)


def checkpoint_model(x, y):
    """u (spectral norm), g (weight norm) and a max-norm kernel in one model."""
    with v1.variable_scope("sn", custom_getter=tf1norm.spectral_norm_getter()):
        h = _layers().dense(x, 16, tf.nn.relu, kernel_initializer=_glorot(), name="hidden1")
    with v1.variable_scope("wn", custom_getter=tf1norm.weight_norm_getter()):
        h = _layers().dense(h, 8, tf.nn.relu, kernel_initializer=_glorot(), name="hidden2")
    reg = tf1norm.max_norm_regularizer(threshold=0.4)
    return _xent(
        _layers().dense(h, 5, kernel_initializer=_glorot(), kernel_regularizer=reg, name="output"),
        y,
    )


@pytest.fixture(scope="module")
def tf1_checkpoint(tmp_path_factory):
    """3 TF1 steps, a Saver checkpoint, then the values after 3 more steps."""
    batches = _batches(False)
    with tf.Graph().as_default():
        x, y = v1.placeholder(tf.float32, (16, 20)), v1.placeholder(tf.int32, (16,))
        train_op = tf1norm.create_train_op(
            checkpoint_model(x, y),
            v1.train.AdamOptimizer(0.05),
            transforms=[tf1norm.add_decoupled_weight_decay(0.1)],
        )
        saver = v1.train.Saver()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for i in range(6):
                if i == 3:
                    path = saver.save(sess, str(tmp_path_factory.mktemp("tf1") / "model.ckpt"))
                sess.run(train_op, dict(zip((x, y), batches[i % 3])))
            after = {
                v.op.name: value
                for v, value in zip(v1.global_variables(), sess.run(v1.global_variables()))
            }
    return path, after


def _tf2_port():
    layer, optimizer = _Shim(checkpoint_model), v1.train.AdamOptimizer(0.05)
    step = tf1norm.make_train_step(optimizer, [tf1norm.add_decoupled_weight_decay(0.1)])
    run = tf.function(lambda x, y: step(lambda: layer(x, y), lambda: layer.trainable_variables))
    layer(*[tf.constant(a) for a in _batches(False)[0]])  # creates the variables
    step.build(layer.trainable_variables)  # and the slots, so everything can be restored
    return run, migration.tf1_variable_map(layer.variables, optimizer, step)


def test_tf1_checkpoint_continues_identically_in_tf2(tf1_checkpoint):
    path, after = tf1_checkpoint
    run, names = _tf2_port()
    restored, unused = migration.restore_tf1_checkpoint(path, names)
    assert {
        "sn/hidden1/kernel/sn_u",
        "wn/hidden2/kernel/wn_g",
        "output/kernel/Adam_1",
        "beta1_power",
        "global_step",
    } <= set(restored)
    assert unused == []
    for i in range(3, 6):
        run(*[tf.constant(a) for a in _batches(False)[i % 3]])
    differences = {n: migration.relative_difference(after[n], v.numpy()) for n, v in names.items()}
    assert max(differences.values()) <= TOLERANCE, differences
    assert int(names["global_step"].numpy()) == 6


def test_converted_checkpoint_reads_into_the_tf2_model(tf1_checkpoint, tmp_path):
    path, _ = tf1_checkpoint
    prefix, written = migration.convert_checkpoint(
        path, str(tmp_path / "tf2" / "model"), exclude=["power$"]
    )
    assert "beta1_power" not in written and "global_step" in written
    _, names = _tf2_port()
    names = {n: v for n, v in names.items() if n in written}
    tf.train.Checkpoint(variables=names).read(prefix).assert_existing_objects_matched()
    reader = tf.train.load_checkpoint(path)
    for name, variable in names.items():
        np.testing.assert_array_equal(variable.numpy(), reader.get_tensor(name))


def test_checkpoint_errors_name_the_problem(tf1_checkpoint, tmp_path):
    path, _ = tf1_checkpoint
    with pytest.raises(ValueError, match="restore_tf1_checkpoint: 'nope' is not in"):
        migration.restore_tf1_checkpoint(path, {"nope": tf.Variable(1.0)})
    with pytest.raises(ValueError, match="convert_checkpoint: `path`: cannot read checkpoint"):
        migration.convert_checkpoint(str(tmp_path / "missing"), str(tmp_path / "out"))


def test_convert_checkpoint_cli(tf1_checkpoint, tmp_path, capsys):
    from tf1norm.cli import app as cli

    path, _ = tf1_checkpoint
    assert (
        cli.main(["convert-checkpoint", path, str(tmp_path / "out" / "model"), "--exclude", "Adam"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "global_step" in printed and "/Adam" not in printed
    assert "wrote " in printed
    reader = tf.train.load_checkpoint(str(tmp_path / "out" / "model"))
    assert any("sn_u" in key for key in reader.get_variable_to_shape_map())


def test_convert_checkpoint_cli_errors(tmp_path, capsys):
    from tf1norm.cli import app as cli

    missing = str(tmp_path / "nothing.ckpt")
    assert cli.main(["convert-checkpoint", missing, str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and missing in error
    assert cli.main(["convert-checkpoint", missing]) == 2  # OUTPUT_PREFIX missing
    assert cli.main(["convert-checkpoint", missing, "o", "--exclude", "("]) == 2


def _example():
    import importlib
    import os
    import sys

    folder = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "legacy_examples"
    )
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("migrate_seed_002")


def test_migrate_seed_002_example_three_stages(capsys):
    result = _example().main(["--steps", "12", "--compare-steps", "4"])
    printed = capsys.readouterr().out
    assert [line.split()[:2] for line in printed.splitlines()[1:]] == [
        ["stage", "1"],
        ["stage", "2"],
        ["stage", "3"],
    ]
    assert result["shim"] <= TOLERANCE and result["shim_all"] <= TOLERANCE
    assert result["keras"] <= 1e-5  # Keras SGD momentum: m = 0.9 m - lr g, the same rule
    first, second, third = result["accuracy"]
    assert first == second and abs(first - third) <= 0.01
    assert first > 0.3  # 12 momentum steps on the digits already learn something


def test_migrate_seed_002_example_help_and_bad_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _example().main(["--help"])
    assert exit_info.value.code == 0 and "three stages" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        _example().main(["--steps", "0"])
    assert exit_info.value.code == 2
