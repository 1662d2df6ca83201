"""The one place tf1norm imports TensorFlow.

Every other module does ``from tf1norm._tf import tf, v1``. Keeping the import in
one module lets ``tf1norm/__init__.py`` set ``TF_USE_LEGACY_KERAS`` before
TensorFlow loads, and gives one function that checks whether
``tf.compat.v1.layers`` is usable in this process.
"""

import importlib
import importlib.abc
import importlib.util
import os
import sys

_LEGACY_KERAS_VAR = "TF_USE_LEGACY_KERAS"

# Must run before ``import tensorflow``: TensorFlow reads the variable once, when
# it first builds ``tf.keras``. When TensorFlow is already imported we change
# nothing; ``require_v1_layers`` explains what to do if that breaks layers.
if "tensorflow" not in sys.modules:
    os.environ.setdefault(_LEGACY_KERAS_VAR, "1")


class _LegacyLayersAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serve ``tf_keras.legacy_tf_layers[.x]`` from ``tf_keras.src.legacy_tf_layers[.x]``.

    TensorFlow 2.16+ lazy-loads ``tf_keras.legacy_tf_layers.normalization`` for
    ``tensorflow.python.layers.normalization`` (which tf-slim's ``batch_norm``
    uses, and with it the resnet/inception arg scopes). tf-keras 2.20+ keeps
    that package under ``tf_keras.src`` only, so the lookup fails with
    ``ModuleNotFoundError``. This finder sits at the *end* of ``sys.meta_path``:
    it answers only when the normal import system finds nothing, and hands out
    a module whose namespace is the moved module's.
    """

    OLD, NEW = "tf_keras.legacy_tf_layers", "tf_keras.src.legacy_tf_layers"

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.OLD and not fullname.startswith(self.OLD + "."):
            return None
        moved = self.NEW + fullname[len(self.OLD):]
        if importlib.util.find_spec(moved) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=fullname == self.OLD)

    def create_module(self, spec):
        return None  # a plain new module

    def exec_module(self, module):
        moved = importlib.import_module(self.NEW + module.__name__[len(self.OLD):])
        namespace = {k: v for k, v in vars(moved).items() if not k.startswith("__")}
        module.__dict__.update(namespace)
        if hasattr(moved, "__path__"):
            module.__path__ = []  # a package, so submodules resolve through this finder


if not any(isinstance(f, _LegacyLayersAlias) for f in sys.meta_path):
    sys.meta_path.append(_LegacyLayersAlias())

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
