"""Partitioned variables: max-norm, weight norm and spectral norm see the whole variable."""

import re
import warnings

import numpy as np
import pytest

import tf1norm
from tf1norm.graph import regularizers
from tf1norm._src.compat import tf, v1

import numpy_twins as twins
from conftest import run_initialized

RNG = np.random.default_rng(7)
W0 = RNG.normal(size=(6, 3)).astype(np.float32)  # unit norms ~2.4: all above 1
X = RNG.normal(size=(5, 6)).astype(np.float32)
LR = 0.1

PARTITIONERS = {
    "none": None,
    "fixed_axis0": lambda: v1.fixed_size_partitioner(2),
    "fixed_axis0_3": lambda: v1.fixed_size_partitioner(3),
    "fixed_last_axis": lambda: v1.fixed_size_partitioner(3, axis=1),
    "min_max": lambda: v1.min_max_variable_partitioner(max_partitions=3, min_slice_size=16),
}


def _scope(partitioner, **kwargs):
    return v1.variable_scope("layer", partitioner=partitioner() if partitioner else None, **kwargs)


def _w0_initializer(shape, dtype=None, partition_info=None):
    """W0, or the slice of W0 a partition holds."""
    del dtype
    offset = partition_info.var_offset if partition_info is not None else [0, 0]
    return tf.constant(W0[offset[0] : offset[0] + shape[0], offset[1] : offset[1] + shape[1]])


def _kernel(**kwargs):
    return v1.get_variable("kernel", W0.shape, initializer=_w0_initializer, **kwargs)


def _whole(kernel):
    return tf.convert_to_tensor(kernel) if not isinstance(kernel, tf.Variable) else kernel


def _max_norm_step(partitioner, collection_only=False):
    """One SGD step of sum(X @ w) under max-norm 1.0; the kernel value after it."""
    with tf.Graph().as_default(), v1.Session() as sess:
        with _scope(partitioner):
            kernel = _kernel(regularizer=tf1norm.max_norm_regularizer(1.0))
        whole = _whole(kernel)
        loss = tf.reduce_sum(tf.matmul(X, whole))
        if collection_only:
            train_op = v1.train.GradientDescentOptimizer(LR).minimize(loss)
            run_initialized(sess, train_op)
            sess.run(v1.get_collection("max_norm"))
        else:
            train_op = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(LR))
            assert tf1norm.check_train_op(train_op) == []
            run_initialized(sess, train_op)
        return sess.run(whole), len([v for v in v1.global_variables() if "kernel" in v.name])


