"""tf1norm.batch_norm against tf.compat.v1.layers.batch_normalization(fused=False).

The tf-slim flavour (``tf1norm.slim_layers.batch_norm``) is tested against live
tf-slim in test_slim_batch_norm.py; bad input of both front ends is here.
"""

import numpy as np
import pytest

import tf_slim as slim

import tf1norm
from tf1norm import keys
from tf1norm import slim_layers
from tf1norm._src.compat import tf, v1

SHAPES = [(6, 3), (4, 5, 3), (2, 4, 5, 3), (2, 3, 4, 5, 3)]
PARTITIONERS = {
    "fixed_size": lambda: v1.fixed_size_partitioner(2),
    "min_max": lambda: v1.min_max_variable_partitioner(max_partitions=2, min_slice_size=4),
}


def _run(build, x0, training=True, steps=2):
    """Output, gradients wrt (x, gamma, beta) and variables after ``steps`` updates."""
    with tf.Graph().as_default():
        x = tf.constant(x0)
        y = build(x, training)
        loss = tf.reduce_sum(y * tf.sin(x))
        gamma, beta = [v for v in v1.trainable_variables() if "/part_" not in v.op.name][:2]
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


def _assert_same_run(ours, ref):
    (ref_out, ref_vars), (our_out, our_vars) = ref, ours
    for name, a, b in zip(["y", "dx", "dgamma", "dbeta"], ref_out, our_out):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=2e-5 * np.abs(a).max(), err_msg=name)
    assert sorted(our_vars) == sorted(ref_vars)
    for name in ref_vars:
        np.testing.assert_allclose(
            our_vars[name], ref_vars[name], rtol=1e-6, atol=1e-7, err_msg=name
        )


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_non_fused_layers_in_training(rng, shape):
    x0 = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    ref, ours = _run(_reference, x0), _run(_ours, x0)
    _assert_same_run(ours, ref)
    assert sorted(ours[1]) == ["bn/beta", "bn/gamma", "bn/moving_mean", "bn/moving_variance"]
    assert not np.allclose(ref[1]["bn/moving_variance"], 1.0)  # the update really ran


@pytest.mark.parametrize("shape", [(4, 3, 5), (2, 3, 4, 5), (2, 3, 2, 4, 5)])
def test_channels_first_matches_layers_with_axis_1(rng, shape):
    x0 = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    ref = _run(
        lambda x, t: v1.layers.batch_normalization(x, axis=1, training=t, fused=False, name="bn"),
        x0,
    )
    ours = _run(lambda x, t: tf1norm.batch_norm(x, training=t, name="bn", axis=1), x0)
    _assert_same_run(ours, ref)


@pytest.mark.parametrize("shape", [(4, 3, 5), (2, 3, 4, 5), (2, 3, 2, 4, 5)])
def test_channels_first_is_the_transposed_channels_last_run(rng, shape):
    x0 = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    to_last = [0] + list(range(2, len(shape))) + [1]
    last = _run(_ours, np.ascontiguousarray(x0.transpose(to_last)))
    first = _run(lambda x, t: tf1norm.batch_norm(x, training=t, name="bn", axis=1), x0)
    np.testing.assert_allclose(first[0][0].transpose(to_last), last[0][0], rtol=1e-5, atol=1e-6)
    for name, value in last[1].items():
        np.testing.assert_allclose(first[1][name], value, rtol=1e-6, atol=1e-7, err_msg=name)


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
    np.testing.assert_allclose(
        sess.run(v1.global_variables()[2]), 0.01 * x0.mean(axis=0), rtol=1e-5
    )


@pytest.mark.parametrize("axis", [-1, 1])
def test_uses_the_fused_kernel_only(graph, axis):
    tf1norm.batch_norm(tf.zeros([2, 3, 4, 5, 6]), training=True, axis=axis)
    types = {op.type for op in graph.get_operations()}
    assert "FusedBatchNormV3" in types
    assert not {"Mean", "SquaredDifference", "Transpose"} & types


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
    return (
        saved["bn/gamma"]
        * (x - saved["bn/moving_mean"])
        / tf.sqrt(saved["bn/moving_variance"] + 1e-3)
        + saved["bn/beta"]
    )


