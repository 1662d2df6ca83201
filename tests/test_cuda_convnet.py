"""cuda-convnet layer params: a NumPy re-implementation of its update, 10 steps."""

import numpy as np
import pytest
import tf_slim as slim

import tf1norm
from tf1norm._src.compat import tf, v1

LAYERS = """
[conv1]
epsW=0.05
epsB=0.1
momW=0.9
momB=0.5
wc=0.01

[pool1]
pool=max

[fc2]
epsW=0.02
epsB=0.04
momW=0.8
momB=0.0
wc=0
"""


def _net(x):
    net = slim.conv2d(x, 3, [2, 2], activation_fn=tf.tanh, scope="conv1", padding="VALID")
    net = slim.flatten(net)
    return slim.fully_connected(net, 2, activation_fn=None, scope="fc2")


def _numpy_steps(params, grads_fn, table, steps):
    """inc = mom·inc − eps·grad − wc·eps·W ; W += inc (grad of the batch-mean loss)."""
    incs = {name: np.zeros_like(value) for name, value in params.items()}
    for _ in range(steps):
        grads = grads_fn(params)
        for name, value in params.items():
            eps, mom, wc = table[name]
            incs[name] = mom * incs[name] - eps * grads[name] - wc * eps * value
            params[name] = value + incs[name]
    return params


@pytest.fixture
def tiny_problem(rng):
    x = rng.standard_normal((6, 4, 4, 2))
    y = rng.standard_normal((6, 2))
    return x, y


def _build(x, y):
    inputs = tf.constant(x)
    with slim.arg_scope(
        [slim.conv2d, slim.fully_connected],
        weights_initializer=v1.glorot_uniform_initializer(seed=3, dtype=tf.float64),
        biases_initializer=v1.constant_initializer(0.1),
    ):
        out = _net(inputs)
    loss = tf.reduce_mean(tf.reduce_sum(tf.square(out - y), axis=1))  # batch mean
    return loss


def _gradient_function(x, y):
    """Gradients of the same network as a function of NumPy parameters.

    A separate graph over placeholders: TensorFlow only differentiates, the
    update rule under test is the NumPy one.
    """
    graph = tf.Graph()
    with graph.as_default():
        shapes = {
            "conv1/weights": (2, 2, 2, 3),
            "conv1/biases": (3,),
            "fc2/weights": (27, 2),
            "fc2/biases": (2,),
        }
        ph = {name: v1.placeholder(tf.float64, shape) for name, shape in shapes.items()}
        net = tf.tanh(tf.nn.conv2d(x, ph["conv1/weights"], 1, "VALID") + ph["conv1/biases"])
        out = tf.matmul(tf.reshape(net, [len(x), -1]), ph["fc2/weights"]) + ph["fc2/biases"]
        loss = tf.reduce_mean(tf.reduce_sum(tf.square(out - y), axis=1))
        grads = dict(zip(ph, tf.gradients(loss, list(ph.values()))))
    session = v1.Session(graph=graph)
    return lambda values: session.run(grads, {ph[k]: values[k] for k in ph})


def test_layer_params_match_numpy_over_10_steps(sess, tmp_path, tiny_problem):
    path = tmp_path / "layers.cfg"
    path.write_text(LAYERS)
    loss = _build(*tiny_problem)
    params = tf1norm.layer_params(str(path))
    assert params.assignments == {
        "conv1/weights": ("conv1", "W"),
        "conv1/biases": ("conv1", "B"),
        "fc2/weights": ("fc2", "W"),
        "fc2/biases": ("fc2", "B"),
    }
    train_op = params.create_train_op(loss)
    variables = v1.trainable_variables()
    sess.run(v1.global_variables_initializer())
    start = dict(zip([v.op.name for v in variables], sess.run(variables)))
    table = {
        "conv1/weights": (0.05, 0.9, 0.01),
        "conv1/biases": (0.1, 0.5, 0.0),
        "fc2/weights": (0.02, 0.8, 0.0),
        "fc2/biases": (0.04, 0.0, 0.0),
    }
    expected = _numpy_steps(dict(start), _gradient_function(*tiny_problem), table, 10)
    for _ in range(10):
        sess.run(train_op)
    for variable in variables:
        np.testing.assert_allclose(
            sess.run(variable),
            expected[variable.op.name],
            rtol=1e-7,
            atol=1e-12,
            err_msg=variable.op.name,
        )
    assert np.abs(sess.run(variables[0]) - start["conv1/weights"]).max() > 1e-2


def test_dict_input_and_transforms_compose(sess, tiny_problem):
    loss = _build(*tiny_problem)
    sections = {
        "conv1": dict(epsW=0.05, epsB=0.1, momW=0.9, momB=0.5, wc=0.01),
        "fc2": dict(epsW=0.02, epsB=0.04, momW=0.8, momB=0.0, wc=0),
    }
    train_op = tf1norm.layer_params(sections).create_train_op(
        loss, transforms=[tf1norm.clip_by_global_norm(1e-3)]
    )
    sess.run(v1.global_variables_initializer())
    before = sess.run(v1.trainable_variables())
    sess.run(train_op)
    moved = [np.abs(a - b).max() for a, b in zip(before, sess.run(v1.trainable_variables()))]
    assert 0 < max(moved) <= 0.1 * 1e-3 * 1.0001 + 0.01 * 0.05 * np.abs(before[0]).max()


@pytest.mark.parametrize(
    "sections,fragment",
    [
        ({"conv1": dict(epsW=0.1, epsB=0.1, momW=0.9, momB=0.9)}, "lacks ['wc']"),
        (
            {
                "conv1": dict(epsW=0.1, epsB=0.1, momW=0.9, momB=0.9, wc="0.1,0.2"),
                "fc2": dict(epsW=0.1, epsB=0.1, momW=0.9, momB=0.9, wc=0),
            },
            "is not one number",
        ),
        (
            {
                "conv1": dict(epsW=-0.1, epsB=0.1, momW=0.9, momB=0.9, wc=0),
                "fc2": dict(epsW=0.1, epsB=0.1, momW=0.9, momB=0.9, wc=0),
            },
            "epsW",
        ),
        ({"conv1": dict(epsW=0.1, epsB=0.1, momW=0.9, momB=0.9, wc=0)}, "fc2/weights is in no"),
        (
            {
                "conv1": dict(epsW=0.1, epsB=0.1, momW=0.9, momB=0.9, wc=0),
                "fc2": dict(epsW=0.1, epsB=0.1, momW=0.9, momB=0.9, wc=0),
                "fc9": dict(epsW=0.1, epsB=0.1, momW=0.9, momB=0.9, wc=0),
            },
            "['fc9'] match no",
        ),
    ],
)
def test_bad_layer_params(graph, tiny_problem, sections, fragment):
    _build(*tiny_problem)
    with pytest.raises(ValueError) as info:
        tf1norm.layer_params(sections)
    assert fragment in str(info.value)


def test_missing_file_and_wrong_type(graph):
    with pytest.raises(ValueError, match="no file at"):
        tf1norm.layer_params("/nonexistent/layers.cfg")
    with pytest.raises(TypeError, match="path or a dict"):
        tf1norm.layer_params(3)
