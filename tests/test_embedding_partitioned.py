"""embedding_lookup(max_norm=...) on partitioned tables: a partitioned table steps
like the whole table, ids map to rows like tf.nn.embedding_lookup, and the
projections scatter into their own partition."""

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1
from embedding_helpers import _session, _step_op, _table, _writes
from tf1norm.training.check import _Closure


# --- partitioned tables ----------------------------------------------------------------------

PARTITIONERS = {
    "fixed_size_2": lambda: v1.fixed_size_partitioner(2),
    "min_max_3": lambda: v1.min_max_variable_partitioner(max_partitions=3, min_slice_size=64),
}


def _shard(table, sizes, strategy):
    """The rows each partition stores so that id i means row i of ``table``."""
    if strategy == "mod":
        return [table[k :: len(sizes)] for k in range(len(sizes))]
    return np.split(table, np.cumsum(sizes)[:-1])


def _unshard(parts, strategy):
    if strategy == "div":
        return np.concatenate(parts)
    table = np.empty((sum(len(p) for p in parts), parts[0].shape[1]), parts[0].dtype)
    for k, part in enumerate(parts):
        table[k :: len(parts)] = part
    return table


def _partitioned_run(start, batches, mode, strategy, partitioner=None):
    """Train 4 SGD steps; return (looked-up rows per step, table in id order, variables)."""
    graph = tf.Graph()
    with graph.as_default():
        with v1.variable_scope("embed", partitioner=partitioner and partitioner()):
            table = v1.get_variable("table", start.shape)
        parts = list(table) if partitioner else [table]
        ids = v1.placeholder(tf.int64, [None])
        out = tf1norm.embedding_lookup(
            table, ids, max_norm=1.0, mode=mode, partition_strategy=strategy
        )
        loss = 0.5 * tf.reduce_sum(tf.square(tf.reduce_sum(out, -1) - 4.0))
        train_op = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(0.3))
        shards = _shard(start, [p.shape[0] for p in parts], strategy)
        with _session(graph) as session:
            session.run(v1.global_variables_initializer())
            session.run([p.assign(s) for p, s in zip(parts, shards)])
            rows = [session.run([train_op, out], {ids: b})[1] for b in batches]
            final = _unshard(session.run(parts), strategy)
        projected = [
            p.variable
            for name in tf1norm.registry.recorded_collections()
            for p in tf1norm.registry.get_projections(name)
        ]
    return rows, final, parts, projected


@pytest.mark.parametrize("partitioner", sorted(PARTITIONERS))
@pytest.mark.parametrize("mode", ["after_update", "torch"])
@pytest.mark.parametrize("strategy", ["div", "mod"])
def test_partitioned_table_equals_the_whole_table(rng, partitioner, mode, strategy):
    start = _table(rng, scale=1.5)
    batches = [rng.choice(np.arange(0, 50, 2), 8) for _ in range(4)]  # odd ids never
    batches[0][:3] = [48, 48, 1]  # a repeat and an id of the last partition
    whole_rows, whole, _, _ = _partitioned_run(start, batches, mode, strategy)
    rows, final, parts, projected = _partitioned_run(
        start, batches, mode, strategy, PARTITIONERS[partitioner]
    )
    assert len(parts) == {"fixed_size_2": 2, "min_max_3": 3}[partitioner]
    assert len(projected) == (len(parts) if mode == "after_update" else 0)
    for got, expected in zip(rows, whole_rows):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(final, whole, rtol=1e-6, atol=1e-7)
    never = np.setdiff1d(np.arange(50), np.concatenate(batches))
    np.testing.assert_array_equal(final[never], start[never])  # untouched, bit for bit
    assert not np.allclose(final, start)


@pytest.mark.parametrize("strategy", ["div", "mod"])
@pytest.mark.parametrize("mode", ["after_update", "torch"])
def test_partitioned_ids_map_to_rows_like_tf_embedding_lookup(sess, rng, strategy, mode):
    partitioner = v1.min_max_variable_partitioner(max_partitions=3, min_slice_size=64)
    with v1.variable_scope("embed", partitioner=partitioner):
        table = v1.get_variable("table", [50, 6], initializer=v1.random_normal_initializer())
    ids = rng.integers(0, 50, (4, 5))
    ours = tf1norm.embedding_lookup(
        table, ids, max_norm=100.0, mode=mode, partition_strategy=strategy
    )  # no row is over 100
    theirs = v1.nn.embedding_lookup(table, ids, partition_strategy=strategy)
    sess.run(v1.global_variables_initializer())
    assert ours.shape == (4, 5, 6)
    np.testing.assert_array_equal(*sess.run([ours, theirs]))


def test_partitioned_projections_scatter_into_their_partition(graph):
    with v1.variable_scope("embed", partitioner=v1.fixed_size_partitioner(2)):
        table = v1.get_variable("table", [10, 3])
    loss = tf.reduce_sum(tf1norm.embedding_lookup(table, [1, 7], max_norm=1.0))
    train_op = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(0.1))
    closure = _Closure(_step_op(train_op))
    for part in table:
        assert _writes(closure, part) == {"ResourceScatterAdd", "ResourceScatterUpdate"}
    assert tf1norm.check_train_op(train_op) == []
