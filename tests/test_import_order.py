"""TF_USE_LEGACY_KERAS handling, checked in fresh interpreters (slow: TF imports)."""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(code, **env_changes):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(env_changes, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_importing_tf1norm_first_enables_v1_layers():
    out = _run("""
        import tf1norm
        import tensorflow as tf
        with tf.Graph().as_default():
            x = tf.compat.v1.placeholder(tf.float32, [None, 3])
            y = tf.compat.v1.layers.dense(x, 2, kernel_constraint=tf1norm.MaxNorm(1.0))
        print("layers-ok", y.shape.as_list(), tf.executing_eagerly())
    """)
    assert "layers-ok [None, 2] True" in out  # eager stays on globally


def test_tensorflow_first_keeps_tf1norm_working_and_explains_layers():
    out = _run("""
        import numpy as np
        import tensorflow as tf
        import tf1norm
        with tf.Graph().as_default():
            y = tf1norm.max_norm(tf.constant([[3.0, 4.0]]), 1.0, axes=1)
            with tf.compat.v1.Session() as sess:
                print("math-ok", np.round(sess.run(y).astype(float), 3).tolist())
        try:
            tf1norm.require_v1_layers()
        except RuntimeError as error:
            print("error:", error)
    """)
    assert "math-ok [[0.6, 0.8]]" in out
    assert "error:" in out and "TF_USE_LEGACY_KERAS=1" in out
    assert "import tf1norm` before `import tensorflow`" in out


def test_an_explicit_user_setting_is_respected():
    out = _run(
        """
        import os, tf1norm
        print("value", os.environ["TF_USE_LEGACY_KERAS"])
    """,
        TF_USE_LEGACY_KERAS="0",
    )
    assert "value 0" in out
