"""Bad input to the training API (create_train_op, transforms, weight decay,
cuda-convnet layer params, batch norm, slim_scope, checks, hooks, summaries)
is answered at graph construction, or, for values that only
exist at run time, by an assertion that fails the step with the same message.

``CASES`` is graded by ``tools/audit_bad_input.py``; every case must be "clear".
"""

import math
import os
import pathlib
import sys

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
from audit_bad_input import Case, grade  # noqa: E402

V, E = ValueError, TypeError


def _model():
    w = v1.get_variable("w", [3, 2], initializer=tf.ones_initializer())
    return tf.reduce_sum(w * w), w


def _sgd():
    return v1.train.GradientDescentOptimizer(0.1)


def _train(transforms=(), **kwargs):
    loss, _ = _model()
    return tf1norm.create_train_op(loss, _sgd(), transforms=transforms, **kwargs)


def _train_with(make_transforms, **kwargs):
    loss, w = _model()
    return tf1norm.create_train_op(loss, _sgd(), transforms=make_transforms(w), **kwargs)


def _pvm(hyperparameters):
    _, w = _model()
    return tf1norm.PerVariableMomentumOptimizer(hyperparameters(w))


def _layer_params(text, tmp_name="layers.cfg", variables=None):
    v1.get_variable("fc/weights", [3, 2])
    v1.get_variable("fc/biases", [2])
    path = os.path.join(_scratch(), tmp_name)
    with open(path, "wb") as handle:
        handle.write(text if isinstance(text, bytes) else text.encode())
    return tf1norm.layer_params(path, variables=variables)


def _scratch():
    import tempfile

    return tempfile.mkdtemp(prefix="tf1norm_bad_input_")


GOOD = "[fc]\nepsW=0.01\nepsB=0.02\nmomW=0.9\nmomB=0.9\nwc=0.004\n"


def _nested_slim_scopes():
    with tf1norm.slim_scope(max_norm=1.0):
        with tf1norm.slim_scope(max_norm=2.0):
            return v1.layers.dense(tf.ones([1, 3]), 2)


def _summary_hook(**kwargs):
    arguments = dict(summary_op=tf.no_op(), train_op=tf.no_op(), output_dir="/tmp/x")
    arguments.update(kwargs)
    return tf1norm.ChainSummaryHook(**arguments)


def _train_on(variables_of):
    loss, w = _model()
    return tf1norm.create_train_op(loss, _sgd(), variables=variables_of(w))


def _int_variable():
    return v1.get_variable("step", [], tf.int32, initializer=tf.zeros_initializer())


class _ReturnsNone(tf1norm.Transform):
    def pre_apply(self, grads_and_vars, context):
        return None


class _ReturnsAnOp(tf1norm.Transform):
    def pre_apply(self, grads_and_vars, context):
        return tf.no_op()


class _PostApplyReturnsAnOp(tf1norm.Transform):
    def post_apply(self, variables, context):
        return tf.no_op()


class _RateHidden(v1.train.Optimizer):
    """A v1 optimizer that keeps its learning rate where tf1norm cannot find it."""

    def __init__(self):
        super().__init__(use_locking=False, name="RateHidden")


def _tf2_step(loss_of):
    w = tf.Variable([1.0, 2.0])
    return tf1norm.make_train_step(_sgd())(lambda: loss_of(w), [w])


