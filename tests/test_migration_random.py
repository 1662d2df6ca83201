"""compare_steps on models with dropout: both sides draw the same masks, or it says it cannot.

Without the seed replay (``migration_seeds.ReplayedSeeds``) the TF1 graph and
its ``tf.function`` port draw different dropout masks (the function traces its
step twice and each trace takes new op seeds): relative differences of 0.4-1.2
after one step (measured 0.58 on this MLP). With it, the same float32 ops on the
same inputs give the same numbers (measured: 0 on a 2-core AMD EPYC).
"""

import numpy as np
import pytest
from test_migration import _Shim  # the model-mapping shim layer

import tf1norm
from tf1norm import migration
from tf1norm._src.compat import tf, v1

STEPS = 4
TOLERANCE = 1e-6  # an unmatched mask gives ~0.5


def _layers():
    return tf1norm.require_v1_layers()


def _dense(x, units, name, activation=tf.nn.relu):
    return _layers().dense(
        x, units, activation, kernel_initializer=v1.glorot_uniform_initializer(), name=name
    )


def _dropout(kind, x, rate):
    if kind == "tf.nn.dropout":
        return tf.nn.dropout(x, rate=rate)
    if kind == "tf.compat.v1.layers.dropout":
        return _layers().dropout(x, rate=rate, training=True)
    return tf.keras.layers.Dropout(rate)(x, training=True)  # tf-keras under tf1norm


def dropout_mlp(kind):
    """An MLP with two dropout layers (the first of ``kind``) and a max-norm kernel."""
    reg = tf1norm.max_norm_regularizer(threshold=0.5)

    def model(x, y, first_dropout=None):
        h = _dense(x, 32, "hidden1")
        h = first_dropout(h) if first_dropout else _dropout(kind, h, 0.5)
        h = _layers().dense(
            h, 16, tf.nn.relu, kernel_initializer=v1.glorot_uniform_initializer(),
            kernel_regularizer=reg, name="hidden2",
        )  # fmt: skip
        h = _layers().dropout(h, rate=0.3, training=True)
        logits = _dense(h, 5, "output", activation=None)
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )

    return model


def _batches():
    rng = np.random.default_rng(3)
    return [
        (rng.normal(size=(16, 20)).astype(np.float32), rng.integers(0, 5, 16).astype(np.int32))
        for _ in range(2)
    ]


def _compare(tf1_model, tf2_model, function=True, mode="num_random_ops"):
    def build_tf1(inputs):
        return tf1norm.create_train_op(tf1_model(*inputs), v1.train.MomentumOptimizer(0.1, 0.9))

    def build_tf2():
        layer, optimizer = _Shim(tf2_model), v1.train.MomentumOptimizer(0.1, 0.9)
        step = tf1norm.make_train_step(optimizer)

        def step_fn(x, y):
            return step(lambda: layer(x, y), lambda: layer.trainable_variables)

        step_fn = tf.function(step_fn) if function else step_fn
        return step_fn, lambda: migration.tf1_variable_map(layer.variables, optimizer, step)

    return migration.compare_steps(build_tf1, build_tf2, _batches(), steps=STEPS, mode=mode)


@pytest.mark.parametrize(
    "kind", ["tf.nn.dropout", "tf.compat.v1.layers.dropout", "tf.keras.layers.Dropout"]
)
def test_dropout_masks_match_in_a_function(kind):
    report = _compare(dropout_mlp(kind), dropout_mlp(kind))
    assert report.random_ops_match, str(report)
    assert "hidden1/kernel/Momentum" in report.per_variable
    assert report.max_difference <= TOLERANCE, str(report)


def test_dropout_masks_match_in_eager_steps():
    """An eager step creates its dropout ops anew every step: each gets its TF1 seed again."""
    model = dropout_mlp("tf.nn.dropout")
    report = _compare(model, model, function=False)
    assert report.random_ops_match, str(report)
    assert report.max_difference <= TOLERANCE, str(report)


def test_constant_mode_matches_too():
    model = dropout_mlp("tf.compat.v1.layers.dropout")
    report = _compare(model, model, mode="constant")
    assert report.random_ops_match, str(report)
    assert report.max_difference <= TOLERANCE, str(report)


def test_constant_mode_in_eager_steps_reported_as_unmatched():
    model = dropout_mlp("tf.nn.dropout")
    with pytest.warns(UserWarning, match="cannot draw the same random numbers"):
        report = _compare(model, model, function=False, mode="constant")
    assert not report.random_ops_match
    assert "an eager step cannot draw TF1's numbers" in str(report)


def test_keras3_dropout_reported_as_unmatched():
    """Keras 3 Dropout draws from its own SeedGenerator: no op seed to replay."""
    keras = pytest.importorskip("keras")
    keras3_dropout = keras.layers.Dropout(0.5)
    tf2_model = dropout_mlp("tf.nn.dropout")

    def port(x, y):
        return tf2_model(x, y, first_dropout=lambda h: keras3_dropout(h, training=True))

    with pytest.warns(UserWarning, match="cannot draw the same random numbers"):
        report = _compare(dropout_mlp("tf.nn.dropout"), port)
    assert report.random_ops_match is False
    assert "TF1 step draws 2 seeded random op(s), the TF2 step 1" in report.random_mismatches[0]
    assert "random ops do not match" in str(report)
    assert "keras.layers.Dropout" in str(report)
    assert report.max_difference > 1e-2  # the masks do differ


def test_bad_mode_names_the_value():
    with pytest.raises(ValueError, match="`mode` must be one of .*got 'per_op'"):
        migration.compare_steps(lambda inputs: None, lambda: None, _batches(), mode="per_op")
