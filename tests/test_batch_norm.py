"""tf1norm.batch_norm against tf.compat.v1.layers.batch_normalization(fused=False)."""

import numpy as np
import pytest
import tf_slim as slim

import tf1norm
from tf1norm import keys
from tf1norm import slim_layers
from tf1norm._tf import tf, v1

SHAPES = [(6, 3), (4, 5, 3), (2, 4, 5, 3), (2, 3, 4, 5, 3)]


def _run(build, x0, training=True, steps=2):
    """Output, gradients wrt (x, gamma, beta) and variables after ``steps`` updates."""
    with tf.Graph().as_default():
        x = tf.constant(x0)
        y = build(x, training)
        loss = tf.reduce_sum(y * tf.sin(x))
        gamma, beta = v1.trainable_variables()
        grads = tf.gradients(loss, [x, gamma, beta])
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            out = sess.run([y] + grads)
            for _ in range(steps):
                sess.run(v1.get_collection(keys.UPDATE_OPS))
            return out, {v.op.name: sess.run(v) for v in v1.global_variables()}


def _reference(x, training):
    return v1.layers.batch_normalization(x, training=training, fused=False, name="bn")


def _ours(x, training):
    return tf1norm.batch_norm(x, training=training, name="bn")


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_non_fused_layers_in_training(rng, shape):
    x0 = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    (ref, ref_vars), (ours, our_vars) = _run(_reference, x0), _run(_ours, x0)
    for name, a, b in zip(["y", "dx", "dgamma", "dbeta"], ref, ours):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=2e-5 * np.abs(a).max(), err_msg=name)
    assert sorted(our_vars) == sorted(ref_vars) == ["bn/beta", "bn/gamma", "bn/moving_mean",
                                                     "bn/moving_variance"]
    for name in ref_vars:
        np.testing.assert_allclose(our_vars[name], ref_vars[name], rtol=1e-6, atol=1e-7,
                                   err_msg=name)
    assert not np.allclose(ref_vars["bn/moving_variance"], 1.0)  # the update really ran


def test_inference_uses_moving_statistics(sess, rng):
    x0 = rng.standard_normal((4, 2, 3, 5)).astype(np.float32)
    y = tf1norm.batch_norm(tf.constant(x0), training=False, epsilon=1e-3)
    assert v1.get_collection(keys.UPDATE_OPS) == []
    sess.run(v1.global_variables_initializer())
    mean, var = v1.global_variables()[2:]
    sess.run([mean.assign(np.full(5, 0.5, np.float32)), var.assign(np.full(5, 4.0, np.float32))])
    np.testing.assert_allclose(sess.run(y), (x0 - 0.5) / np.sqrt(4.0 + 1e-3), rtol=1e-5)


def test_training_flag_as_a_tensor(sess, rng):
    x0 = (rng.standard_normal((8, 3)) + 2).astype(np.float32)
    flag = v1.placeholder(tf.bool, [])
    y = tf1norm.batch_norm(tf.constant(x0), training=flag)
    updates = v1.get_collection(keys.UPDATE_OPS)
    sess.run(v1.global_variables_initializer())
    train_out = sess.run(y, {flag: True})
    np.testing.assert_allclose(train_out.mean(axis=0), 0.0, atol=1e-5)
    sess.run(updates, {flag: False})
    assert np.all(sess.run(v1.global_variables()[2]) == 0.0)  # no update in inference
    np.testing.assert_allclose(sess.run(y, {flag: False}), x0 / np.sqrt(1 + 1e-3), rtol=1e-5)
    sess.run(updates, {flag: True})
    np.testing.assert_allclose(sess.run(v1.global_variables()[2]), 0.01 * x0.mean(axis=0),
                               rtol=1e-5)


def test_uses_the_fused_kernel_only(graph):
    tf1norm.batch_norm(tf.zeros([2, 3, 4, 5, 6]), training=True)
    types = {op.type for op in graph.get_operations()}
    assert "FusedBatchNormV3" in types
    assert not {"Mean", "SquaredDifference"} & types


