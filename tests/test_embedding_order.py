"""embedding_lookup(max_norm=...): the read/update order of the torch-mode renorm and
of the after-update projection survives grappler; ref variables step like resource
variables."""

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1
from embedding_helpers import _session, _table, _torch_renorm_rows


def _optimized_graph(session, fetch, feed):
    """The graph the session ran, after Grappler: ``{name: NodeDef}``."""
    metadata = v1.RunMetadata()
    session.run(
        fetch, feed, options=v1.RunOptions(output_partition_graphs=True), run_metadata=metadata
    )
    return {node.name: node for graph in metadata.partition_graphs for node in graph.node}


def _ancestors(start, parents):
    """Everything ``start`` waits for, through ``parents(node) -> nodes``."""
    seen, stack = set(), [start]
    while stack:
        for parent in parents(stack.pop()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def _node_ancestors(nodes, name):
    return _ancestors(name, lambda n: [i.lstrip("^").split(":")[0] for i in nodes[n].input])


def _op_ancestors(op):
    return _ancestors(op, lambda o: [t.op for t in o.inputs] + list(o.control_inputs))


def _ordering_graph(graph, mode, partitioned, build, fetch_rows):
    """One step; return the optimized graph and per partition (update, scatter, own read,
    lookup reads)."""
    partitioner = v1.fixed_size_partitioner(2) if partitioned else None
    with v1.variable_scope("embed", partitioner=partitioner):
        table = v1.get_variable("table", [40, 4])
    ids, weights = v1.placeholder(tf.int64, [5]), v1.placeholder(tf.float32, [4, 3])
    out = tf1norm.embedding_lookup(table, ids, max_norm=0.1, mode=mode)
    # the gradient, ones·weightsᵀ, needs nothing of the forward, not even its shape
    loss = tf.reduce_sum(tf.matmul(out, weights))
    optimizer = v1.train.GradientDescentOptimizer(0.1)
    train_op = (
        tf1norm.create_train_op(loss, optimizer, check_numerics=False)
        if build == "create_train_op"
        else optimizer.minimize(loss)
    )
    with _session(graph) as session:
        session.run(v1.global_variables_initializer())
        fetches = [train_op, out] if fetch_rows else train_op
        nodes = _optimized_graph(
            session, fetches, {ids: [1, 7, 7, 30, 38], weights: np.ones((4, 3))}
        )
    found = []
    for part in table if partitioned else [table]:
        on_part = [n for n in nodes if nodes[n].input and nodes[n].input[0] == part.handle.op.name]
        of_type = lambda kind: [n for n in on_part if nodes[n].op == kind]  # noqa: E731
        # the renorm/projection reads the unique ids; the lookup reads the ids as they come
        unique = [
            g
            for g in of_type("ResourceGather")
            if nodes[nodes[g].input[1].split(":")[0]].op == "Unique"
        ]
        lookups = [g for g in of_type("ResourceGather") if g not in unique]
        (update,), (scatter,), (own_read,) = (
            of_type("ResourceScatterAdd"),
            of_type("ResourceScatterUpdate"),
            unique,
        )
        assert own_read in _node_ancestors(nodes, scatter)
        found.append((update, scatter, own_read, lookups))
    return nodes, found


@pytest.mark.parametrize("partitioned", [False, True])
@pytest.mark.parametrize("fetch_rows", [False, True])
@pytest.mark.parametrize("build", ["create_train_op", "minimize"])
def test_torch_mode_renorm_read_update_order_survives_grappler(
    graph, partitioned, fetch_rows, build
):
    """renorm, then the lookup read, then the update: on the graph Grappler made.

    When only minimize's op is fetched nothing needs the lookup's rows (the
    gradient of sum(rows·weights) is ones·weightsᵀ) and Grappler drops that
    read; the renorm still precedes the update.
    """
    nodes, found = _ordering_graph(graph, "torch", partitioned, build, fetch_rows)
    for update, scatter, _, lookups in found:
        assert scatter in _node_ancestors(nodes, update)
        assert len(lookups) == 1 if fetch_rows else len(lookups) <= 1
        for lookup in lookups:
            assert scatter in _node_ancestors(nodes, lookup)
            assert lookup in _node_ancestors(nodes, update)
    assert tf1norm.registry.recorded_collections() == []  # nothing runs after the update


@pytest.mark.parametrize("partitioned", [False, True])
def test_after_update_projection_reads_after_the_update_despite_grappler(graph, partitioned):
    nodes, found = _ordering_graph(graph, "after_update", partitioned, "create_train_op", True)
    for update, _, own_read, (lookup,) in found:
        assert update in _node_ancestors(nodes, own_read)
        assert lookup in _node_ancestors(nodes, update)  # the lookup read comes first
    assert tf1norm.registry.recorded_collections() == [tf1norm.keys.EMBEDDING_MAX_NORM]


@pytest.mark.parametrize("mode", ["after_update", "torch"])
def test_table_gradient_waits_for_the_lookup_read(graph, mode):
    """Even a gradient that needs nothing of the forward (not even a shape) waits for the read."""
    table = v1.get_variable("table", [40, 4])
    ids, weights = v1.placeholder(tf.int64, [5]), v1.placeholder(tf.float32, [4, 3])
    out = tf1norm.embedding_lookup(table, ids, max_norm=0.1, mode=mode)
    (grad,) = tf.gradients(tf.reduce_sum(tf.matmul(out, weights)), [table])
    assert isinstance(grad, tf.IndexedSlices)
    waits = {op.type for op in _op_ancestors(grad.values.op)}
    assert "ResourceGather" in waits
    assert ("ResourceScatterUpdate" in waits) == (mode == "torch")  # the renorm, torch only


def test_torch_mode_renormalizes_an_id_repeated_in_a_batch_once(sess, rng):
    start = _table(rng, rows=6, dim=3, scale=3.0)
    table = v1.get_variable("table", initializer=start)
    out = tf1norm.embedding_lookup(table, [[2, 2], [5, 2]], max_norm=0.5, mode="torch")
    sess.run(v1.global_variables_initializer())
    expected = _torch_renorm_rows(start[[2, 5]], 0.5, 2.0)  # once, not twice
    np.testing.assert_allclose(sess.run(out), expected[[[0, 0], [1, 0]]], rtol=1e-6)
    np.testing.assert_allclose(sess.run(table)[[2, 5]], expected, rtol=1e-6)
    assert v1.global_variables() == [table] and tf1norm.registry.recorded_collections() == []


@pytest.mark.parametrize("mode", ["after_update", "torch"])
def test_ref_variables_step_like_resource_variables(rng, mode):
    start = _table(rng, rows=10, dim=3, scale=3.0)
    results = []
    for use_resource in (True, False):
        graph = tf.Graph()
        with graph.as_default(), _session(graph) as session:
            table = v1.get_variable("table", initializer=start, use_resource=use_resource)
            out = tf1norm.embedding_lookup(table, [1, 2, 2], max_norm=1.0, mode=mode)
            train_op = tf1norm.create_train_op(
                tf.reduce_sum(tf.square(out - 2.0)), v1.train.GradientDescentOptimizer(0.1)
            )
            session.run(v1.global_variables_initializer())
            results.append(
                [session.run([train_op, out])[1] for _ in range(2)] + [session.run(table)]
            )
    for resource, ref in zip(*results):
        np.testing.assert_allclose(ref, resource, rtol=1e-6)
    np.testing.assert_array_equal(results[1][-1][3:], start[3:])
