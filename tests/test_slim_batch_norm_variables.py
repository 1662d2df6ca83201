"""tf1norm.slim_layers.batch_norm against tf-slim: variables, collections and
regularizers, scope names, arg_scope, checkpoints interchangeable both ways,
partitioned scopes. The outputs, gradients and update conventions are in
test_slim_batch_norm.py."""

import numpy as np
import pytest
import tf_slim as slim

from tf1norm import keys
from tf1norm import slim_layers
from tf1norm._src.compat import tf, v1
from slim_batch_norm_helpers import UPDATE_OPS, _assert_same, _names, _run, _x


# ----------------------------------------------------------- variables and collections


def test_param_regularizers_match_slim(rng):
    regularizers = {"beta": slim.l2_regularizer(0.5), "gamma": slim.l1_regularizer(0.25)}
    init = {"beta": v1.constant_initializer(2.0), "gamma": v1.constant_initializer(-3.0)}
    losses = []
    for batch_norm in (slim.batch_norm, slim_layers.batch_norm):
        with tf.Graph().as_default():
            batch_norm(
                tf.constant(_x(rng, (2, 3, 4))),
                scale=True,
                param_regularizers=regularizers,
                param_initializers=init,
            )
            with v1.Session() as sess:
                sess.run(v1.global_variables_initializer())
                losses.append(sorted(sess.run(v1.get_collection(keys.REGULARIZATION_LOSSES))))
    assert losses[0] == losses[1] == sorted([0.5 * 0.5 * 4 * 4.0, 0.25 * 4 * 3.0])


@pytest.mark.parametrize(
    "collections",
    [["mine"], {"beta": ["b"], "moving_mean": ["m"], "gamma": None}],
    ids=["list", "dict"],
)
def test_variables_collections_match_slim(collections):
    found = []
    for batch_norm in (slim.batch_norm, slim_layers.batch_norm):
        with tf.Graph().as_default() as graph:
            batch_norm(tf.zeros([2, 3, 4]), scale=True, variables_collections=collections)
            found.append(
                {key: sorted(_names(graph.get_collection(key))) for key in ("mine", "b", "m")}
            )
    assert found[0] == found[1]
    assert sum(len(names) for names in found[1].values()) in (2, 4)


def test_a_collection_name_is_one_collection(graph):
    """tf-slim would split the string "mine" into the collections m, i, n and e."""
    slim_layers.batch_norm(tf.zeros([2, 3, 4]), variables_collections="mine")
    assert _names(graph.get_collection("mine")) == _names(v1.global_variables())
    assert graph.get_collection("m") == []


def test_scope_names_outputs_collections_and_activation_match_slim():
    seen = []
    for batch_norm in (slim.batch_norm, slim_layers.batch_norm):
        with tf.Graph().as_default() as graph:
            x = tf.zeros([2, 3, 4])
            with v1.variable_scope("net"):
                first = batch_norm(x, activation_fn=tf.nn.relu, outputs_collections="ends")
                batch_norm(x, scope="named")
                batch_norm(x, scope="named", reuse=True)
            seen.append(
                (
                    _names(v1.global_variables()),
                    first.aliases,
                    [t.op.type for t in graph.get_collection("ends")],
                )
            )
    assert seen[0] == seen[1]
    assert seen[1][1] == ["net/BatchNorm"] and seen[1][2] == ["Relu"]


def test_arg_scope_and_conv2d_normalizer_match_slim(rng):
    x0 = _x(rng, (2, 6, 6, 3))

    def network(batch_norm):
        def build(x):
            with (
                slim.arg_scope(
                    [slim.conv2d],
                    normalizer_fn=batch_norm,
                    normalizer_params={"decay": 0.9, "scale": True},
                ),
                slim.arg_scope([batch_norm], epsilon=0.01),
            ):
                return slim.conv2d(
                    slim.conv2d(x, 4, [3, 3], weights_initializer=_seeded(1)),
                    5,
                    [3, 3],
                    weights_initializer=_seeded(2),
                )

        return build

    ref = _run(lambda x: network(slim.batch_norm)(x), x0, {})
    ours = _run(lambda x: network(slim_layers.batch_norm)(x), x0, {})
    _assert_same(ours, ref)
    assert "Conv_1/BatchNorm/gamma" in ours["variables"]


def _seeded(seed):
    return v1.truncated_normal_initializer(stddev=0.3, seed=seed)


# ----------------------------------------------------------- checkpoints


