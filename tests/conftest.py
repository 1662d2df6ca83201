"""Shared fixtures: a fresh graph per test and a session on it, a seeded rng, tf-slim patched.

tf1norm is imported before TensorFlow so that tf.compat.v1.layers uses tf-keras.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tf1norm  # noqa: E402,F401  (must precede TensorFlow)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tf1norm._src.compat import tf, v1  # noqa: E402


@pytest.fixture
def graph():
    """A fresh default graph for the test."""
    g = tf.Graph()
    with g.as_default():
        yield g


@pytest.fixture
def sess(graph):
    """A session on the test's fresh graph."""
    with v1.Session(graph=graph) as session:
        yield session


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def patched_slim(monkeypatch):
    """tf-slim with its two TF 2.21 breakages patched for the duration of one test."""
    from tensorflow.python.framework import ops
    from tensorflow.python.ops import control_flow_ops

    monkeypatch.setattr(ops, "Tensor", tf.Tensor, raising=False)
    monkeypatch.setattr(control_flow_ops, "cond", v1.cond, raising=False)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """The command-line tests' log directory: tests/cli_helpers.py's net at steps 10 and 2."""
    from cli_helpers import _save

    directory = tmp_path_factory.mktemp("logdir")
    for step, scale in ((10, 1.0), (2, 0.5)):  # written out of step order on purpose
        _save(str(directory), step, scale)
    return directory


@pytest.fixture(scope="module")
def checkpoint(logdir):
    """The step-10 checkpoint of ``logdir``."""
    return str(logdir / "model.ckpt-10")


def run_initialized(session, fetches, feed_dict=None):
    """Initialize global variables, then run ``fetches``."""
    session.run(v1.global_variables_initializer())
    return session.run(fetches, feed_dict=feed_dict)


def in_eager(fn, *args):
    """Run ``fn(*args)`` eagerly and return NumPy, even inside a test's graph.

    Used to call Keras 3 live as a reference (see ``tf1norm._src.compat.run_eagerly``).
    """
    from tf1norm._src.compat import run_eagerly

    return np.asarray(run_eagerly(lambda: fn(*args)))


@pytest.fixture(autouse=True)
def eager_stays_on_between_tests():
    """Fail the test that leaves graph mode behind (later eager tests would break)."""
    yield
    if not tf.executing_eagerly():
        pytest.fail(
            "this test left eager execution off (a graph left as default, or "
            "disable_eager_execution); later TF2 tests would fail"
        )
