"""The command-line tests' checkpoints (a 3-4-2 ReLU net, ``_save``) and runners
(tests/test_cli*.py); the ``logdir`` and ``checkpoint`` fixtures (conftest.py)
save it at two steps."""

import os
import pathlib

import numpy as np

from tf1norm.cli import app as cli
from tf1norm._src.compat import tf, v1

ROOT = pathlib.Path(__file__).resolve().parent.parent
HIDDEN = np.array([[3.0, 0.0, 0.6, 0.0], [4.0, 0.0, 0.8, 0.0], [0.0, 0.5, 0.0, 0.0]])
OUTPUT = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 1.0]])


def _save(directory, step, scale):
    """A 3-4-2 ReLU net like the main job's (X:0 -> dnn/output/BiasAdd:0), trained-looking."""
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, (None, 3), name="X")
        y = v1.placeholder(tf.int64, (None,), name="y")
        with v1.name_scope("dnn"):
            hidden = v1.layers.dense(
                x,
                4,
                tf.nn.relu,
                name="hidden1",
                kernel_initializer=v1.constant_initializer(HIDDEN * scale),
            )
            logits = v1.layers.dense(
                hidden, 2, name="output", kernel_initializer=v1.constant_initializer(OUTPUT)
            )
        loss = v1.losses.sparse_softmax_cross_entropy(y, logits)
        step_var = v1.train.get_or_create_global_step()
        v1.train.MomentumOptimizer(0.1, 0.9).minimize(loss, step_var)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(step_var.assign(step))
            return v1.train.Saver().save(sess, os.path.join(directory, "model.ckpt"), step)


def _run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(err, *needles):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tf1norm") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
