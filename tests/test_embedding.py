"""embedding_lookup(max_norm=...): torch mode, after-update projection, bad input.

The read/update ordering under grappler is in test_embedding_order.py, partitioned
tables in test_embedding_partitioned.py."""

import math
import pathlib

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1
from embedding_helpers import (
    _exact_norm_at_most,
    _margin,
    _p_norms,
    _session,
    _step_op,
    _table,
    _torch_renorm_rows,
    _writes,
)
from tf1norm.training.check import _Closure
from tf1norm._math.rows import max_norm_rows, torch_renorm_rows

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


# --- pure row functions ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-6), (np.float64, 1e-15)])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, math.inf])
def test_torch_renorm_rows_matches_numpy_twin(sess, rng, dtype, rtol, p):
    rows = (rng.standard_normal((40, 7)) * rng.uniform(0.1, 3.0, (40, 1))).astype(dtype)
    max_norm = float(np.median(_p_norms(rows, p)))
    out = sess.run(torch_renorm_rows(tf.constant(rows), max_norm, p))
    expected = _torch_renorm_rows(rows, max_norm, p)
    np.testing.assert_allclose(out, expected, rtol=rtol)
    under = _p_norms(rows, p)[:, 0] <= max_norm
    assert 0 < under.sum() < len(rows)
    np.testing.assert_array_equal(out[under], rows[under])  # bit for bit


def _random_rows(rng, dtype, dim, max_norm, p, count=300):
    """Rows from 0.2 to 40 times max_norm, plus rows exactly at and one ulp above it."""
    rows = rng.standard_normal((count, dim))
    scale = np.exp(rng.uniform(np.log(0.2), np.log(40.0), (count, 1)))
    rows = (rows * scale * max_norm / _p_norms(rows, p)).astype(dtype)
    at = np.zeros((2, dim), dtype)
    at[:, 0] = np.asarray(max_norm, dtype)
    at[1, 0] = np.nextafter(at[1, 0], np.asarray(np.inf, dtype))
    return np.concatenate([rows, at])


FLOATS = [np.float16, tf.bfloat16.as_numpy_dtype, np.float32, np.float64]


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 1.5, 0.5, math.inf])
@pytest.mark.parametrize("dim", [1, 7, 64])
def test_max_norm_rows_bound_holds_exactly(rng, dtype, p, dim):
    """Exact arithmetic on the returned values: every row <= max_norm, none shrunk too far."""
    with tf.Graph().as_default(), v1.Session() as session:
        rows = v1.placeholder(tf.as_dtype(dtype), [None, dim])
        capped = {m: max_norm_rows(rows, m, p) for m in (0.37, 1.0, 7.3)}
        again = {m: max_norm_rows(c, m, p) for m, c in capped.items()}
        for max_norm in capped:
            x = _random_rows(rng, dtype, dim, max_norm, p)
            out, twice = session.run([capped[max_norm], again[max_norm]], {rows: x})
            changed = np.any(out != x, axis=1)
            assert out.dtype == x.dtype and changed.sum() > len(x) // 2
            assert all(_exact_norm_at_most(r, p, max_norm) for r in out)
            lower = max_norm * (1 - 2 * _margin(dtype, dim, p)) * (1 - 1e-14)
            assert np.all(_p_norms(out[changed], p) >= lower)
            far_under = _p_norms(x, p)[:, 0] < max_norm * (1 - 1e-9)
            np.testing.assert_array_equal(out[far_under], x[far_under])  # bit for bit
            np.testing.assert_array_equal(twice, out)  # idempotent


# --- mode="torch" against recorded PyTorch ---------------------------------------------------


def _fixture():
    data = np.load(FIXTURES / "torch_embedding.npz")
    return {k: data[k] for k in data.files}


def _fixture_run(data, dtype, p, mode):
    """Train like tools/record_torch_embedding.py; return (tables, rows) after every step."""
    graph = tf.Graph()
    with graph.as_default():
        table = v1.get_variable("table", initializer=data["table"].astype(dtype))
        ids = v1.placeholder(tf.int64, [3, 2])
        targets = v1.placeholder(dtype, [3, 2])
        out = tf1norm.embedding_lookup(
            table, ids, max_norm=float(data["max_norm"]), norm_type=p, mode=mode
        )
        prediction = tf.reduce_sum(out * data["v"].astype(dtype), axis=-1)
        loss = 0.5 * tf.reduce_sum(tf.square(prediction - targets))
        train_op = tf1norm.create_train_op(
            loss, v1.train.GradientDescentOptimizer(float(data["lr"]))
        )
        with _session(graph) as session:
            session.run(v1.global_variables_initializer())
            tables, rows = [], []
            for step_ids, step_targets in zip(data["ids"], data["targets"]):
                feed = {ids: step_ids, targets: step_targets.astype(dtype)}
                rows.append(session.run([train_op, out], feed)[1])
                tables.append(session.run(table))
    return np.stack(tables), np.stack(rows)