@pytest.mark.parametrize("name", sorted(PARTITIONERS))
def test_max_norm_projects_the_whole_variable(name):
    expected = twins.max_norm(W0.astype(np.float64) - LR * X.sum(0)[:, None], 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the collection-op warning (tested below)
        value, parts = _max_norm_step(PARTITIONERS[name])
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    assert parts == (1 if name == "none" else {"fixed_axis0": 2}.get(name, 3))


def test_collection_ops_of_partitions_warn_and_are_per_partition():
    """The legacy collection path can only cap each partition: documented and warned."""
    regularizers._warned_parts.clear()
    with pytest.warns(UserWarning, match="one partition of a partitioned variable"):
        value, _ = _max_norm_step(PARTITIONERS["fixed_axis0"], collection_only=True)
    stepped = W0 - LR * X.sum(0)[:, None]
    per_part = np.concatenate([twins.max_norm(stepped[:3], 1.0), twins.max_norm(stepped[3:], 1.0)])
    np.testing.assert_allclose(value, per_part, rtol=1e-5)
    # split along the kept (last) axis, each unit lies in one part: the collection is exact
    regularizers._warned_parts.clear()
    with pytest.warns(UserWarning):
        value, _ = _max_norm_step(PARTITIONERS["fixed_last_axis"], collection_only=True)
    np.testing.assert_allclose(value, twins.max_norm(stepped, 1.0), rtol=1e-5)


def test_slim_scope_max_norm_on_partitioned_fully_connected(sess):
    import tf_slim as slim

    with _scope(PARTITIONERS["fixed_axis0"]), tf1norm.slim_scope(max_norm=0.5):
        logits = slim.fully_connected(tf.constant(X), 3, activation_fn=None)
    loss = tf.reduce_sum(tf.square(logits - 5.0))
    train_op = tf1norm.create_train_op(loss, v1.train.MomentumOptimizer(0.05, 0.9))
    run_initialized(sess, train_op)
    for _ in range(5):
        sess.run(train_op)
    (weights,) = [v for v in v1.global_variables() if v.op.name.endswith("weights")] or [None]
    parts = [v for v in v1.global_variables() if re.search(r"weights/part_\d$", v.op.name)]
    assert weights is None and len(parts) == 2
    whole = np.concatenate(sess.run(parts), axis=0)
    norms = np.linalg.norm(whole, axis=0)
    assert np.all(norms <= 0.5 * (1 + 1e-6)) and np.max(norms) > 0.49


def _reparam_model(partitioner, getter):
    with _scope(partitioner, custom_getter=getter):
        kernel = _kernel()
    return tf.matmul(tf.constant(X), kernel)


@pytest.mark.parametrize("name", ["fixed_axis0", "min_max"])
def test_weight_norm_on_partitions_trains_like_the_whole(name):
    def run(partitioner):
        with tf.Graph().as_default(), v1.Session() as sess:
            out = _reparam_model(partitioner, tf1norm.weight_norm_getter())
            loss = tf.reduce_sum(tf.square(out - 1.0))
            train_op = tf1norm.create_train_op(loss, v1.train.AdamOptimizer(0.05))
            first = run_initialized(sess, out)
            for _ in range(3):
                sess.run(train_op)
            return first, sess.run(out)

    first, trained = run(PARTITIONERS[name])
    np.testing.assert_allclose(first, X @ W0, rtol=1e-5)  # g = ‖v‖: the plain layer
    np.testing.assert_allclose(trained, run(None)[1], rtol=1e-5)


def test_weight_norm_partitioned_export_restores_into_the_plain_partitioned_net(tmp_path):
    path = str(tmp_path / "plain")
    with tf.Graph().as_default(), v1.Session() as sess:
        out = _reparam_model(PARTITIONERS["fixed_axis0"], tf1norm.weight_norm_getter())
        loss = tf.reduce_sum(tf.square(out - 1.0))
        train_op = tf1norm.create_train_op(loss, v1.train.AdamOptimizer(0.05))
        run_initialized(sess, train_op)
        sess.run(train_op)
        expected = sess.run(out)
        tf1norm.export_plain_checkpoint(sess, path)
    for partitioner in (PARTITIONERS["fixed_axis0"], PARTITIONERS["fixed_last_axis"], None):
        with tf.Graph().as_default(), v1.Session() as sess:
            plain = _reparam_model(partitioner, None)
            v1.train.Saver(v1.trainable_variables()).restore(sess, path)
            np.testing.assert_allclose(sess.run(plain), expected, rtol=1e-5)
    with tf.Graph().as_default(), v1.Session() as sess:  # and back into weight norm
        out = _reparam_model(PARTITIONERS["fixed_last_axis"], tf1norm.weight_norm_getter())
        sess.run(v1.global_variables_initializer())
        tf1norm.restore_plain_checkpoint(sess, path)
        np.testing.assert_allclose(sess.run(out), expected, rtol=1e-5)


@pytest.mark.parametrize("update", ["immediate", "collection"])
def test_spectral_norm_on_partitions_equals_the_whole(update):
    def run(partitioner):
        with tf.Graph().as_default(), v1.Session() as sess:
            v1.set_random_seed(3)
            out = _reparam_model(partitioner, tf1norm.spectral_norm_getter(update=update))
            (u,) = [v for v in v1.global_variables() if v.op.name.endswith("sn_u")]
            loss = tf.reduce_sum(tf.square(out - 1.0))
            train_op = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(0.05))
            sess.run(v1.global_variables_initializer())
            sess.run(u.assign(np.ones((1, 3), np.float32)))
            u_before = sess.run(u)
            sess.run(train_op)
            assert tf1norm.check_train_op(train_op) == []
            return sess.run(out), sess.run(u), u_before

    whole_out, whole_u, _ = run(None)
    out, u, u_before = run(PARTITIONERS["fixed_axis0"])
    assert not np.allclose(u, u_before)  # the refresh ran on the partitioned weight
    np.testing.assert_allclose(u, whole_u, rtol=1e-5)
    np.testing.assert_allclose(out, whole_out, rtol=1e-5)
