"""The default gradient check of ``create_train_op``: one decision, the culprit named.

A wrong shortcut fails here: sums that overflow for finite gradients must not
raise, a NaN behind clip_by_global_norm (or a later identity) must, and no
variable is written on a raise.
"""

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1


def _scaled_gradient(w, factor):
    """``w`` in the forward pass; its gradient multiplied by ``factor``."""

    @tf.custom_gradient
    def identity(x):
        return tf.identity(x), lambda dy: dy * factor

    return identity(w)


def _two_layer_step(transforms=(), count=3):
    weights = [v1.get_variable(f"w{i}", initializer=[float(i + 1)] * 4) for i in range(count)]
    b = v1.get_variable("b", initializer=[3.0, 3.0])
    factor = v1.placeholder_with_default(1.0, [])
    loss = tf.add_n([tf.reduce_sum(w * w) for w in weights]) + tf.reduce_sum(
        _scaled_gradient(b, factor)
    )
    train_op = tf1norm.create_train_op(
        loss, v1.train.GradientDescentOptimizer(0.1), global_step=None, transforms=transforms
    )
    return weights, b, factor, train_op


@pytest.mark.parametrize("count", [1, 40])
def test_a_nan_gradient_raises_naming_its_variable_and_nothing_is_written(sess, count):
    weights, b, factor, train_op = _two_layer_step(count=count)
    sess.run(v1.global_variables_initializer())
    with pytest.raises(tf.errors.InvalidArgumentError, match="the gradient of b is inf or nan"):
        sess.run(train_op, {factor: np.nan})
    np.testing.assert_array_equal(sess.run(b), [3.0, 3.0])
    np.testing.assert_array_equal(sess.run(weights[0]), [1.0] * 4)  # all or nothing
    sess.run(train_op)
    np.testing.assert_allclose(sess.run(b), [2.9, 2.9])


def test_finite_gradients_whose_sum_overflows_do_not_raise(sess):
    """Each entry 3e38 is finite; their float32 sum is inf: the cold check clears it."""
    _, b, factor, train_op = _two_layer_step()
    sess.run(v1.global_variables_initializer())
    sess.run(train_op, {factor: 3e38})
    np.testing.assert_allclose(sess.run(b), [3.0 - 3e37] * 2, rtol=1e-6)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_behind_clip_by_global_norm_and_decay_the_norm_decides(sess, value):
    chain = [tf1norm.clip_by_global_norm(5.0), tf1norm.add_decoupled_weight_decay(1e-2)]
    _, b, factor, train_op = _two_layer_step(chain)
    assert not [op for op in sess.graph.get_operations() if op.type == "Sum" and "check" in op.name]
    sess.run(v1.global_variables_initializer())
    with pytest.raises(tf.errors.InvalidArgumentError, match="the gradient of w0 is inf or nan"):
        sess.run(train_op, {factor: value})  # clipping turns every gradient to NaN: w0 first
    np.testing.assert_array_equal(sess.run(b), [3.0, 3.0])
    sess.run(train_op)
    assert np.all(sess.run(b) < 3.0)


def test_a_fed_clip_norm_is_checked_gradient_by_gradient(sess):
    """With a fed clip_norm the sums decide (no shortcut through the norm); same message."""
    clip = v1.placeholder_with_default(5.0, [])
    _, b, factor, train_op = _two_layer_step([tf1norm.clip_by_global_norm(clip)])
    assert [op for op in sess.graph.get_operations() if op.type == "Sum" and "check" in op.name]
    sess.run(v1.global_variables_initializer())
    with pytest.raises(tf.errors.InvalidArgumentError, match="the gradient of w0 is inf or nan"):
        sess.run(train_op, {factor: np.nan})
    np.testing.assert_array_equal(sess.run(b), [3.0, 3.0])
