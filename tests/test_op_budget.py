"""Op budget per variable of the default train op: a change that adds ops fails here.

The count is what a session dispatches per step (``tools/op_counts.py``): the
ancestors of the train op plus the nodes of the functions they call, every
branch of a ``tf.cond`` included (the branch not taken runs as dead tensors),
a never-inlined function as one node. The slope between a 3- and a 6-layer
MLP (each layer a kernel and a bias) is the cost per layer of each feature,
against the same step without it. Budgets are the counts of issue 21's
rewrite; before it the checks cost 12 ops per layer, max-norm 260 per kernel,
decay 12 per layer.
"""

import pathlib
import sys

import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))

import op_counts  # noqa: E402

# ops per dense layer (kernel + bias) a feature adds to the step
BUDGET = {"checks": 6, "max_norm": 23, "decay": 8, "clip_checks": 2}


def _step(depth, max_norm=False, checks=True, chain=()):
    """A fresh graph with a ``depth``-layer MLP; its train op."""
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, (None, 20))
        y = v1.placeholder(tf.int64, (None,))
        regularizer = tf1norm.max_norm_regularizer(1.0) if max_norm else None
        net = x
        for i in range(depth):
            net = v1.layers.dense(net, 16, tf.nn.relu, kernel_regularizer=regularizer, name=f"h{i}")
        logits = v1.layers.dense(net, 10, name="out")
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
        optimizer = v1.train.MomentumOptimizer(0.01, 0.9)
        return tf1norm.create_train_op(
            loss, optimizer, transforms=list(chain), check_numerics=checks
        )


def _slope(**kwargs):
    return op_counts.slope_per_variable(lambda depth: _step(depth, **kwargs))


@pytest.fixture(scope="module")
def unchecked():
    return _slope(checks=False)


def test_the_default_check_costs_at_most_its_budget_per_layer(unchecked):
    assert _slope() - unchecked <= BUDGET["checks"]


def test_max_norm_costs_at_most_its_budget_per_kernel(unchecked):
    assert _slope(max_norm=True, checks=False) - unchecked <= BUDGET["max_norm"]


def test_decoupled_decay_costs_at_most_its_budget_per_layer(unchecked):
    chain = [tf1norm.add_decoupled_weight_decay(1e-2)]
    assert _slope(checks=False, chain=chain) - unchecked <= BUDGET["decay"]


def test_behind_clip_by_global_norm_the_check_is_almost_free(unchecked):
    """The global norm decides: one identity per gradient, no reduction."""
    chain = [tf1norm.clip_by_global_norm(5.0)]
    clipped = _slope(checks=False, chain=chain)
    assert _slope(chain=chain) - clipped <= BUDGET["clip_checks"]


def test_the_count_sees_function_bodies_and_dead_branches(graph):
    """A cond's untaken branch counts; a never-inlined call is one node."""
    flag = v1.placeholder(tf.bool, [])
    value = tf.constant(1.0)
    plain = tf.cond(flag, lambda: value + 1.0, lambda: value * 2.0 - 3.0)
    assert op_counts.step_op_count(plain) >= 6
    cold = tf.function(
        lambda: value * 2.0 - 3.0 + 4.0,
        autograph=False,
        experimental_attributes={"_noinline": True},
    )
    guarded = tf.cond(flag, lambda: value + 1.0, cold)
    assert op_counts.step_op_count(guarded) < op_counts.step_op_count(plain) + 2


def test_a_large_kernel_is_projected_by_one_compiled_call(graph):
    """From ``COMPILED_FROM_SIZE`` entries the projection is one XLA launch, not ~23 ops."""
    from tf1norm._math import projections

    rows = projections.COMPILED_FROM_SIZE // 256
    variable = tf.Variable(tf.ones([rows, 256]))
    small = tf.Variable(tf.ones([rows // 4, 256]))
    large_count = op_counts.step_op_count(
        variable.assign(projections.max_norm_assignment(variable.read_value(), 1.0))
    )
    small_count = op_counts.step_op_count(
        small.assign(projections.max_norm_assignment(small.read_value(), 1.0))
    )
    assert large_count <= 6 < small_count
