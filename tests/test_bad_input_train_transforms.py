"""Bad input to the gradient transforms (clipping, multipliers, noise, projections)
and to weight decay (decoupled, SGD step, L2 on gradients, adamw) is answered at
graph construction with a message naming the argument, the value and the fix. The
train op's own cases are in ``test_bad_input_train``.

``CASES`` is graded by ``tools/audit_bad_input.py``; every case must be "clear".
"""

import math
import pathlib
import sys

import pytest

import tf1norm
from tf1norm._src.compat import tf
from bad_input_train_helpers import _model, _train, _train_with, _RateHidden

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
from audit_bad_input import Case, grade  # noqa: E402

V, E = ValueError, TypeError


CASES = [
    # gradient transforms
    Case(
        "clip_by_value",
        lambda: tf1norm.clip_by_value(1.0, -1.0),
        V,
        ["clip_by_value", "`clip_value_min`", "`clip_value_max`", "1.0", "-1.0"],
    ),
    Case(
        "clip_by_value",
        lambda: tf1norm.clip_by_value(math.nan, 1.0),
        V,
        ["`clip_value_min`", "finite", "nan"],
    ),
    Case("clip_by_value", lambda: tf1norm.clip_by_value("a", 1.0), E, ["`clip_value_min`", "'a'"]),
    Case(
        "clip_by_value",
        lambda: tf1norm.clip_by_value(-1.0, tf.ones([2])),
        V,
        ["`clip_value_max`", "scalar", "(2,)"],
    ),
    Case(
        "clip_by_norm", lambda: tf1norm.clip_by_norm(0.0), V, ["clip_by_norm", "`clip_norm`", "0.0"]
    ),
    Case("clip_by_norm", lambda: tf1norm.clip_by_norm(-1.0), V, ["`clip_norm`", "-1.0"]),
    Case("clip_by_norm", lambda: tf1norm.clip_by_norm(math.inf), V, ["`clip_norm`", "inf"]),
    Case(
        "clip_by_global_norm",
        lambda: tf1norm.clip_by_global_norm(tf.constant(-1.0)),
        V,
        ["clip_by_global_norm", "`clip_norm`", "-1.0"],
    ),
    Case(
        "clip_by_global_norm",
        lambda: tf1norm.clip_by_global_norm([1.0, 2.0]),
        V,
        ["clip_by_global_norm", "`clip_norm`", "scalar"],
    ),
    Case(
        "multiply_gradients",
        lambda: tf1norm.multiply_gradients({}),
        E,
        ["multiply_gradients", "`multipliers`", "{}"],
    ),
    Case(
        "multiply_gradients",
        lambda: tf1norm.multiply_gradients({"w": math.nan}),
        V,
        ["multiply_gradients", "'w'", "nan"],
    ),
    Case(
        "multiply_gradients",
        lambda: tf1norm.multiply_gradients({"w": math.inf}),
        V,
        ["multiply_gradients", "'w'", "inf"],
    ),
    Case(
        "multiply_gradients",
        lambda: tf1norm.multiply_gradients({"w[": 0.1}),
        V,
        ["multiply_gradients", "`multipliers`", "regular expression", "'w['"],
    ),
    Case(
        "multiply_gradients",
        lambda: tf1norm.multiply_gradients({3: 0.1}),
        E,
        ["multiply_gradients", "`multipliers`", "3"],
    ),
    Case(
        "multiply_gradients",
        lambda: tf1norm.multiply_gradients({"w": "x"}),
        E,
        ["multiply_gradients", "'w'", "'x'"],
    ),
    Case(
        ("multiply_gradients", "create_train_op"),
        lambda: _train([tf1norm.multiply_gradients({"nothing": 0.1})]),
        V,
        ["multiply_gradients", "'nothing'", "matches no trained variable"],
    ),
    Case(
        "add_gradient_noise",
        lambda: tf1norm.add_gradient_noise(0.0),
        V,
        ["add_gradient_noise", "`scale`", "0.0"],
    ),
    Case(
        "add_gradient_noise",
        lambda: tf1norm.add_gradient_noise(1.0, decay=-1.0),
        V,
        ["add_gradient_noise", "`decay`", "-1.0"],
    ),
    Case(
        "add_gradient_noise",
        lambda: tf1norm.add_gradient_noise(1.0, seed="x"),
        E,
        ["add_gradient_noise", "`seed`", "'x'"],
    ),
    Case(
        "project_constraints",
        lambda: tf1norm.project_constraints(3),
        E,
        ["project_constraints", "`collection`", "3"],
    ),
    Case(
        "project_constraints",
        lambda: tf1norm.project_constraints(""),
        V,
        ["project_constraints", "`collection`", "''"],
    ),
    # weight decay
    Case(
        "add_decoupled_weight_decay",
        lambda: tf1norm.add_decoupled_weight_decay(-1.0),
        V,
        ["add_decoupled_weight_decay", "`rate`", "-1.0"],
    ),
    Case(
        "add_decoupled_weight_decay",
        lambda: tf1norm.add_decoupled_weight_decay(math.nan),
        V,
        ["`rate`", "nan"],
    ),
    Case(
        "add_decoupled_weight_decay",
        lambda: tf1norm.add_decoupled_weight_decay(0.1, learning_rate=-1.0),
        V,
        ["add_decoupled_weight_decay", "`learning_rate`", "-1.0"],
    ),
    Case(
        "add_decoupled_weight_decay",
        lambda: tf1norm.add_decoupled_weight_decay(0.1, learning_rate=tf.constant(-0.5)),
        V,
        ["add_decoupled_weight_decay", "`learning_rate`", "-0.5"],
    ),
    Case(
        "add_decoupled_weight_decay",
        lambda: tf1norm.add_decoupled_weight_decay(0.1, decay_var_list="w"),
        E,
        ["add_decoupled_weight_decay", "`decay_var_list`", "'w'"],
    ),
    Case(
        "add_decoupled_weight_decay",
        lambda: _train_with(
            lambda w: [tf1norm.add_decoupled_weight_decay(0.1, decay_var_list=[tf.identity(w)])]
        ),
        E,
        ["`decay_var_list`", "Identity", "pass the variable"],
    ),
    Case(
        "add_decoupled_weight_decay",
        lambda: _train_with(lambda w: [tf1norm.add_decoupled_weight_decay(0.1, decay_var_list=w)]),
        E,
        ["`decay_var_list`", "list of tf.Variable"],
    ),
    Case(
        "add_decoupled_weight_decay",
        lambda: tf1norm.add_decoupled_weight_decay(0.1, exclude="(["),
        V,
        ["add_decoupled_weight_decay", "`exclude`", "'(['"],
    ),
    Case(
        "sgd_decay_step",
        lambda: tf1norm.sgd_decay_step(learning_rate=-1.0),
        V,
        ["sgd_decay_step", "`learning_rate`", "-1.0"],
    ),
    Case(
        "sgd_decay_step",
        lambda: tf1norm.sgd_decay_step(learning_rate=tf.constant(-2.0)),
        V,
        ["sgd_decay_step", "`learning_rate`", "-2.0"],
    ),
    Case(
        "sgd_decay_step",
        lambda: tf1norm.sgd_decay_step(collection=3),
        E,
        ["sgd_decay_step", "`collection`", "3"],
    ),
    Case(
        ("sgd_decay_step", "create_train_op"),
        lambda: _train([tf1norm.sgd_decay_step("nothing_here")]),
        V,
        ["sgd_decay_step", "'nothing_here'", "empty"],
    ),
    Case(
        "add_l2_to_gradients",
        lambda: _train_with(lambda w: [tf1norm.add_l2_to_gradients({tf.identity(w): 0.1})]),
        E,
        ["add_l2_to_gradients", "`rates`", "Identity"],
    ),
    Case(
        "add_l2_to_gradients",
        lambda: _train_with(lambda w: [tf1norm.add_l2_to_gradients({w: -1.0})]),
        V,
        ["add_l2_to_gradients", "`rates`", "-1.0"],
    ),
    Case(
        "add_l2_to_gradients",
        lambda: tf1norm.add_l2_to_gradients(0.1),
        E,
        ["add_l2_to_gradients", "`rates`", "0.1"],
    ),
    Case(
        ("add_decoupled_weight_decay", "create_train_op"),
        lambda: tf1norm.create_train_op(
            _model()[0], _RateHidden(), transforms=[tf1norm.add_decoupled_weight_decay(0.1)]
        ),
        V,
        ["add_decoupled_weight_decay", "learning rate", "_RateHidden", "learning_rate=0.001"],
    ),
    Case("adamw", lambda: tf1norm.adamw(weight_decay=-1.0), V, ["adamw", "`weight_decay`", "-1.0"]),
    Case(
        "adamw",
        lambda: tf1norm.adamw(learning_rate=-1e-3),
        V,
        ["adamw", "`learning_rate`", "-0.001"],
    ),
    Case("adamw", lambda: tf1norm.adamw(beta1=1.0), V, ["adamw", "`beta1`", "1.0"]),
    Case("adamw", lambda: tf1norm.adamw(epsilon=0.0), V, ["adamw", "`epsilon`", "0.0"]),
    Case("adamw", lambda: tf1norm.adamw(exclude=3), V, ["adamw", "`exclude`", "3"]),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.apis[0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_answered_clearly(case):
    verdict, detail = grade(case)
    assert verdict == "clear", detail
