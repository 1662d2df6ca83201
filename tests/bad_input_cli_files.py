"""Scratch files of the command-line bad-input cases: a good checkpoint, damaged copies
and foreign files (tests/test_bad_input_cli.py, test_bad_input_bounds.py,
test_audit_bad_input.py)."""

import functools
import os
import pathlib
import shutil
import sys
import tempfile

import numpy as np

from tf1norm._src.compat import tf, v1

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
from audit_bad_input import cli  # noqa: E402


@functools.lru_cache(maxsize=None)
def _files():
    """A scratch directory with a good checkpoint, damaged copies and foreign files."""
    root = tempfile.mkdtemp(prefix="tf1norm_bad_cli_")
    with tf.Graph().as_default():
        kernel = v1.get_variable("dense/kernel", [3, 2], initializer=tf.ones_initializer())
        with v1.Session() as session:
            session.run(kernel.initializer)
            prefix = v1.train.Saver().save(session, os.path.join(root, "model.ckpt"))
    for name, damaged in (("short_data", ".data-00000-of-00001"), ("short_index", ".index")):
        for suffix in (".index", ".data-00000-of-00001", ".meta"):
            shutil.copy(prefix + suffix, os.path.join(root, name + suffix))
        path = os.path.join(root, name + damaged)
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    _traced_checkpoint(root)
    with open(os.path.join(root, "long_line.nnet"), "w") as handle:
        handle.write("4,2,2,2\n" + "x" * 5_000_000 + "\n")
    open(os.path.join(root, "binary.nnet"), "wb").write(b"\xff\xfe\x00 not text\n")
    for name in ("garbage.npz", "garbage.h5", "garbage.keras"):
        open(os.path.join(root, name), "wb").write(b"\x00\x01 not a model")
    np.savez(os.path.join(root, "empty.npz"))
    np.savez(
        os.path.join(root, "net.npz"),
        kernel_0=np.ones((2, 2)),
        bias_0=np.zeros(2),
        activations=np.array(["linear"]),
    )
    np.savez(
        os.path.join(root, "nan.npz"),
        kernel_0=np.full((2, 2), np.nan),
        bias_0=np.zeros(2),
        activations=np.array(["linear"]),
    )
    os.makedirs(os.path.join(root, "empty_dir"))
    return root


def _traced_checkpoint(root):
    """``traced.ckpt`` (x:0 -> y:0 through dense/kernel), and ``short_traced``, its data halved."""
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        kernel = v1.get_variable("dense/kernel", [3, 2], initializer=tf.ones_initializer())
        tf.identity(tf.matmul(x, kernel), name="y")
        with v1.Session() as session:
            session.run(kernel.initializer)
            prefix = v1.train.Saver().save(session, os.path.join(root, "traced.ckpt"))
    for suffix in (".index", ".data-00000-of-00001", ".meta"):
        shutil.copy(prefix + suffix, os.path.join(root, "short_traced" + suffix))
    path = os.path.join(root, "short_traced.data-00000-of-00001")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def _at(name):
    return lambda: os.path.join(_files(), name)


def run_cli(*argv):
    """A case call: ``tf1norm.cli.app.main`` with ``argv`` (callables are resolved first)."""
    return lambda: cli([a() if callable(a) else a for a in argv])()
