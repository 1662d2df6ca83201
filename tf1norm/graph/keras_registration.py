"""Register tf1norm's constraints with every Keras, so saved models load by name.

``model.save("m.keras")`` writes a constraint as ``{"module":
"tf1norm.graph.constraints", "class_name": "MaxNorm", "registered_name":
"tf1norm>MaxNorm", "config": {...}}``; ``keras.models.load_model`` finds the
class only if ``"tf1norm>MaxNorm"`` is registered in *that* Keras (Keras 3,
``import keras``; tf-keras, ``import tf_keras`` or ``tf.keras`` under
``TF_USE_LEGACY_KERAS=1``). This module registers every constraint class
(``register_keras_serializable(package="tf1norm")``) with each Keras:

* already imported when ``tf1norm.graph.constraints`` loads: right after that
  module's import;
* imported later: right after its import.

Both go through one import hook that ``import tf1norm`` installs, so the
constraints module never imports this one (no import cycle), and this module
imports neither Keras nor TensorFlow itself (``import tf1norm`` stays light).

So ``import tf1norm`` before ``load_model`` is all a user needs; no
``custom_objects``.
"""

import importlib
import importlib.abc
import importlib.util
import sys

PACKAGE = "tf1norm"
# Keras flavour (top-level package) -> the module holding register_keras_serializable.
_REGISTRARS = {"keras": "keras.saving", "tf_keras": "tf_keras.utils"}
CONSTRAINTS = "tf1norm.graph.constraints"  # registers with every loaded Keras once it loads
_registered = set()


def register(flavour):
    """Register the constraint classes with ``flavour`` (``"keras"``/``"tf_keras"``) once.

    Returns:
      True when the classes are registered (now or before).
    """
    if flavour in _registered:
        return True
    registrar = importlib.import_module(_REGISTRARS[flavour]).register_keras_serializable
    from tf1norm.graph import constraints

    for cls in constraints.KERAS_SERIALIZABLE:
        registrar(package=PACKAGE, name=cls.__name__)(cls)
    _registered.add(flavour)
    return True


def register_loaded():
    """Register with every Keras flavour already imported (after ``CONSTRAINTS`` loads)."""
    for flavour in _REGISTRARS:
        if flavour in sys.modules and hasattr(sys.modules[flavour], "__version__"):
            register(flavour)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Wrap the loaders of ``keras``/``tf_keras`` and ``CONSTRAINTS``: registration follows."""

    def find_spec(self, fullname, path=None, target=None):
        watched = fullname == CONSTRAINTS or fullname in _REGISTRARS
        if not watched or fullname in _registered:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _RegisteringLoader(spec.loader, fullname)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader, name):
        self.loader, self.name = loader, name  # a Keras flavour or CONSTRAINTS

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        if self.name == CONSTRAINTS:
            register_loaded()
        elif CONSTRAINTS in sys.modules or "tensorflow" in sys.modules:
            try:
                register(self.name)
            except (ImportError, AttributeError):  # TensorFlow mid-import: see register_loaded
                pass

    def __getattr__(self, name):
        return getattr(self.loader, name)


def install():
    """Put the import hook in place (idempotent); ``import tf1norm`` calls it."""
    if not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())
    if CONSTRAINTS in sys.modules:  # loaded before the hook was in place
        register_loaded()