def test_create_train_op_runs_the_moving_averages(sess, rng):
    x = tf.constant(rng.standard_normal((8, 4)).astype(np.float32) + 3.0)
    y = tf1norm.batch_norm(x, training=True)
    w = v1.get_variable("w", [4, 1])
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(tf.matmul(y, w)), v1.train.GradientDescentOptimizer(0.1)
    )
    assert tf1norm.check_train_op(train_op) == []
    sess.run(v1.global_variables_initializer())
    sess.run(train_op)
    assert np.all(sess.run(v1.global_variables("batch_normalization/moving_mean")[0]) > 0.02)


# ----------------------------------------------------------- partitioned scopes


@pytest.mark.parametrize("partitioner", sorted(PARTITIONERS))
@pytest.mark.parametrize("training", [True, "tensor"])
def test_partitioned_scope_keeps_the_variables_whole(rng, partitioner, training):
    x0 = (rng.standard_normal((4, 3, 5, 6)) * 2 + 1).astype(np.float32)

    def partitioned(x, training_):
        with v1.variable_scope("x", partitioner=PARTITIONERS[partitioner]()):
            v1.get_variable("w", [10, 6])  # the partitioner is really active here
            flag = v1.placeholder_with_default(True, []) if training_ == "tensor" else training_
            return tf1norm.batch_norm(x, training=flag, name="bn")

    ours = _run(partitioned, x0, training)
    ref = _run(lambda x, t: tf1norm.batch_norm(x, training=True, name="x/bn"), x0)
    assert {"x/w/part_0", "x/w/part_1"} <= set(ours[1])
    ours[1].pop("x/w/part_0"), ours[1].pop("x/w/part_1")
    _assert_same_run(ours, ref)


def test_partitioned_layers_checkpoint_restores_into_whole_variables(tmp_path, rng):
    """The layers API partitions gamma/beta (not the moving statistics); Saver merges them."""
    x0 = rng.standard_normal((4, 3, 6)).astype(np.float32)
    with tf.Graph().as_default():
        with v1.variable_scope("x", partitioner=v1.fixed_size_partitioner(2)):
            y = v1.layers.batch_normalization(tf.constant(x0), training=False, name="bn")
        assert "x/bn/gamma/part_1" in [v.op.name for v in v1.global_variables()]
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for variable in v1.global_variables():
                sess.run(variable.assign(rng.uniform(0.5, 2.0, variable.shape).astype(np.float32)))
            expected = sess.run(y)
            path = v1.train.Saver().save(sess, str(tmp_path / "bn"))
    with tf.Graph().as_default():
        y = tf1norm.batch_norm(tf.constant(x0), training=False, name="x/bn")
        with v1.Session() as sess:
            v1.train.Saver().restore(sess, path)
            np.testing.assert_allclose(sess.run(y), expected, rtol=1e-5)


# ----------------------------------------------------------- bad input


BAD_INPUT = [
    (lambda: tf1norm.batch_norm(tf.zeros([3]), True), ValueError, ["`x`", "rank 2 to 5", "1"]),
    (
        lambda: tf1norm.batch_norm(tf.zeros([1, 1, 1, 1, 1, 2]), True),
        ValueError,
        ["rank 2 to 5", "6"],
    ),
    (
        lambda: tf1norm.batch_norm(tf.zeros([2, 3], tf.float64), True),
        TypeError,
        ["float32 or float16", "float64", "tf.cast"],
    ),
    (lambda: tf1norm.batch_norm(tf.zeros([2, 3], tf.int32), True), TypeError, ["int32"]),
    (
        lambda: tf1norm.batch_norm(tf.zeros([2, 3]), True, momentum=1.0),
        ValueError,
        ["`momentum`", "[0, 1)", "1.0"],
    ),
    (
        lambda: tf1norm.batch_norm(tf.zeros([2, 3]), True, momentum=-0.1),
        ValueError,
        ["`momentum`", "-0.1"],
    ),
    (
        lambda: tf1norm.batch_norm(tf.zeros([2, 3]), True, epsilon=0.0),
        ValueError,
        ["`epsilon`", "> 0"],
    ),
    (
        lambda: tf1norm.batch_norm(v1.placeholder(tf.float32, [None, None]), True),
        ValueError,
        ["channel", "tf.ensure_shape"],
    ),
    (
        lambda: tf1norm.batch_norm(v1.placeholder(tf.float32, [2, None, 4]), True, axis=1),
        ValueError,
        ["channel dimension (1)"],
    ),
    (
        lambda: tf1norm.batch_norm(tf.zeros([2, 3, 4, 5]), True, axis=2),
        ValueError,
        ["`axis`", "got 2", "Transpose"],
    ),
    (
        lambda: tf1norm.batch_norm(tf.zeros([2, 3]), "yes"),
        TypeError,
        ["`training`", "'yes'", "placeholder"],
    ),
    (
        lambda: tf1norm.batch_norm(tf.zeros([2, 3]), tf.constant([True, False])),
        TypeError,
        ["`training`", "shape (2,)"],
    ),
]


