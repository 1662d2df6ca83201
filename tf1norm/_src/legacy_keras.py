"""Make ``tf.compat.v1.layers`` work with tf-keras, without importing TensorFlow.

``import tf1norm`` runs this (TensorFlow itself loads only when a public name
is first used), so ``import tf1norm`` before ``import tensorflow`` still sets
``TF_USE_LEGACY_KERAS=1`` in time, and the ``tf_keras.legacy_tf_layers`` alias
is in place for tf-slim's batch norm.
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
        moved = self.NEW + fullname[len(self.OLD) :]
        if importlib.util.find_spec(moved) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=fullname == self.OLD)

    def create_module(self, spec):
        return None  # a plain new module

    def exec_module(self, module):
        moved = importlib.import_module(self.NEW + module.__name__[len(self.OLD) :])
        namespace = {k: v for k, v in vars(moved).items() if not k.startswith("__")}
        module.__dict__.update(namespace)
        if hasattr(moved, "__path__"):
            module.__path__ = []  # a package, so submodules resolve through this finder


if not any(isinstance(f, _LegacyLayersAlias) for f in sys.meta_path):
    sys.meta_path.append(_LegacyLayersAlias())
