"""Bad input to the checkpoint tools (weight_norm_data_init, restore_plain_checkpoint,
export_plain_checkpoint) is answered with a message naming the argument, the value
and the fix. (A truncated checkpoint is in ``test_bad_input_cli``, beside its files.)

``CASES`` is graded by ``tools/audit_bad_input.py``; every case must be "clear".
"""

import os
import pathlib
import sys

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1
from bad_input_train_helpers import _model, _scratch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
from audit_bad_input import Case, grade  # noqa: E402

V, E = ValueError, TypeError


def _session():
    _model()
    session = v1.Session()
    session.run(v1.global_variables_initializer())
    return session


def _restore(path_of):
    session = _session()
    return tf1norm.restore_plain_checkpoint(session, path_of(session))


def _checkpoint_of(name, shape, file_name):
    """A ``path_of(session)`` for ``_restore``: a checkpoint of one other variable."""

    def path_of(session):
        del session
        with tf.Graph().as_default():
            other = v1.get_variable(name, shape)
            with v1.Session() as other_session:
                other_session.run(other.initializer)
                return v1.train.Saver().save(other_session, os.path.join(_scratch(), file_name))

    return path_of


def _weight_norm_session():
    images = v1.placeholder(tf.float32, [None, 3], name="images")
    v1.placeholder(tf.float32, [None], name="labels")
    with v1.variable_scope("net", custom_getter=tf1norm.weight_norm_getter()):
        v1.layers.dense(images, 2)
    session = v1.Session()
    session.run(v1.global_variables_initializer())
    return session


def _a_file():
    path = os.path.join(_scratch(), "not_a_folder")
    open(path, "w").close()
    return path


CASES = [
    Case(
        "weight_norm_data_init",
        lambda: tf1norm.weight_norm_data_init(None),
        E,
        ["weight_norm_data_init", "`session`", "None"],
    ),
    Case(
        "weight_norm_data_init",
        lambda: tf1norm.weight_norm_data_init(_session(), init_scale=-1.0),
        V,
        ["weight_norm_data_init", "`init_scale`", "-1.0"],
    ),
    Case(
        "weight_norm_data_init",
        lambda: tf1norm.weight_norm_data_init(_session(), min_samples=0),
        V,
        ["weight_norm_data_init", "`min_samples`", "0"],
    ),
    Case(
        "weight_norm_data_init",
        lambda: tf1norm.weight_norm_data_init(_session()),
        V,
        ["weight_norm_data_init", "no weight-normalized weights"],
    ),
    Case(
        "weight_norm_data_init",
        lambda: tf1norm.weight_norm_data_init(_weight_norm_session()),
        V,
        [
            "weight_norm_data_init",
            "`feed_dict`",
            "['images:0']",
            "no entries",
            "feed_dict={images: x_batch}",
        ],
    ),
    Case(
        "weight_norm_data_init",
        lambda: tf1norm.weight_norm_data_init(
            _weight_norm_session(), feed_dict={"labels:0": [1.0]}
        ),
        V,
        ["weight_norm_data_init", "`feed_dict`", "['images:0']", "labels:0"],
    ),
    Case(
        "weight_norm_data_init",
        lambda: tf1norm.weight_norm_data_init(_weight_norm_session(), feed_dict=[1.0]),
        E,
        ["weight_norm_data_init", "`feed_dict`", "[1.0]", "feed_dict={x: x_batch}"],
    ),
    Case(
        "restore_plain_checkpoint",
        lambda: _restore(lambda s: "/nonexistent/model.ckpt"),
        V,
        ["restore_plain_checkpoint", "`path`", "/nonexistent/model.ckpt"],
    ),
    Case(
        "restore_plain_checkpoint",
        lambda: _restore(lambda s: 3),
        E,
        ["restore_plain_checkpoint", "`path`", "3"],
    ),
    Case(
        "restore_plain_checkpoint",
        lambda: _restore(_checkpoint_of("other/kernel", [2, 2], "other.ckpt")),
        V,
        ["restore_plain_checkpoint", "`path`", "holds none", "other/kernel", "'w'"],
    ),
    Case(
        "restore_plain_checkpoint",
        lambda: _restore(_checkpoint_of("w", [4, 2], "w.ckpt")),
        V,
        ["restore_plain_checkpoint", "w.ckpt", "[4, 2]", "[3, 2]"],
    ),
    Case(
        "restore_plain_checkpoint",
        lambda: tf1norm.restore_plain_checkpoint("s", "/tmp/x"),
        E,
        ["restore_plain_checkpoint", "`session`", "'s'"],
    ),
    Case(
        "export_plain_checkpoint",
        lambda: tf1norm.export_plain_checkpoint(_session(), None),
        E,
        ["export_plain_checkpoint", "`path`", "None"],
    ),
    Case(
        "export_plain_checkpoint",
        lambda: tf1norm.export_plain_checkpoint(None, "/tmp/x"),
        E,
        ["export_plain_checkpoint", "`session`", "None"],
    ),
    Case(
        "export_plain_checkpoint",
        lambda: tf1norm.export_plain_checkpoint(
            _session(), "/nonexistent_tf1norm/plain/model.ckpt"
        ),
        V,
        [
            "export_plain_checkpoint",
            "`path`",
            "'/nonexistent_tf1norm/plain'",
            "does not exist",
            "os.makedirs",
        ],
    ),
    Case(
        "export_plain_checkpoint",
        lambda: tf1norm.export_plain_checkpoint(_session(), os.path.join(_a_file(), "model.ckpt")),
        V,
        ["export_plain_checkpoint", "`path`", "not_a_folder", "is not a folder", "writable"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.apis[0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_answered_clearly(case):
    verdict, detail = grade(case)
    assert verdict == "clear", detail


def test_weight_norm_data_init_runs_once_the_input_is_fed(graph):
    session = _weight_norm_session()
    images = graph.get_tensor_by_name("images:0")
    report = tf1norm.weight_norm_data_init(session, {images: np.random.RandomState(0).randn(32, 3)})
    assert [name for name, _, _ in report] == ["net/dense/kernel"]
