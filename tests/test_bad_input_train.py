"""Bad input to the train op (create_train_op, the TF2 step, attach_transforms) is
answered at graph construction, or, for values that only exist at run time, by an
assertion that fails the step with the same message. The gradient transforms' and
weight decay's cases are in ``test_bad_input_train_transforms``; the layers' and
hooks' (cuda-convnet, batch norm, slim_scope, checks, hooks, summaries) in
``test_bad_input_train_layers``.

``CASES`` is graded by ``tools/audit_bad_input.py``; every case must be "clear".
"""

import pathlib
import sys

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1
from bad_input_train_helpers import (
    _model,
    _sgd,
    _train,
    _train_on,
    _int_variable,
    _ReturnsNone,
    _ReturnsAnOp,
    _PostApplyReturnsAnOp,
    _tf2_step,
    _KerasLike,
)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
from audit_bad_input import Case, grade  # noqa: E402

V, E = ValueError, TypeError


CASES = [
    # create_train_op
    Case(
        "create_train_op",
        lambda: tf1norm.create_train_op(tf.constant(1), _sgd()),
        E,
        ["create_train_op", "`loss`", "int32"],
    ),
    Case(
        "create_train_op",
        lambda: (_model(), tf1norm.create_train_op(tf.ones([3]), _sgd())),
        V,
        ["create_train_op", "`loss`", "scalar", "(3,)"],
    ),
    Case(
        "create_train_op",
        lambda: tf1norm.create_train_op("loss", _sgd()),
        E,
        ["create_train_op", "`loss`", "'loss'"],
    ),
    Case(
        "create_train_op",
        lambda: tf1norm.create_train_op(_model()[0], "sgd"),
        E,
        ["create_train_op", "`optimizer`", "str"],
    ),
    Case("create_train_op", lambda: _train(global_step=0), E, ["`global_step`", "got 0"]),
    Case(
        "create_train_op",
        lambda: _train(global_step=tf.constant(0, tf.int64)),
        E,
        ["`global_step`", "Tensor"],
    ),
    Case(
        "create_train_op",
        lambda: _train(global_step=v1.Variable(0.0)),
        E,
        ["`global_step`", "float32"],
    ),
    Case(
        ("create_train_op", "adamw"),
        lambda: _train(global_step=tf1norm.adamw()[1]),
        E,
        ["`global_step`", "transforms="],
    ),
    Case(
        "create_train_op",
        lambda: _train(transforms=None),
        E,
        ["create_train_op", "`transforms`", "None"],
    ),
    Case(
        ("create_train_op", "clip_by_norm"),
        lambda: _train(transforms=tf1norm.clip_by_norm(1.0)),
        E,
        ["`transforms`", "list", "one Transform"],
    ),
    Case("create_train_op", lambda: _train(transforms=[1.0]), E, ["`transforms`", "1.0"]),
    Case(
        ("create_train_op", "add_decoupled_weight_decay"),
        lambda: _train([tf1norm.add_decoupled_weight_decay(0.1)] * 2),
        V,
        ["`transforms`", "same object more than once", "_DecoupledWeightDecay"],
    ),
    Case(
        "create_train_op",
        lambda: _train(summarize_gradients="yes"),
        E,
        ["`summarize_gradients`", "'yes'"],
    ),
    Case(
        "create_train_op",
        lambda: _train(variables=[], variables_to_train=[]),
        V,
        ["`variables`", "`variables_to_train`"],
    ),
    Case(
        "create_train_op",
        lambda: (
            _model(),
            tf1norm.create_train_op(v1.get_variable("x", [], trainable=False) * 2.0, _sgd()),
        ),
        V,
        ["create_train_op", "no gradient", "'w'"],
    ),
    Case("create_train_op", lambda: _train(variables="w"), E, ["`variables`", "'w'"]),
    Case(
        "create_train_op",
        lambda: _train(variables=[]),
        V,
        ["create_train_op", "`variables`", "is empty", "got []", "variables=None"],
    ),
    Case(
        "create_train_op",
        lambda: _train(variables_to_train=[]),
        V,
        ["create_train_op", "`variables_to_train`", "is empty", "variables_to_train=None"],
    ),
    Case(
        "create_train_op",
        lambda: _train_on(lambda w: [w, _int_variable()]),
        E,
        ["create_train_op", "`variables`", "floating-point", "step (int32)", "Leave"],
    ),
    Case(
        "create_train_op",
        lambda: tf1norm.create_train_op(_model()[0], v1.train.GradientDescentOptimizer),
        E,
        [
            "create_train_op",
            "`optimizer`",
            "not its class",
            "GradientDescentOptimizer(",
            "Create one",
        ],
    ),
    Case(
        "create_train_op",
        lambda: _train([_ReturnsNone()]),
        E,
        [
            "create_train_op",
            "`transforms`",
            "_ReturnsNone()",
            "pre_apply",
            "got None",
            "Return grads_and_vars",
        ],
    ),
    Case(
        "create_train_op",
        lambda: _train([_ReturnsAnOp()]),
        E,
        [
            "create_train_op",
            "`transforms`",
            "_ReturnsAnOp()",
            "pre_apply",
            "NoOp",
            "Return grads_and_vars",
        ],
    ),
    Case(
        "create_train_op",
        lambda: _train([_PostApplyReturnsAnOp()]),
        E,
        ["create_train_op", "`transforms`", "post_apply", "NoOp", "Return [op]"],
    ),
    Case("create_train_op", lambda: _train(update_ops=3), E, ["`update_ops`", "3"]),
    # the TF2 step
    Case(
        "make_train_step",
        lambda: tf1norm.make_train_step("sgd"),
        E,
        ["make_train_step", "`optimizer`", "'sgd'"],
    ),
    Case(
        "make_train_step",
        lambda: tf1norm.make_train_step(_sgd(), None),
        E,
        ["make_train_step", "`transforms`", "None"],
    ),
    Case(
        "make_train_step",
        lambda: tf1norm.make_train_step(_sgd(), [tf1norm.clip_by_norm] * 1),
        E,
        ["make_train_step", "`transforms`", "function clip_by_norm"],
    ),
    Case(
        ("make_train_step", "clip_by_norm"),
        lambda: tf1norm.make_train_step(_sgd(), [tf1norm.clip_by_norm(1.0)] * 2),
        V,
        ["make_train_step", "`transforms`", "more than once"],
    ),
    Case(
        "TrainStep",
        lambda: tf1norm.make_train_step(_sgd())("loss"),
        E,
        ["TrainStep", "`loss_fn`", "'loss'"],
    ),
    Case(
        "make_train_step",
        lambda: tf1norm.make_train_step(v1.train.GradientDescentOptimizer),
        E,
        ["make_train_step", "`optimizer`", "not its class", "GradientDescentOptimizer("],
    ),
    Case(
        "TrainStep",
        lambda: _tf2_step(lambda w: w * [1.0, 2.0]),
        V,
        ["TrainStep", "`loss_fn()`", "scalar", "(2,)", "tf.reduce_mean"],
    ),
    Case(
        "TrainStep",
        lambda: _tf2_step(lambda w: tf.constant(3)),
        E,
        ["TrainStep", "`loss_fn()`", "int32", "tf.cast(loss_fn(), tf.float32)"],
    ),
    Case(
        "attach_transforms",
        lambda: tf1norm.attach_transforms("model", []),
        E,
        ["attach_transforms", "`model`", "str"],
    ),
    Case(
        "attach_transforms",
        lambda: tf1norm.attach_transforms(_KerasLike(), None),
        E,
        ["attach_transforms", "`transforms`", "None"],
    ),
    Case(
        "attach_transforms",
        lambda: tf1norm.attach_transforms(_KerasLike(), ["clip"]),
        E,
        ["attach_transforms", "`transforms`", "'clip'"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.apis[0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_answered_clearly(case):
    verdict, detail = grade(case)
    assert verdict == "clear", detail


def test_a_per_example_loss_is_refused_before_the_tf2_step_trains_on_its_sum():
    w = tf.Variable([1.0, 2.0, 3.0, 4.0])
    step = tf1norm.make_train_step(v1.train.GradientDescentOptimizer(0.1))
    with pytest.raises(ValueError, match=r"TrainStep: `loss_fn\(\)` must be a scalar"):
        step(lambda: w * 1.0, [w])
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0, 3.0, 4.0])
    step(lambda: tf.reduce_sum(w), [w])
    np.testing.assert_allclose(w.numpy(), [0.9, 1.9, 2.9, 3.9], rtol=1e-6)


def test_a_tf2_loss_of_unknown_rank_is_checked_when_the_step_runs():
    w = tf.Variable([1.0, 2.0])
    step = tf1norm.make_train_step(v1.train.GradientDescentOptimizer(0.1))

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def train(scale):
        return step(lambda: tf.reduce_sum(w) * scale, [w])

    train(tf.constant(1.0))
    np.testing.assert_allclose(w.numpy(), [0.9, 1.9], rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="TrainStep: `loss_fn\\(\\)` must"):
        train(tf.constant([1.0, 1.0]))
    np.testing.assert_allclose(w.numpy(), [0.9, 1.9], rtol=1e-6)