@pytest.mark.parametrize("direction", ["layers->tf1norm", "tf1norm->layers"])
def test_checkpoints_are_interchangeable(tmp_path, rng, direction):
    x0 = rng.standard_normal((4, 3, 4, 5, 6)).astype(np.float32)
    writer, reader = (_reference, _ours) if direction == "layers->tf1norm" else (_ours, _reference)
    with tf.Graph().as_default():
        x = tf.constant(x0)
        writer(x, True)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for variable in v1.global_variables():
                sess.run(variable.assign(rng.uniform(0.5, 2.0, variable.shape).astype(np.float32)))
            sess.run(v1.get_collection(keys.UPDATE_OPS))
            saved = {v.op.name: sess.run(v) for v in v1.global_variables()}
            path = v1.train.Saver().save(sess, str(tmp_path / "bn"))
            expected = sess.run(_inference(x, saved))
    with tf.Graph().as_default():
        y = reader(tf.constant(x0), False)
        with v1.Session() as sess:
            v1.train.Saver().restore(sess, path)
            np.testing.assert_allclose(sess.run(y), expected, rtol=1e-4, atol=1e-5)


def _inference(x, saved):
    return (saved["bn/gamma"] * (x - saved["bn/moving_mean"])
            / tf.sqrt(saved["bn/moving_variance"] + 1e-3) + saved["bn/beta"])


def test_create_train_op_runs_the_moving_averages(sess, rng):
    x = tf.constant(rng.standard_normal((8, 4)).astype(np.float32) + 3.0)
    y = tf1norm.batch_norm(x, training=True)
    w = v1.get_variable("w", [4, 1])
    train_op = tf1norm.create_train_op(tf.reduce_sum(tf.matmul(y, w)),
                                       v1.train.GradientDescentOptimizer(0.1))
    assert tf1norm.check_train_op(train_op) == []
    sess.run(v1.global_variables_initializer())
    sess.run(train_op)
    assert np.all(sess.run(v1.global_variables("batch_normalization/moving_mean")[0]) > 0.02)


def test_slim_variant_under_arg_scope(graph):
    clips = tf.zeros([2, 4, 6, 6, 3])
    with slim.arg_scope([slim_layers.batch_norm], is_training=False, momentum=0.9):
        net = slim.conv3d(clips, 8, [3, 3, 3], normalizer_fn=slim_layers.batch_norm,
                          scope="conv1")
    names = sorted(v.op.name for v in v1.global_variables())
    assert names == ["conv1/batch_normalization/beta", "conv1/batch_normalization/gamma",
                     "conv1/batch_normalization/moving_mean",
                     "conv1/batch_normalization/moving_variance", "conv1/weights"]
    assert net.shape.as_list() == [2, 4, 6, 6, 8]
    assert v1.get_collection(keys.UPDATE_OPS) == []  # is_training=False from the arg_scope


@pytest.mark.parametrize("call,error,fragment", [
    (lambda: tf1norm.batch_norm(tf.zeros([3]), True), ValueError, "rank 2 to 5"),
    (lambda: tf1norm.batch_norm(tf.zeros([1, 1, 1, 1, 1, 2]), True), ValueError, "rank 2 to 5"),
    (lambda: tf1norm.batch_norm(tf.zeros([2, 3], tf.float64), True), TypeError, "float32 or float16"),
    (lambda: tf1norm.batch_norm(tf.zeros([2, 3], tf.int32), True), TypeError, "int32"),
    (lambda: tf1norm.batch_norm(tf.zeros([2, 3]), True, momentum=1.0), ValueError, "[0, 1)"),
    (lambda: tf1norm.batch_norm(tf.zeros([2, 3]), True, epsilon=0.0), ValueError, "`epsilon`"),
    (lambda: tf1norm.batch_norm(v1.placeholder(tf.float32, [None, None]), True), ValueError,
     "channel"),
])
def test_bad_input(graph, call, error, fragment):
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value)


def test_tf_layers_normalization_resolves_with_tf_keras():
    """tf-slim's batch_norm (resnet/inception arg scopes) reaches this lazily loaded module.

    TensorFlow looks it up as ``tf_keras.legacy_tf_layers.normalization``;
    tf-keras 2.20+ keeps it under ``tf_keras.src``; tf1norm maps the old name.
    """
    from tensorflow.python.layers import normalization

    assert normalization.BatchNormalization.__module__.startswith("tf_keras")
    with tf.Graph().as_default():
        layer = normalization.BatchNormalization(fused=False)
        assert layer(tf.ones([2, 3]), training=True).shape.as_list() == [2, 3]
