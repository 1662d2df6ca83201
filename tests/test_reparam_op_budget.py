"""Op budget of weight norm and spectral norm per layer in the train op (issue 21).

A training step runs the ops its train op depends on. Each test builds the
same small conv net with one and with two layers, in fresh graphs, and
counts the ancestors of ``tf1norm.create_train_op``'s op (inputs and control
inputs): the difference is the cost of one layer. The reparameterized layer
may cost at most ``BUDGET`` ops more than the plain one (which already holds
the conv, its gradients, the update and the default checks), and runs
exactly one ``tf.cond`` (the forward range guard): no cond is differentiated.
An extra autodiff op per kernel, or a gradient ``If``, fails here before it
shows in ``tools/bench_model_zoo.py --step``.
"""

import collections
import contextlib
import pathlib
import sys

import pytest
import tf_slim as slim

import tf1norm
from tf1norm._src.compat import tf, v1

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))

import model_zoo  # noqa: E402  (the op-count helper the zoo benchmark uses)

# extra ops per conv layer over the plain layer, measured when the budget was set
# (weight norm 57 incl. the gain's update and checks and two MatMul reductions; spectral
# norm 69 incl. the u refresh)
BUDGET = {"weight_norm": 57, "spectral_norm": 69}
SCOPES = {"weight_norm": {"weight_norm": True}, "spectral_norm": {"spectral_norm": True}}


def _op_types(scope, layers):
    """Op types (a Counter) the train op of a ``layers``-deep conv net depends on."""
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, [2, 8, 8, 3])
        labels = v1.placeholder(tf.int32, [2])
        net = images
        context = tf1norm.slim_scope(**SCOPES[scope]) if scope else contextlib.nullcontext()
        with context:
            for i in range(layers):
                net = slim.conv2d(net, 4, [3, 3], scope=f"conv{i}")
        loss = v1.losses.sparse_softmax_cross_entropy(labels, tf.reduce_mean(net, [1, 2]))
        train_op = tf1norm.create_train_op(loss, v1.train.MomentumOptimizer(0.1, 0.9))
        return collections.Counter(op.type for op in model_zoo.ancestor_ops(train_op))


def _per_layer(scope):
    one, two = _op_types(scope, 1), _op_types(scope, 2)
    return two - one, sum(two.values()) - sum(one.values())


@pytest.mark.parametrize("scope", sorted(BUDGET))
def test_ops_per_layer_within_budget(scope):
    _, plain = _per_layer(None)
    types, total = _per_layer(scope)
    assert total - plain <= BUDGET[scope], (
        f"{scope} adds {total - plain} ops per layer (budget {BUDGET[scope]}): {types}"
    )
    assert total - plain > 0  # the count sees the reparameterization at all


@pytest.mark.parametrize("scope", sorted(BUDGET))
def test_one_forward_cond_per_layer_and_none_in_the_gradient(scope):
    types, _ = _per_layer(scope)
    assert types["StatelessIf"] + types["If"] == 1, types
