"""Guarded max-norm writes: a large kernel is written only when one of its units is over.

From ``projections.GUARDED_FROM_SIZE`` entries the train op's projection
reads the units' norms (one compiled call) and assigns the capped kernel in a
``tf.cond`` branch taken only when some norm exceeds the threshold (or is
NaN). A session records the ops that ran: the assign runs in a step that
pushes a unit over and not in one that does not, and the weights equal those
of the unguarded projection.
"""

import numpy as np
import pytest

import tf1norm
from tf1norm._math import projections
from tf1norm._src.compat import tf, v1

IN, OUT = 600, 512  # 307,200 entries: guarded


def _model(guarded=True):
    """A fresh graph: one max-normed dense layer, SGD with a fed learning rate."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, (None, IN))
        y = v1.placeholder(tf.float32, (None, OUT))
        rate = v1.placeholder_with_default(0.0, [])
        regularizer = tf1norm.max_norm_regularizer(1.0)
        init = v1.random_normal_initializer(stddev=0.02, seed=1)
        out = v1.layers.dense(
            x, OUT, kernel_regularizer=regularizer, kernel_initializer=init, name="h"
        )
        loss = tf.reduce_mean((out - y) ** 2)
        saved = projections.GUARDED_FROM_SIZE
        projections.GUARDED_FROM_SIZE = saved if guarded else 1 << 62
        try:
            train_op = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(rate))
        finally:
            projections.GUARDED_FROM_SIZE = saved
        kernel = [v for v in v1.trainable_variables() if v.op.name == "h/kernel"][0]
        session = v1.Session(graph=graph)
        session.run(v1.global_variables_initializer())
    rng = np.random.default_rng(0)
    feed = {
        x: rng.random((50, IN)).astype(np.float32),
        y: (rng.random((50, OUT)) * 40 * (np.arange(OUT) % 2)).astype(np.float32),
    }
    return session, train_op, kernel, rate, feed


def _assigns_run(session, train_op, feed):
    """Names of the ``AssignVariableOp`` nodes one step ran (dead branches do not run)."""
    metadata = v1.RunMetadata()
    options = v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE)
    session.run(train_op, feed, options=options, run_metadata=metadata)
    return [
        node.node_name
        for device in metadata.step_stats.dev_stats
        for node in device.node_stats
        if "AssignVariableOp(" in node.timeline_label and "max_norm" in node.node_name
    ]


@pytest.fixture(scope="module")
def guarded():
    session, *rest = _model()
    yield (session, *rest)
    session.close()


def test_the_guard_applies_to_the_test_kernel():
    with tf.Graph().as_default():
        assert projections.max_norm_guarded(tf.zeros([IN, OUT]), 1.0) is not None
        assert projections.max_norm_guarded(tf.zeros([IN, 8]), 1.0) is None  # small: one call
        assert projections.max_norm_guarded(tf.zeros([IN, OUT]), tf.Variable(1.0)) is None


def test_no_write_when_no_unit_is_over(guarded):
    session, train_op, kernel, rate, feed = guarded
    before = session.run(kernel)
    assert np.linalg.norm(before.astype(np.float64), axis=0).max() < 1.0
    feed = {**feed, rate: 0.0}
    assert _assigns_run(session, train_op, feed) == []
    np.testing.assert_array_equal(session.run(kernel), before)


def test_a_step_that_pushes_units_over_writes_the_capped_kernel(guarded):
    session, train_op, kernel, rate, feed = guarded
    feed = {**feed, rate: 2.0}
    assert len(_assigns_run(session, train_op, feed)) == 1
    norms = np.linalg.norm(session.run(kernel).astype(np.float64), axis=0)
    assert norms.max() <= 1.0 + 1e-6
    assert (norms > 1.0 - 1e-6).sum() >= OUT // 4  # the cap is active on many units


def test_guarded_and_unguarded_steps_give_the_same_weights():
    """Units under the cap bit for bit, capped units to float32 round-off."""
    results = []
    for guarded in (True, False):
        session, train_op, kernel, rate, feed = _model(guarded)
        with session:
            session.run(train_op, {**feed, rate: 2.0})
            results.append(session.run(kernel))
    with_guard, without = results
    norms = np.linalg.norm(without.astype(np.float64), axis=0)
    under = norms < 1.0 - 1e-6
    assert 0 < under.sum() < OUT
    np.testing.assert_array_equal(with_guard[:, under], without[:, under])
    np.testing.assert_allclose(with_guard, without, rtol=2e-6, atol=1e-8)


def test_a_nan_unit_counts_as_over(graph):
    value = np.full((IN, OUT), 0.01, np.float32)
    value[3, 7] = np.nan
    over, project = projections.max_norm_guarded(tf.constant(value), 1.0)
    with v1.Session() as session:
        flag, projected = session.run([over, project()])
    assert flag
    expected = projections.max_norm_assignment(tf.constant(value), 1.0)
    with v1.Session() as session:
        np.testing.assert_array_equal(projected, session.run(expected))
