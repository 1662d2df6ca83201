"""Regularizer factories: collections, registry, dedupe, slim and v1 layers."""

import numpy as np
import pytest
import tf_slim as slim

import tf1norm
from tf1norm import keys
from tf1norm._src.compat import tf, v1

import numpy_twins as twins
from conftest import run_initialized


def _big_init(shape, dtype=None, partition_info=None):
    return tf.ones(shape, dtype) * 2.0  # every unit starts far above threshold 1


def test_collection_gets_one_assign_op_per_variable(graph):
    reg = tf1norm.max_norm_regularizer(1.0)
    w1 = v1.get_variable("w1", [4, 3], regularizer=reg)
    w2 = v1.get_variable("w2", [3, 2], regularizer=reg)
    ops = v1.get_collection(keys.MAX_NORM)
    assert len(ops) == 2 and all(isinstance(op, tf.Operation) for op in ops)
    assert [p.variable for p in tf1norm.registry.get_projections(keys.MAX_NORM)] == [w1, w2]
    assert v1.get_collection(keys.REGULARIZATION_LOSSES) == []  # no loss term


def test_reuse_registers_once(graph):
    reg = tf1norm.max_norm_regularizer(1.0, collection="clips")
    for _ in range(3):
        with v1.variable_scope("layer", reuse=v1.AUTO_REUSE):
            w = v1.get_variable("w", [4, 3], regularizer=reg)
    reg(w)  # a direct second call on the same variable
    assert len(v1.get_collection("clips")) == 1
    assert len(tf1norm.registry.get_projections("clips")) == 1
    assert v1.get_collection(keys.MAX_NORM) == []


def test_seed_002_loop_projects_after_each_step(sess):
    w = v1.get_variable(
        "w", [5, 4], initializer=_big_init, regularizer=tf1norm.max_norm_regularizer(1.0)
    )
    step = v1.train.GradientDescentOptimizer(0.1).minimize(-tf.reduce_sum(w))
    run_initialized(sess, step)
    updated = sess.run(w)
    sess.run(v1.get_collection("max_norm"))
    np.testing.assert_allclose(sess.run(w), twins.max_norm(updated, 1.0), rtol=1e-6)
    np.testing.assert_allclose(twins.norms(sess.run(w)), 1.0, rtol=1e-6)


def test_projection_built_after_update_reads_the_new_value(sess):
    w = v1.get_variable(
        "w",
        initializer=np.array([[0.6], [0.0]], np.float32),
        regularizer=tf1norm.max_norm_regularizer(1.0),
    )
    (projection,) = tf1norm.registry.get_projections(keys.MAX_NORM)
    update = w.assign_add([[0.4], [0.6]])
    with tf.control_dependencies([update]):
        rebuilt = projection.build()
    run_initialized(sess, rebuilt)
    np.testing.assert_allclose(
        sess.run(w), twins.max_norm(np.array([[1.0], [0.6]]), 1.0), rtol=1e-6
    )


def test_slim_layers_under_arg_scope(sess, rng):
    reg = tf1norm.max_norm_regularizer(1.0)
    images = tf.constant(rng.standard_normal((2, 6, 6, 3)).astype(np.float32))
    with slim.arg_scope(
        [slim.fully_connected, slim.conv2d], weights_regularizer=reg, weights_initializer=_big_init
    ):
        net = slim.conv2d(images, 4, [3, 3], scope="conv1")
        net = slim.fully_connected(slim.flatten(net), 5, scope="fc1")
    projected = [p.variable.op.name for p in tf1norm.registry.get_projections(keys.MAX_NORM)]
    assert projected == ["conv1/weights", "fc1/weights"]  # biases untouched
    run_initialized(sess, v1.get_collection(keys.MAX_NORM))
    conv, fc = sess.run(
        [v1.global_variables("conv1/weights")[0], v1.global_variables("fc1/weights")[0]]
    )
    np.testing.assert_allclose(twins.norms(conv), 1.0, rtol=1e-6)  # one norm per HWIO filter
    assert twins.norms(conv).shape == (4,)
    np.testing.assert_allclose(twins.norms(fc), 1.0, rtol=1e-6)