TOLERANCES = {"float32": {"rtol": 2e-6, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-13}}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_torch_mode_matches_recorded_torch_step_by_step(dtype, p):
    data = _fixture()
    tables, rows = _fixture_run(data, dtype, p, "torch")
    expected_tables, expected_rows = data[f"{dtype}_p{p:g}_tables"], data[f"{dtype}_p{p:g}_rows"]
    assert tables.shape == expected_tables.shape == (10, 12, 5)
    for step in range(len(tables)):
        np.testing.assert_allclose(
            rows[step], expected_rows[step], err_msg=f"step {step}", **TOLERANCES[dtype]
        )
        np.testing.assert_allclose(
            tables[step], expected_tables[step], err_msg=f"step {step}", **TOLERANCES[dtype]
        )
    start = data["table"].astype(dtype)
    np.testing.assert_array_equal(tables[-1][10:], start[10:])  # never looked up: untouched
    assert np.all(_p_norms(start[10:], p) > data["max_norm"])  # though over the limit
    # the fixture exercises the renorm: updated rows go back over max_norm
    assert np.all(
        np.any(
            _p_norms(tables.reshape(-1, 5), p).reshape(10, 12)[:, :10] > data["max_norm"], axis=1
        )
    )


def test_after_update_mode_differs_from_torch_and_holds_the_bound():
    """Why the mode matters: same problem, different trajectory, table always within the bound."""
    data = _fixture()
    tables, rows = _fixture_run(data, "float32", 2.0, "after_update")
    torch_tables = data["float32_p2_tables"]
    assert np.max(np.abs(tables - torch_tables)) > 1e-2
    for step, step_ids in enumerate(data["ids"]):
        looked_up = np.unique(step_ids)
        assert all(
            _exact_norm_at_most(r, 2.0, float(data["max_norm"])) for r in tables[step][looked_up]
        )
        assert all(
            _exact_norm_at_most(r, 2.0, float(data["max_norm"])) for r in rows[step].reshape(-1, 5)
        )


# --- mode="after_update" ---------------------------------------------------------------------


def test_after_update_forward_rows_are_capped_with_a_straight_through_gradient(sess, rng):
    start = _table(rng, scale=2.0)
    table = v1.get_variable("table", initializer=start)
    ids = np.array([[3, 7], [7, 49]])
    out = tf1norm.embedding_lookup(table, ids, max_norm=1.0)
    grad = tf.gradients(tf.reduce_sum(out * 3.0), table)[0]
    sess.run(v1.global_variables_initializer())
    rows, grad_values = sess.run([out, grad.values])
    norms = _p_norms(start[ids.ravel()], 2)
    np.testing.assert_allclose(
        rows.reshape(4, 6), start[ids.ravel()] * np.minimum(1, 1 / norms), rtol=1e-6
    )
    assert all(_exact_norm_at_most(r, 2.0, 1.0) for r in rows.reshape(4, 6))
    np.testing.assert_array_equal(grad_values, np.full((4, 6), 3.0, np.float32))


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
    updated = start - np.float32(0.1) * grad_rows
    touched = np.unique(batch)
    norms = _p_norms(updated[touched], 2)
    np.testing.assert_allclose(
        after[touched], updated[touched] * np.minimum(1, 1.5 / norms), rtol=1e-6
    )
    others = np.setdiff1d(np.arange(len(start)), touched)
    np.testing.assert_array_equal(after[others], start[others])  # untouched, bit-exact
    assert np.any(_p_norms(start[others], 2) > 1.5)  # though over the limit


def test_bound_holds_exactly_after_a_step_on_300_random_tables(graph, rng):
    """The audit's case: with the float32 scale, 190 of 300 tables had a row over max_norm."""
    table = v1.get_variable("table", [64, 16])
    value, ids = v1.placeholder(tf.float32, [64, 16]), v1.placeholder(tf.int64, [12])
    load = table.assign(value, read_value=False)
    out = tf1norm.embedding_lookup(table, ids, max_norm=1.0, norm_type=2.0)
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(tf.square(out - 0.5)), v1.train.GradientDescentOptimizer(0.3)
    )
    over = 0
    with _session(graph) as session:
        session.run(v1.global_variables_initializer())
        for _ in range(300):
            batch = rng.integers(0, 64, 12)
            session.run(load, {value: rng.standard_normal((64, 16)) * rng.uniform(0.2, 2.0)})
            session.run(train_op, {ids: batch})
            rows = session.run(table)[np.unique(batch)]
            over += not all(_exact_norm_at_most(r, 2.0, 1.0) for r in rows)
    assert over == 0


def test_gradients_and_updates_stay_sparse(graph):
    table = v1.get_variable("table", [1000, 8])
    ids = v1.placeholder(tf.int64, [None])
    loss = tf.reduce_sum(tf1norm.embedding_lookup(table, ids, max_norm=1.0))
    assert isinstance(tf.gradients(loss, table)[0], tf.IndexedSlices)
    train_op = tf1norm.create_train_op(loss, v1.train.MomentumOptimizer(0.01, 0.9))
    assert _writes(_Closure(_step_op(train_op)), table) == {
        "ResourceSparseApplyMomentum",
        "ResourceScatterUpdate",
    }
    assert tf1norm.check_train_op(train_op) == []


