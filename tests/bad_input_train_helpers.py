"""Helpers of the bad-input training cases (tests/test_bad_input_train*.py and
test_bad_input_checkpoints.py): a tiny model, optimizers, files and transforms that misbehave."""

import os

import tf1norm
from tf1norm._src.compat import tf, v1


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
