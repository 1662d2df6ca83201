"""The one place tf1norm imports TensorFlow.

Every other module does ``from tf1norm._src.compat import tf, v1``. Keeping the import in
one module lets ``tf1norm/__init__.py`` set ``TF_USE_LEGACY_KERAS`` before
TensorFlow loads, and gives one function that checks whether
``tf.compat.v1.layers`` is usable in this process.
"""

import os

from tf1norm._src.legacy_keras import _LEGACY_KERAS_VAR  # sets the variable, adds the alias

import tensorflow as tf  # noqa: E402  (the environment must be set first)

v1 = tf.compat.v1

_LAYERS_FIX = (
    "tf.compat.v1.layers needs tf-keras, and TensorFlow only uses tf-keras when "
    "the environment variable TF_USE_LEGACY_KERAS=1 is set before TensorFlow is "
    "imported. In this process TensorFlow was imported first without it "
    "(TF_USE_LEGACY_KERAS={value!r}). Fix one of: run `TF_USE_LEGACY_KERAS=1 "
    "python your_script.py`; put `import tf1norm` before `import tensorflow`; or "
    "put `os.environ['TF_USE_LEGACY_KERAS'] = '1'` at the very top of your "
    "program. Also check that tf-keras is installed (`pip install tf-keras`)."
)


def require_v1_layers():
    """Return ``tf.compat.v1.layers`` after checking that it works here.

    With TensorFlow 2.16+ the module only works when tf-keras backs ``tf.keras``,
    which TensorFlow decides at import time from ``TF_USE_LEGACY_KERAS``.
    Importing tf1norm before TensorFlow sets that variable (unless you already
    set it); importing TensorFlow first without it leaves Keras 3 in place, and
    then every ``tf.compat.v1.layers`` call fails with a terse AttributeError.

    Returns:
      The ``tf.compat.v1.layers`` module.

    Raises:
      RuntimeError: ``tf.compat.v1.layers`` is unusable in this process; the
        message says how to fix it.
    """
    layers = v1.layers
    try:
        layers.dense  # noqa: B018  (the attribute access is the check)
    except (AttributeError, ImportError) as error:
        value = os.environ.get(_LEGACY_KERAS_VAR)
        raise RuntimeError(_LAYERS_FIX.format(value=value)) from error
    return layers


def run_eagerly(fn):
    """Call ``fn()`` in eager mode, even while a ``tf.Graph`` is the default here.

    TensorFlow's default-graph stack is thread-local, so a worker thread runs
    eagerly; ``tf.init_scope`` would not do, as it also pauses gradient tapes.
    """
    if tf.executing_eagerly():
        return fn()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()