def test_slim_reuse_registers_once(graph):
    x = tf.zeros([2, 3])
    with slim.arg_scope(
        [slim.fully_connected], weights_regularizer=tf1norm.max_norm_regularizer(1.0)
    ):
        slim.fully_connected(x, 4, scope="fc")
        slim.fully_connected(x, 4, scope="fc", reuse=True)
    assert len(v1.get_collection(keys.MAX_NORM)) == 1


def test_v1_layers_kernel_regularizer(sess):
    layers = tf1norm.require_v1_layers()
    x = tf.ones([3, 4])
    layers.dense(
        x,
        2,
        kernel_initializer=_big_init,
        kernel_regularizer=tf1norm.max_norm_regularizer(1.0),
        name="hidden1",
    )
    assert [p.variable.op.name for p in tf1norm.registry.get_projections(keys.MAX_NORM)] == [
        "hidden1/kernel"
    ]
    assert v1.get_collection(keys.REGULARIZATION_LOSSES) == []
    run_initialized(sess, v1.get_collection(keys.MAX_NORM))
    np.testing.assert_allclose(
        twins.norms(sess.run(v1.global_variables("hidden1/kernel")[0])), 1.0, rtol=1e-6
    )


W = np.array([[1.0, -2.0], [3.0, 0.5]], np.float32)


@pytest.mark.parametrize(
    "factory,expected",
    [
        (lambda: tf1norm.l2_regularizer(0.1), 0.1 * 0.5 * np.sum(W**2)),
        (lambda: tf1norm.l1_regularizer(0.1), 0.1 * np.sum(np.abs(W))),
        (lambda: tf1norm.l1_l2_regularizer(0.1, 0.2), 0.1 * np.sum(np.abs(W)) + 0.1 * np.sum(W**2)),
    ],
)
def test_penalties_land_in_regularization_losses_once(sess, factory, expected):
    v1.get_variable("w", initializer=W, regularizer=factory())
    (loss,) = v1.get_collection(keys.REGULARIZATION_LOSSES)
    assert run_initialized(sess, loss) == pytest.approx(expected, rel=1e-6)


def test_user_collection_like_seed_003(sess, rng):
    reg = tf1norm.l2_regularizer(0.5, collection=keys.LOSSES)
    layers = tf1norm.require_v1_layers()
    x = tf.constant(rng.standard_normal((3, 2)).astype(np.float32))
    out = layers.dense(x, 2, kernel_regularizer=reg, name="d1")
    layers.dense(x, 2, kernel_regularizer=reg, name="d1", reuse=True)
    data_loss = tf.reduce_mean(out)
    tf.compat.v1.add_to_collection(keys.LOSSES, data_loss)
    assert len(v1.get_collection(keys.LOSSES)) == 2
    assert len(v1.get_collection(keys.REGULARIZATION_LOSSES)) == 1
    total = tf1norm.total_loss(None, collections=[keys.LOSSES, keys.REGULARIZATION_LOSSES])
    kernel = v1.global_variables("d1/kernel")[0]
    value, k, d = run_initialized(sess, [total, kernel, data_loss])
    assert value == pytest.approx(d + 0.25 * np.sum(k**2), rel=1e-6)  # counted once


def test_total_loss_adds_data_loss(sess):
    v1.get_variable("w", initializer=W, regularizer=tf1norm.l1_regularizer(1.0))
    total = tf1norm.total_loss(tf.constant(2.0))
    assert run_initialized(sess, total) == pytest.approx(2.0 + np.abs(W).sum())


def test_zero_scale_disables(graph):
    assert tf1norm.l2_regularizer(0.0)(tf.ones([2, 2])) is None
    assert tf1norm.l1_l2_regularizer(0.0, 0.0)(tf.ones([2, 2])) is None


def test_regularizer_called_twice_returns_the_same_tensor(graph):
    reg = tf1norm.l2_regularizer(0.1, collection="mine")
    w = v1.get_variable("w", [2, 2])
    assert reg(w) is reg(w)
    assert len(v1.get_collection("mine")) == 1