class _KerasLike:
    """Stands in for a Keras model: attach_transforms checks its arguments first."""

    def train_step(self, data):
        return data


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
    # cuda-convnet
    Case(
        "PerVariableMomentumOptimizer",
        lambda: _pvm(lambda w: {w: (-0.1, 0.9)}),
        V,
        ["PerVariableMomentumOptimizer", "`learning_rate`", "-0.1"],
    ),
    Case(
        "PerVariableMomentumOptimizer",
        lambda: _pvm(lambda w: {w: (0.1, 1.5)}),
        V,
        ["PerVariableMomentumOptimizer", "`momentum`", "[0, 1)", "1.5"],
    ),
    Case(
        "PerVariableMomentumOptimizer",
        lambda: _pvm(lambda w: {"w": (0.1, 0.9)}),
        E,
        ["PerVariableMomentumOptimizer", "`hyperparameters`", "'w'"],
    ),
    Case(
        "PerVariableMomentumOptimizer",
        lambda: _pvm(lambda w: {w: 0.1}),
        E,
        ["PerVariableMomentumOptimizer", "`hyperparameters`", "0.1"],
    ),
    Case(
        "PerVariableMomentumOptimizer",
        lambda: _pvm(lambda w: 3),
        E,
        ["PerVariableMomentumOptimizer", "`hyperparameters`", "3"],
    ),
    Case(
        "layer_params",
        lambda: tf1norm.layer_params("/nonexistent/layers.cfg"),
        V,
        ["layer_params", "`path_or_dict`", "/nonexistent/layers.cfg"],
    ),
    Case(
        "layer_params",
        lambda: tf1norm.layer_params(_scratch()),
        V,
        ["layer_params", "`path_or_dict`", "IsADirectoryError", "tf1norm_bad_input_"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(b"\xff\xfe\x00\x81", "binary.cfg"),
        V,
        ["layer_params", "binary.cfg", "UnicodeDecodeError"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params("epsW=0.1\n", "headless.cfg"),
        V,
        ["layer_params", "headless.cfg", "no section headers"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD + GOOD, "twice.cfg"),
        V,
        ["layer_params", "twice.cfg", "line 7", "'fc' already exists"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("momW=0.9", "momW=1.5")),
        V,
        ["layer_params [fc]", "`momW`", "[0, 1)", "1.5"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("epsW=0.01", "epsW=1e300")),
        V,
        ["layer_params [fc]", "`epsW`", "1e+300"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("wc=0.004", "wc=-1")),
        V,
        ["layer_params [fc]", "`wc`", "-1.0"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("epsB=0.02", "epsB=nan")),
        V,
        ["layer_params [fc]", "`epsB`", "nan"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("momB=0.9\n", "")),
        V,
        ["layer_params", "[fc]", "momB"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("epsW=0.01", "epsW=0.01,0.02")),
        V,
        ["layer_params", "[fc]", "epsW", "'0.01,0.02'"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("[fc]", "[conv]")),
        V,
        ["layer_params", "fc/weights", "no layer section", "['conv']"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD + GOOD.replace("[fc]", "[fc2]")),
        V,
        ["layer_params", "['fc2']", "match no trained variable"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD, variables=["fc/weights"]),
        E,
        ["layer_params", "`variables`", "'fc/weights'"],
    ),
    Case(
        "layer_params",
        lambda: tf1norm.layer_params(3),
        E,
        ["layer_params", "`path_or_dict`", "int"],
    ),
    Case(
        "layer_params",
        lambda: tf1norm.layer_params({"fc": 0.1}),
        E,
        ["layer_params", "`path_or_dict`", "'fc'", "0.1"],
    ),
    Case(
        "LayerParams",
        lambda: tf1norm.LayerParams({"fc": {}}, ["w"]),
        E,
        ["LayerParams", "`variables`", "'w'"],
    ),
    # batch norm
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([2, 3], tf.int32)),
        E,
        ["batch_norm", "`x`", "int32"],
    ),
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([3])),
        V,
        ["batch_norm", "`x`", "rank", "1"],
    ),
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([2, 3]), training="no"),
        E,
        ["batch_norm", "`training`", "'no'"],
    ),
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([2, 3]), momentum=1.5),
        V,
        ["batch_norm", "`momentum`", "1.5"],
    ),
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([2, 3]), epsilon=0.0),
        V,
        ["batch_norm", "`epsilon`", "0.0"],
    ),
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([2, 3, 4]), axis=0),
        V,
        ["batch_norm", "`axis`", "got 0"],
    ),
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([0, 3]), training=True),
        V,
        ["batch_norm", "`x`", "empty batch", "(0, 3)", "training=False"],
    ),
    # slim_scope
    Case("slim_scope", _nested_slim_scopes, V, ["slim_scope", "`max_norm`=2.0", "max_norm=1.0"]),
    Case(
        "slim_scope",
        lambda: tf1norm.slim_scope(weight_norm=True, spectral_norm=True).__enter__(),
        V,
        ["slim_scope", "`weight_norm`", "`spectral_norm`"],
    ),
    Case(
        "slim_scope",
        lambda: tf1norm.slim_scope().__enter__(),
        V,
        ["slim_scope", "nothing to apply"],
    ),
    Case(
        "slim_scope",
        lambda: tf1norm.slim_scope(max_norm=-1.0).__enter__(),
        V,
        ["slim_scope", "`max_norm`", "-1.0"],
    ),
    Case(
        "slim_scope",
        lambda: tf1norm.slim_scope(l2=-1.0).__enter__(),
        V,
        ["slim_scope", "`l2`", ">= 0", "-1.0"],
    ),
    Case(
        "slim_scope",
        lambda: tf1norm.slim_scope(l2=0.1, name_filter="([").__enter__(),
        V,
        ["slim_scope", "`name_filter`", "'(['"],
    ),
    Case(
        "slim_scope",
        lambda: tf1norm.slim_scope(spectral_norm={"bogus": 1}).__enter__(),
        E,
        ["slim_scope", "`spectral_norm`", "bogus"],
    ),
    # checks, hooks, summaries
    Case(
        "check_train_op",
        lambda: tf1norm.check_train_op(tf.no_op(), "max_norm"),
        E,
        ["check_train_op", "`collections_to_check`", "'max_norm'"],
    ),
    Case(
        "check_train_op",
        lambda: tf1norm.check_train_op(None),
        E,
        ["check_train_op", "`train_op`", "None"],
    ),
    Case(
        "check_train_op",
        lambda: tf1norm.check_train_op("train_op"),
        E,
        ["check_train_op", "`train_op`", "'train_op'"],
    ),
    Case(
        "check_train_op",
        lambda: tf1norm.check_train_op(tf.no_op(), [3]),
        E,
        ["check_train_op", "`collections_to_check`", "3"],
    ),
    Case(
        "ConstraintHook",
        lambda: tf1norm.ConstraintHook(3),
        E,
        ["ConstraintHook", "`collection`", "3"],
    ),
    Case(
        "ConstraintHook",
        lambda: tf1norm.ConstraintHook("nothing").begin(),
        V,
        ["ConstraintHook", "'nothing'", "empty"],
    ),
    Case(
        "summarize_chain",
        lambda: tf1norm.summarize_chain(histograms="yes"),
        E,
        ["summarize_chain", "`histograms`", "'yes'"],
    ),
    Case(
        "summarize_chain",
        lambda: tf1norm.summarize_chain(collections="summaries"),
        E,
        ["summarize_chain", "`collections`", "'summaries'"],
    ),
    Case(
        "ChainSummaryHook",
        lambda: _summary_hook(every_n_steps=0),
        V,
        ["ChainSummaryHook", "`every_n_steps`", "0"],
    ),
    Case(
        "ChainSummaryHook",
        lambda: _summary_hook(output_dir=3),
        E,
        ["ChainSummaryHook", "`output_dir`", "3"],
    ),
    Case(
        "ChainSummaryHook",
        lambda: _summary_hook(train_op="step"),
        E,
        ["ChainSummaryHook", "`train_op`", "'step'"],
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
