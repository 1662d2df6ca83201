"""Bad values that only exist at run time fail the step with the construction-time message.

A threshold, learning rate or loss fed through a placeholder cannot be
checked while the graph is built; a ``tf.debugging.Assert`` that the result
depends on fails the run instead (and a good value runs as before).
"""

import math

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

Invalid = tf.errors.InvalidArgumentError


def _weights():
    return v1.get_variable("w", [3, 2], initializer=tf.ones_initializer())


def test_a_loss_of_unknown_rank_must_be_a_scalar_when_it_runs(sess):
    w = _weights()
    per_example = v1.placeholder(tf.float32, shape=None)
    loss = tf.reduce_sum(w) * per_example
    train_op = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(0.1))
    sess.run(v1.global_variables_initializer())
    sess.run(train_op, {per_example: 1.0})
    np.testing.assert_allclose(sess.run(w), np.full((3, 2), 0.9), rtol=1e-6)
    with pytest.raises(Invalid, match="create_train_op: `loss` must be a scalar"):
        sess.run(train_op, {per_example: [1.0, 1.0]})  # would train on the sum
    np.testing.assert_allclose(sess.run(w), np.full((3, 2), 0.9), rtol=1e-6)


def test_a_loss_of_unknown_rank_without_the_loss_check_is_checked_too(sess):
    w = _weights()
    per_example = v1.placeholder(tf.float32, shape=None)
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(w) * per_example, v1.train.GradientDescentOptimizer(0.1), check_numerics=False
    )
    sess.run(v1.global_variables_initializer())
    with pytest.raises(Invalid, match="`loss` must be a scalar"):
        sess.run(train_op, {per_example: [1.0, 2.0]})


def _batch_norm_model(training):
    x = v1.placeholder(tf.float32, [None, 3])
    y = tf1norm.batch_norm(x, training=training, momentum=0.5)
    with v1.variable_scope("batch_normalization", reuse=True):
        moving = (v1.get_variable("moving_mean"), v1.get_variable("moving_variance"))
    return x, y, moving


def test_an_empty_training_batch_fails_instead_of_writing_nan_statistics(sess):
    x, y, moving = _batch_norm_model(training=True)
    updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
    sess.run(v1.global_variables_initializer())
    sess.run(updates, {x: np.ones((4, 3))})
    before = sess.run(moving)
    with pytest.raises(Invalid, match="batch_norm: `x` has an empty batch"):
        sess.run([y, updates], {x: np.zeros((0, 3))})
    for old, new in zip(before, sess.run(moving)):
        np.testing.assert_array_equal(old, new)
    assert np.all(np.isfinite(sess.run(moving)))


def test_an_empty_batch_in_inference_mode_leaves_the_statistics_alone(sess):
    training = v1.placeholder_with_default(True, [])
    x, y, moving = _batch_norm_model(training)
    updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
    sess.run(v1.global_variables_initializer())
    sess.run(updates, {x: np.arange(12.0).reshape(4, 3)})
    before = sess.run(moving)
    out, _ = sess.run([y, updates], {x: np.zeros((0, 3)), training: False})
    assert out.shape == (0, 3)
    for old, new in zip(before, sess.run(moving)):
        np.testing.assert_array_equal(old, new)  # 0·NaN would have made them NaN
    with pytest.raises(Invalid, match="empty batch"):
        sess.run(updates, {x: np.zeros((0, 3)), training: True})


@pytest.mark.parametrize(
    "make",
    [
        lambda rate: tf1norm.add_decoupled_weight_decay(0.1, learning_rate=rate),
        lambda rate: tf1norm.sgd_decay_step(learning_rate=rate),
        lambda rate: tf1norm.clip_by_norm(rate),
    ],
)
def test_a_negative_or_nan_rate_fed_at_run_time_fails_the_step(sess, make):
    w = v1.get_variable(
        "w", [3, 2], initializer=tf.ones_initializer(), regularizer=tf1norm.l2_regularizer(0.1)
    )
    rate = v1.placeholder(tf.float32, [])
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(w), v1.train.GradientDescentOptimizer(0.1), transforms=[make(rate)]
    )
    sess.run(v1.global_variables_initializer())
    sess.run(train_op, {rate: 0.5})
    after_good_step = sess.run(w)
    for bad in (-1.0, math.nan):
        with pytest.raises(Invalid, match="must be"):
            sess.run(train_op, {rate: bad})
        np.testing.assert_array_equal(sess.run(w), after_good_step)
