"""embedding_lookup(max_norm=...): sparse row projection after the update."""

import numpy as np
import pytest

import tf1norm
from tf1norm._tf import tf, v1

from tf1norm.check import _Closure


def _torch_renorm_rows(rows, max_norm):
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.where(norms > max_norm, rows * max_norm / (norms + 1e-7), rows)


def _table(rng, rows=50, dim=6, scale=1.0):
    return (rng.standard_normal((rows, dim)) * scale).astype(np.float32)


def test_forward_rows_use_the_torch_renorm(sess, rng):
    start = _table(rng, scale=2.0)
    table = v1.get_variable("table", initializer=start)
    ids = np.array([[3, 7], [7, 49]])
    out = tf1norm.embedding_lookup(table, ids, max_norm=1.0)
    sess.run(v1.global_variables_initializer())
    np.testing.assert_allclose(sess.run(out), _torch_renorm_rows(start[ids.ravel()], 1.0)
                               .reshape(2, 2, 6), rtol=1e-6)


def test_after_a_step_only_the_looked_up_rows_are_projected(sess, rng):
    start = _table(rng, scale=2.0)
    table = v1.get_variable("table", initializer=start)
    ids = v1.placeholder(tf.int64, [None])
    out = tf1norm.embedding_lookup(table, ids, max_norm=1.5)
    loss = tf.reduce_sum(out * np.arange(6, dtype=np.float32))
    train_op = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(0.1))
    batch = np.array([4, 9, 9, 31])
    sess.run(v1.global_variables_initializer())
    sess.run(train_op, {ids: batch})
    after = sess.run(table)
    grad_rows = np.zeros_like(start)
    np.add.at(grad_rows, batch, np.arange(6, dtype=np.float32))
    updated = start - 0.1 * grad_rows
    touched = np.unique(batch)
    np.testing.assert_allclose(after[touched], _torch_renorm_rows(updated[touched], 1.5),
                               rtol=1e-6)
    assert np.all(np.linalg.norm(after[touched], axis=1) <= 1.5 + 1e-6)
    others = np.setdiff1d(np.arange(len(start)), touched)
    np.testing.assert_array_equal(after[others], start[others])  # untouched, bit-exact
    assert np.any(np.linalg.norm(start[others], axis=1) > 1.5)   # though over the limit


def _writes(closure, table):
    reads = {"ReadVariableOp", "ResourceGather"}
    return {op.type for op in closure.writes(table.handle.op, ("",)) if op.type not in reads}


def test_gradients_and_updates_stay_sparse(graph):
    table = v1.get_variable("table", [1000, 8])
    ids = v1.placeholder(tf.int64, [None])
    loss = tf.reduce_sum(tf1norm.embedding_lookup(table, ids, max_norm=1.0))
    assert isinstance(tf.gradients(loss, table)[0], tf.IndexedSlices)
    train_op = tf1norm.create_train_op(loss, v1.train.MomentumOptimizer(0.01, 0.9))
    assert _writes(_Closure(train_op), table) == {"ResourceSparseApplyMomentum",
                                                  "ResourceScatterUpdate"}
    assert tf1norm.check_train_op(train_op) == []


def test_projection_is_sparse_even_when_the_optimizer_is_not(graph):
    """TF1 Adam updates every row (its moments decay everywhere); ours does not add to that."""
    table = v1.get_variable("table", [1000, 8])
    ids = v1.placeholder(tf.int64, [None])
    loss = tf.reduce_sum(tf1norm.embedding_lookup(table, ids, max_norm=1.0))
    train_op = tf1norm.create_train_op(loss, v1.train.AdamOptimizer(0.01))
    assert _writes(_Closure(train_op), table) == {"AssignSubVariableOp", "ResourceScatterUpdate"}


def test_adam_and_several_lookups(sess, rng):
    start = _table(rng, scale=3.0)
    table = v1.get_variable("table", initializer=start)
    a, b = v1.placeholder(tf.int64, [None]), v1.placeholder(tf.int64, [None])
    loss = tf.reduce_sum(tf1norm.embedding_lookup(table, a, max_norm=1.0)) + tf.reduce_sum(
        tf1norm.embedding_lookup(table, b, max_norm=1.0))
    train_op = tf1norm.create_train_op(loss, v1.train.AdamOptimizer(0.01))
    sess.run(v1.global_variables_initializer())
    sess.run(train_op, {a: [1, 2], b: [2, 40]})
    norms = np.linalg.norm(sess.run(table), axis=1)
    assert np.all(norms[[1, 2, 40]] <= 1.0 + 1e-6)
    np.testing.assert_array_equal(sess.run(table)[3], start[3])


def test_plain_lookup_without_max_norm(sess, rng):
    start = _table(rng)
    out = tf1norm.embedding_lookup(tf.constant(start), [2, 5])
    np.testing.assert_array_equal(sess.run(out), start[[2, 5]])
    assert tf1norm.registry.recorded_collections() == []


@pytest.mark.parametrize("call,error,fragment", [
    (lambda t: tf1norm.embedding_lookup(t, [0.5], max_norm=1.0), TypeError, "integer"),
    (lambda t: tf1norm.embedding_lookup(tf.ones([4, 2]), [1], max_norm=1.0), TypeError,
     "tf.Variable"),
    (lambda t: tf1norm.embedding_lookup(t, [1], max_norm=0.0), ValueError, "`max_norm`"),
    (lambda t: tf1norm.embedding_lookup(v1.get_variable("t3", [2, 3, 4]), [1], max_norm=1.0),
     ValueError, "rank 2"),
])
def test_bad_input(graph, call, error, fragment):
    table = v1.get_variable("table", [4, 2])
    with pytest.raises(error) as info:
        call(table)
    assert fragment in str(info.value)
