"""Helpers of the slim_layers.batch_norm tests against tf-slim
(tests/test_slim_batch_norm*.py): run one layer for a few steps and compare runs."""

import numpy as np

from tf1norm import keys
from tf1norm._src.compat import tf, v1

UPDATE_OPS = v1.GraphKeys.UPDATE_OPS
MODEL_VARIABLES = v1.GraphKeys.MODEL_VARIABLES


def _x(rng, shape, dtype=np.float32):
    return (rng.standard_normal(shape) * 2 + 1).astype(dtype)


def _run(batch_norm, x0, kwargs, flag=None, steps=3, updates_key=UPDATE_OPS, loss=None):
    """Everything observable about one batch-norm layer after ``steps`` training steps.

    ``flag`` None passes ``is_training`` through ``kwargs``; True/False feed a
    boolean placeholder. Each step runs the output and ``updates_key``.
    ``loss(y, x)`` (default ``_loss``) is what the gradients are of.
    """
    with tf.Graph().as_default() as graph:
        x = tf.constant(x0)
        training = v1.placeholder(tf.bool, []) if flag is not None else None
        extra = {} if flag is None else {"is_training": training}
        y = batch_norm(x, **kwargs, **extra)
        trainable = v1.trainable_variables()
        grads = tf.gradients((loss or _loss)(y, x), [x] + trainable)
        feed = {} if flag is None else {training: flag}
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            out = sess.run([y] + grads, feed)
            for _ in range(steps):
                sess.run([y, graph.get_collection(updates_key)], feed)
            return {
                "y": out[0],
                "grads": dict(zip(["x"] + _names(trainable), out[1:])),
                "variables": {v.op.name: sess.run(v) for v in v1.global_variables()},
                "collections": _collections(graph),
                "shape": y.shape.as_list(),
            }


def _loss(y, x):
    """A fixed, generic weighting of the output (``x`` unused), so every gradient is non-trivial."""
    y = tf.cast(y, tf.float32)
    return tf.reduce_sum(
        y * tf.sin(tf.reshape(tf.range(tf.size(y), dtype=tf.float32), tf.shape(y)))
    )


def _names(variables):
    return [v.op.name for v in variables]


def _collections(graph):
    keys_ = [MODEL_VARIABLES, v1.GraphKeys.TRAINABLE_VARIABLES, v1.GraphKeys.GLOBAL_VARIABLES]
    named = {key: _names(graph.get_collection(key)) for key in keys_}
    named["updates"] = len(graph.get_collection(UPDATE_OPS))
    named["regularization"] = len(graph.get_collection(keys.REGULARIZATION_LOSSES))
    return named


def _assert_same(ours, ref, rtol=1e-5):
    assert ours["collections"] == ref["collections"]
    assert ours["shape"] == ref["shape"]
    scale = np.abs(ref["y"]).max()
    np.testing.assert_allclose(ours["y"], ref["y"], rtol=rtol, atol=rtol * scale, err_msg="y")
    for name, grad in ref["grads"].items():
        np.testing.assert_allclose(
            ours["grads"][name],
            grad,
            rtol=1e-4,
            atol=2e-5 * np.abs(grad).max(),
            err_msg=f"d/d {name}",
        )
    assert list(ours["variables"]) == list(ref["variables"])
    for name, value in ref["variables"].items():
        np.testing.assert_allclose(
            ours["variables"][name], value, rtol=1e-5, atol=1e-6, err_msg=name
        )
