"""Constraint objects applied by tf.compat.v1 optimizers and layers."""

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

import numpy_twins as twins
from conftest import run_initialized

W0 = np.array([[0.6, 0.1, -0.2], [0.7, 0.1, 0.3], [-0.5, 0.05, 0.4]], np.float32)
G = np.array([[-3.0, 0.1, 0.2], [-2.0, 0.2, -0.1], [1.0, 0.0, 0.3]], np.float32)


def _adam_first_step(w, g, lr, b1=0.9, b2=0.999, eps=1e-8):
    lr_t = lr * np.sqrt(1 - b2) / (1 - b1)
    return w - lr_t * ((1 - b1) * g) / (np.sqrt((1 - b2) * g * g) + eps)


@pytest.mark.parametrize(
    "make_optimizer,expected_update",
    [
        (lambda: v1.train.GradientDescentOptimizer(0.1), lambda w, g: w - 0.1 * g),
        (lambda: v1.train.MomentumOptimizer(0.1, 0.9), lambda w, g: w - 0.1 * g),
        (lambda: v1.train.AdamOptimizer(0.1), lambda w, g: _adam_first_step(w, g, 0.1)),
    ],
)
def test_optimizers_apply_max_norm_after_their_update(sess, make_optimizer, expected_update):
    w = v1.get_variable("w", initializer=W0, constraint=tf1norm.MaxNorm(1.0))
    train_op = make_optimizer().minimize(tf.reduce_sum(w * G))  # gradient is exactly G
    run_initialized(sess, train_op)
    expected = twins.max_norm(expected_update(W0.astype(np.float64), G), 1.0)
    np.testing.assert_allclose(sess.run(w), expected, rtol=1e-5, atol=1e-6)
    assert twins.norms(expected)[0] == pytest.approx(1.0)  # the case really clips
    assert twins.norms(expected_update(W0, G))[1] < 1.0  # and really leaves one alone


@pytest.mark.parametrize(
    "constraint,twin",
    [
        (tf1norm.UnitNorm(), twins.unit_norm),
        (tf1norm.MinMaxNorm(0.9, 1.0), lambda w: twins.min_max_norm(w, 0.9, 1.0, 1.0)),
        (tf1norm.NonNeg(), lambda w: np.maximum(w, 0)),
    ],
)
def test_other_constraints_under_gradient_descent(sess, constraint, twin):
    w = v1.get_variable("w", initializer=W0, constraint=constraint)
    run_initialized(sess, v1.train.GradientDescentOptimizer(0.1).minimize(tf.reduce_sum(w * G)))
    np.testing.assert_allclose(sess.run(w), twin(W0 - 0.1 * G), rtol=1e-5, atol=1e-7)


def test_v1_layers_dense_kernel_constraint(sess, rng):
    layers = tf1norm.require_v1_layers()
    x = tf.constant(rng.standard_normal((16, 5)).astype(np.float32) * 5)
    out = layers.dense(x, 4, kernel_constraint=tf1norm.MaxNorm(0.5), name="dense")
    kernel = v1.global_variables("dense/kernel")[0]
    assert kernel.constraint == tf1norm.MaxNorm(0.5)
    grad = tf.gradients(tf.reduce_sum(out**2), kernel)[0]
    step = v1.train.GradientDescentOptimizer(0.01).minimize(tf.reduce_sum(out**2))
    before, g = run_initialized(sess, [kernel, grad])
    sess.run(step)
    expected = twins.max_norm(before - 0.01 * g, 0.5)
    np.testing.assert_allclose(sess.run(kernel), expected, rtol=1e-5, atol=1e-7)
    assert np.all(twins.norms(sess.run(kernel)) <= 0.5 + 1e-6)


@pytest.mark.parametrize(
    "constraint",
    [
        tf1norm.MaxNorm(3.0, axes=[0, 1]),
        tf1norm.UnitNorm(axes=1, epsilon=1e-6),
        tf1norm.MinMaxNorm(0.5, 2.0, 0.5),
        tf1norm.NonNeg(),
    ],
)
def test_get_config_round_trip(constraint):
    config = constraint.get_config()
    rebuilt = type(constraint).from_config(config)
    assert rebuilt == constraint and rebuilt.get_config() == config
    assert repr(rebuilt).startswith(type(constraint).__name__ + "(")


def test_max_norm_config_values():
    assert tf1norm.MaxNorm(3.0, axes=[0, 1]).get_config() == {"threshold": 3.0, "axes": [0, 1]}


@pytest.mark.parametrize(
    "constraint",
    [
        tf1norm.MaxNorm(0.5),
        tf1norm.UnitNorm(),
        tf1norm.MinMaxNorm(0.1, 0.5),
        tf1norm.NonNeg(),
        tf1norm.SpectralNorm(),
    ],
)
def test_constraints_are_keras_3_constraints(constraint):
    """Keras 3.10-3.13 accept only ``keras.constraints.Constraint`` instances on a
    variable (Python 3.10 gets at most Keras 3.12), and tf-keras's ``serialize``
    warns about anything else; tf1norm's own methods still win."""
    keras = pytest.importorskip("keras")
    tf_keras = pytest.importorskip("tf_keras")
    for flavour in (keras, tf_keras):
        assert isinstance(constraint, flavour.constraints.Constraint)
        assert type(constraint).get_config is not flavour.constraints.Constraint.get_config
    assert tf_keras.constraints.serialize(constraint)["config"] == constraint.get_config()
    layer = keras.layers.Dense(3, kernel_constraint=constraint)
    layer.build((None, 4))
    assert layer.kernel.constraint is constraint