def _network(images, batch_norm, is_training, reuse=None, **bn_kwargs):
    params = dict({"decay": 0.9, "scale": True, "is_training": is_training}, **bn_kwargs)
    with slim.arg_scope(
        [slim.conv2d], normalizer_fn=batch_norm, normalizer_params=params, reuse=reuse
    ):
        net = slim.conv2d(images, 8, [3, 3], scope="conv1", weights_initializer=_seeded(3))
        return slim.conv2d(net, 4, [3, 3], scope="conv2", weights_initializer=_seeded(4))


def _train_and_save(writer, path, batches, test_images, **bn_kwargs):
    """Train ``writer``'s network a few steps, save it; its inference output on ``test_images``."""
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, [None, 6, 6, 3])
        loss = tf.reduce_mean(tf.square(_network(images, writer, True, **bn_kwargs) - 1.0))
        with tf.control_dependencies(v1.get_collection(UPDATE_OPS)):
            train_op = v1.train.GradientDescentOptimizer(0.1).minimize(loss)
        inference = _network(images, writer, False, reuse=True, **bn_kwargs)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for batch in batches:
                sess.run(train_op, {images: batch})
            moving = sess.run(v1.global_variables("conv1/BatchNorm/moving_variance")[0])
            assert not np.allclose(moving, 1.0)  # the statistics are not the initial ones
            v1.train.Saver().save(sess, path)
            return sess.run(inference, {images: test_images})


def _restore_and_infer(reader, path, test_images, **bn_kwargs):
    with tf.Graph().as_default():
        output = _network(tf.constant(test_images), reader, False, **bn_kwargs)
        with v1.Session() as sess:
            v1.train.Saver().restore(sess, path)
            return sess.run(output)


@pytest.mark.parametrize("direction", ["slim->tf1norm", "tf1norm->slim"])
def test_checkpoints_are_interchangeable_with_slim(tmp_path, rng, direction):
    writer, reader = slim.batch_norm, slim_layers.batch_norm
    if direction == "tf1norm->slim":
        writer, reader = reader, writer
    batches = [_x(rng, (4, 6, 6, 3)) for _ in range(4)]
    test_images = _x(rng, (3, 6, 6, 3))
    path = str(tmp_path / "net")
    expected = _train_and_save(writer, path, batches, test_images)
    np.testing.assert_allclose(
        _restore_and_infer(reader, path, test_images), expected, rtol=1e-5, atol=1e-6
    )


def test_zero_debias_checkpoint_of_patched_slim_restores(tmp_path, rng, patched_slim):
    batches = [_x(rng, (4, 6, 6, 3)) for _ in range(3)]
    test_images = _x(rng, (3, 6, 6, 3))
    path = str(tmp_path / "net")
    expected = _train_and_save(
        slim.batch_norm, path, batches, test_images, zero_debias_moving_mean=True
    )
    with tf.Graph().as_default():  # training graph: the debias variables must restore too
        _network(
            tf.constant(test_images), slim_layers.batch_norm, True, zero_debias_moving_mean=True
        )
        with v1.Session() as sess:
            v1.train.Saver().restore(sess, path)
            step = sess.run(
                v1.global_variables("conv1/BatchNorm/conv1/BatchNorm/moving_mean/local_step")[0]
            )
            assert step == len(batches)
    got = _restore_and_infer(
        slim_layers.batch_norm, path, test_images, zero_debias_moving_mean=True
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------- partitioned scopes


@pytest.mark.parametrize(
    "partitioner",
    [
        lambda: v1.fixed_size_partitioner(2),
        lambda: v1.min_max_variable_partitioner(max_partitions=2, min_slice_size=4),
    ],
    ids=["fixed_size", "min_max"],
)
@pytest.mark.parametrize(
    "kwargs", [{"scale": True}, {"zero_debias_moving_mean": True}], ids=["default", "zero_debias"]
)
def test_partitioned_scope_keeps_the_variables_whole(rng, partitioner, kwargs):
    x0 = _x(rng, (2, 4, 5, 6))

    def partitioned(x, **kwargs_):
        with v1.variable_scope("x", partitioner=partitioner()):
            v1.get_variable("w", [10, 6], trainable=False)  # the partitioner is really active
            return slim_layers.batch_norm(x, **kwargs_)

    def whole(x, **kwargs_):
        with v1.variable_scope("x"):
            v1.get_variable("w", [10, 6], trainable=False)
            return slim_layers.batch_norm(x, **kwargs_)

    ours, ref = _run(partitioned, x0, kwargs), _run(whole, x0, kwargs)
    for run in (ours, ref):
        run["variables"].pop("x/w", None), run["variables"].pop("x/w/part_0", None)
        run["variables"].pop("x/w/part_1", None)
        run["collections"].pop(v1.GraphKeys.GLOBAL_VARIABLES)
    _assert_same(ours, ref)
    assert all("/part_" not in name for name in ours["variables"])