def test_projection_is_sparse_even_when_the_optimizer_is_not(graph):
    """TF1 Adam updates every row (its moments decay everywhere); ours does not add to that."""
    table = v1.get_variable("table", [1000, 8])
    ids = v1.placeholder(tf.int64, [None])
    loss = tf.reduce_sum(tf1norm.embedding_lookup(table, ids, max_norm=1.0))
    train_op = tf1norm.create_train_op(loss, v1.train.AdamOptimizer(0.01))
    assert _writes(_Closure(_step_op(train_op)), table) == {
        "AssignSubVariableOp",
        "ResourceScatterUpdate",
    }


def test_adam_and_several_lookups(sess, rng):
    start = _table(rng, scale=3.0)
    table = v1.get_variable("table", initializer=start)
    a, b = v1.placeholder(tf.int64, [None]), v1.placeholder(tf.int64, [None])
    loss = tf.reduce_sum(tf1norm.embedding_lookup(table, a, max_norm=1.0)) + tf.reduce_sum(
        tf1norm.embedding_lookup(table, b, max_norm=1.0)
    )
    train_op = tf1norm.create_train_op(loss, v1.train.AdamOptimizer(0.01))
    sess.run(v1.global_variables_initializer())
    sess.run(train_op, {a: [1, 2], b: [2, 40]})
    after = sess.run(table)
    assert all(_exact_norm_at_most(r, 2.0, 1.0) for r in after[[1, 2, 40]])
    np.testing.assert_array_equal(after[3], start[3])


def test_plain_lookup_without_max_norm(sess, rng):
    start = _table(rng)
    out = tf1norm.embedding_lookup(tf.constant(start), [2, 5])
    np.testing.assert_array_equal(sess.run(out), start[[2, 5]])
    assert tf1norm.registry.recorded_collections() == []


# --- bad input -------------------------------------------------------------------------------


def _lookup(**kwargs):
    def call(table):
        arguments = {"params": table, "ids": [1], "max_norm": 1.0, **kwargs}
        return tf1norm.embedding_lookup(**arguments)

    return call


def _partitioned_on_columns():
    with v1.variable_scope("cols", partitioner=v1.fixed_size_partitioner(2, axis=1)):
        return v1.get_variable("table", [4, 6])


@pytest.mark.parametrize(
    "call,error,fragments",
    [
        (
            lambda t: tf1norm.embedding_lookup(t, [0.5], max_norm=1.0),
            TypeError,
            ["`ids`", "float32", "tf.cast"],
        ),
        (
            lambda t: _lookup(params=tf.ones([4, 2]))(t),
            TypeError,
            ["`params`", "Tensor", "get_variable"],
        ),
        (
            lambda t: _lookup(params=v1.get_variable("t3", [2, 3, 4]))(t),
            ValueError,
            ["`params`", "rank 2", "(2, 3, 4)", "Pass the 2-D"],
        ),
        (
            lambda t: _lookup(params=v1.get_variable("ti", [4, 2], tf.int32))(t),
            TypeError,
            ["`params`", "int32", "float32"],
        ),
        (
            lambda t: _lookup(params=_partitioned_on_columns())(t),
            ValueError,
            ["axis 0", "[4, 3]", "fixed_size_partitioner(n, axis=0)"],
        ),
        (
            lambda t: _lookup(params=[v1.get_variable("a", [3, 2]), v1.get_variable("b", [1, 2])])(
                t
            ),
            ValueError,
            ["`params`", "[2, 2]", "[3, 1]", "partitioner"],
        ),
        (_lookup(max_norm=0.0), ValueError, ["`max_norm`", "must be > 0", "0.0", "Pass"]),
        (_lookup(max_norm=-1.0), ValueError, ["`max_norm`", "-1.0", "Pass"]),
        (_lookup(max_norm=float("nan")), ValueError, ["`max_norm`", "nan", "finite"]),
        (_lookup(norm_type=0), ValueError, ["`norm_type`", "got 0", "2.0"]),
        (_lookup(norm_type=-2.0), ValueError, ["`norm_type`", "-2.0", "2.0"]),
        (_lookup(norm_type=float("nan")), ValueError, ["`norm_type`", "nan", "2.0"]),
        (_lookup(norm_type="2"), TypeError, ["`norm_type`", "'2'", "norm_type=2.0"]),
        (
            _lookup(mode="before_update"),
            ValueError,
            ["`mode`", "'before_update'", "'after_update', 'torch'", "torch.nn.Embedding"],
        ),
        (_lookup(mode="torch", max_norm=None, norm_type=-1.0), ValueError, ["`norm_type`"]),
        (_lookup(max_norm=None, mode="Torch"), ValueError, ["`mode`", "'Torch'"]),
        (
            _lookup(partition_strategy="range"),
            ValueError,
            ["`partition_strategy`", "'range'", "'div', 'mod'"],
        ),
    ],
)
def test_bad_input(graph, call, error, fragments):
    table = v1.get_variable("table", [4, 2])
    with pytest.raises(error) as info:
        call(table)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert str(info.value).startswith("embedding_lookup: ")