def _bn(**kwargs):
    return lambda: slim_layers.batch_norm(tf.zeros([2, 3, 4, 5]), **kwargs)


SLIM_BAD_INPUT = [
    (_bn(data_format="NWHC"), ValueError, ["data_format", "'NWHC'", "'NCHW'"]),
    (_bn(data_format="NCDHW"), ValueError, ["data_format", "rank-4", "'NCHW'"]),
    (_bn(data_format="channels_first"), ValueError, ["data_format", "'channels_first'"]),
    (
        lambda: slim_layers.batch_norm(v1.placeholder(tf.float32), data_format="CHWN"),
        ValueError,
        ["data_format has to be either NCHW or NHWC", "'CHWN'"],
    ),
    (
        _bn(param_initializers={"moving_var": v1.ones_initializer()}),
        ValueError,
        ["`param_initializers`", "'moving_var'", "moving_variance"],
    ),
    (
        _bn(param_initializers={"gamma": 2.0}),
        ValueError,
        ["param_initializers['gamma']", "2.0", "callable"],
    ),
    (_bn(param_initializers=[v1.ones_initializer()]), TypeError, ["`param_initializers`", "dict"]),
    (
        _bn(param_regularizers={"moving_mean": slim.l2_regularizer(1.0)}),
        ValueError,
        ["`param_regularizers`", "'moving_mean'", "beta, gamma"],
    ),
    (_bn(variables_collections={"bias": ["b"]}), ValueError, ["`variables_collections`", "'bias'"]),
    (_bn(variables_collections=[1]), TypeError, ["`variables_collections`", "[1]"]),
    (_bn(updates_collections=3), TypeError, ["`updates_collections`", "3"]),
    (_bn(decay=1.0), ValueError, ["`decay`", "[0, 1)", "1.0"]),
    (_bn(decay=-0.5), ValueError, ["`decay`", "-0.5"]),
    (_bn(decay="0.9"), TypeError, ["`decay`", "'0.9'"]),
    (_bn(epsilon=-1e-3), ValueError, ["`epsilon`", ">= 0", "-0.001"]),
    (_bn(is_training="yes"), TypeError, ["`is_training`", "'yes'"]),
    (lambda: _bn(is_training=tf.constant(1.0))(), TypeError, ["`is_training`", "float32"]),
    (_bn(fused="yes"), TypeError, ["`fused`", "'yes'"]),
    (_bn(scale=None), TypeError, ["`scale`", "None"]),
    (
        lambda: _bn(batch_weights=tf.ones([2]))(),
        NotImplementedError,
        ["`batch_weights`", "weighted_moments"],
    ),
    (_bn(renorm=True), NotImplementedError, ["`renorm`", "True", "call tf_slim.batch_norm"]),
    (_bn(renorm_clipping={"rmax": 3.0}), NotImplementedError, ["`renorm_clipping`"]),
    (_bn(adjustment=lambda shape: (1.0, 0.0)), NotImplementedError, ["`adjustment`"]),
    (
        lambda: slim_layers.batch_norm(tf.zeros([2, 3], tf.float64)),
        TypeError,
        ["`inputs`", "float64"],
    ),
    (lambda: slim_layers.batch_norm(tf.zeros([3])), ValueError, ["`inputs`", "rank 2 to 5"]),
    (
        lambda: slim_layers.batch_norm(v1.placeholder(tf.float32)),
        ValueError,
        ["`inputs`", "undefined rank", "tf.ensure_shape"],
    ),
    (
        lambda: slim_layers.batch_norm(
            v1.placeholder(tf.float32, [2, None, 4]), data_format="NCHW"
        ),
        ValueError,
        ["`inputs`", "undefined channel dimension (1)"],
    ),
]


@pytest.mark.parametrize(
    "call,error,fragments",
    BAD_INPUT + SLIM_BAD_INPUT,
    ids=lambda value: None if callable(value) else str(value),
)
def test_bad_input(graph, call, error, fragments):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert message.startswith(("batch_norm: ", "slim_layers.batch_norm: "))
    for fragment in fragments:
        assert fragment in message
    assert graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES) == []  # raised before creating


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
