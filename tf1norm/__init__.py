"""tf1norm: weight constraints, normalization and regularization for graph-mode TF.

Import tf1norm before TensorFlow and ``tf.compat.v1.layers`` works with tf-keras
(tf1norm sets ``TF_USE_LEGACY_KERAS=1`` unless you set it yourself). Everything
here works inside ``with tf.Graph().as_default():`` without disabling eager
execution globally.

``import tf1norm`` itself is light: TensorFlow and the public names load on
the first use of any of them (PEP 562 ``__getattr__``), so ``tf1norm --help``
answers before TensorFlow is imported. ``import tf1norm`` still sets
``TF_USE_LEGACY_KERAS`` first (``tf1norm._legacy_keras``).
"""

import importlib
import importlib.util
import sys
import types

from tf1norm import _legacy_keras  # noqa: F401  (TF_USE_LEGACY_KERAS, before any TensorFlow)
from tf1norm import keras_registration  # noqa: E402  (no Keras, no TensorFlow)

keras_registration.install()  # constraints register with Keras when it is imported


def _import_public_names():
    """The public surface, imported on first use (it imports TensorFlow)."""
    from tf1norm._tf import require_v1_layers
    from tf1norm.batch_norm import batch_norm
    from tf1norm.check import Finding
    from tf1norm.check import check_train_op
    from tf1norm.constraints import Constraint
    from tf1norm.constraints import MaxNorm
    from tf1norm.constraints import MinMaxNorm
    from tf1norm.constraints import NonNeg
    from tf1norm.constraints import SpectralNorm
    from tf1norm.constraints import UnitNorm
    from tf1norm.cuda_convnet import LayerParams
    from tf1norm.cuda_convnet import PerVariableMomentumOptimizer
    from tf1norm.cuda_convnet import layer_params
    from tf1norm.embedding import embedding_lookup
    from tf1norm.getters import spectral_norm_getter
    from tf1norm.getters import weight_norm_getter
    from tf1norm.hooks import ConstraintHook
    from tf1norm import keys
    from tf1norm.projections import max_norm
    from tf1norm.projections import min_max_norm
    from tf1norm.projections import non_neg
    from tf1norm.projections import renorm
    from tf1norm.projections import unit_norm
    from tf1norm import registry
    from tf1norm.reparam import spectral_norm
    from tf1norm.reparam_tools import export_plain_checkpoint
    from tf1norm.reparam_tools import restore_plain_checkpoint
    from tf1norm.reparam_tools import weight_norm_data_init
    from tf1norm.reparam import weight_norm
    from tf1norm.regularizers import l1_l2_regularizer
    from tf1norm.regularizers import l1_regularizer
    from tf1norm.regularizers import l2_regularizer
    from tf1norm.regularizers import max_norm_regularizer
    from tf1norm.regularizers import spectral_norm_regularizer
    from tf1norm.regularizers import total_loss
    from tf1norm.scopes import slim_scope
    from tf1norm import summaries
    from tf1norm.summaries import ChainSummaryHook
    from tf1norm.summaries import summarize_chain
    from tf1norm.train import create_train_op
    from tf1norm.keras_fit import attach_transforms
    from tf1norm.tf2_step import TrainStep
    from tf1norm.tf2_step import make_train_step
    from tf1norm import migration
    from tf1norm.transforms import StepContext
    from tf1norm.transforms import Transform
    from tf1norm.transforms import add_gradient_noise
    from tf1norm.transforms import clip_by_global_norm
    from tf1norm.transforms import clip_by_norm
    from tf1norm.transforms import clip_by_value
    from tf1norm.multipliers import multiply_gradients
    from tf1norm.transforms import project_constraints
    from tf1norm.skipping import skip_nonfinite
    from tf1norm.weight_decay import adamw
    from tf1norm.weight_decay import add_decoupled_weight_decay
    from tf1norm.weight_decay import add_l2_to_gradients
    from tf1norm.weight_decay import sgd_decay_step
    return {name: value for name, value in locals().items() if name in __all__}


__version__ = "0.1.0"

__all__ = [
    "ChainSummaryHook",
    "Constraint",
    "ConstraintHook",
    "Finding",
    "LayerParams",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "PerVariableMomentumOptimizer",
    "SpectralNorm",
    "StepContext",
    "TrainStep",
    "Transform",
    "UnitNorm",
    "adamw",
    "add_decoupled_weight_decay",
    "add_gradient_noise",
    "add_l2_to_gradients",
    "attach_transforms",
    "batch_norm",
    "check_train_op",
    "clip_by_global_norm",
    "clip_by_norm",
    "clip_by_value",
    "create_train_op",
    "embedding_lookup",
    "export_plain_checkpoint",
    "keys",
    "l1_l2_regularizer",
    "l1_regularizer",
    "l2_regularizer",
    "layer_params",
    "make_train_step",
    "max_norm",
    "max_norm_regularizer",
    "migration",
    "min_max_norm",
    "multiply_gradients",
    "non_neg",
    "project_constraints",
    "registry",
    "renorm",
    "require_v1_layers",
    "restore_plain_checkpoint",
    "sgd_decay_step",
    "skip_nonfinite",
    "slim_scope",
    "spectral_norm",
    "spectral_norm_getter",
    "spectral_norm_regularizer",
    "summaries",
    "summarize_chain",
    "total_loss",
    "unit_norm",
    "weight_norm",
    "weight_norm_data_init",
    "weight_norm_getter",
]


class _Package(types.ModuleType):
    """tf1norm's module type: public names (and TensorFlow) load on first access.

    It also keeps a submodule import from binding a module over a public name:
    ``tf1norm.slim_layers`` imports ``tf1norm.batch_norm`` (the module), which
    must not hide the public function ``tf1norm.batch_norm``. Public names are
    bound only by the first-access load.
    """

    _loading = False

    def __setattr__(self, name, value):
        if name in __all__ and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)

    def __getattr__(self, name):
        if name == "slim_layers":  # needs tf_slim: imported on first access only
            return importlib.import_module("tf1norm.slim_layers")
        if name not in __all__ or _Package._loading:
            raise AttributeError(f"module 'tf1norm' has no attribute {name!r}")
        if importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return self._from_submodule(name)
        _Package._loading = True
        try:
            vars(self).update(_import_public_names())
        finally:
            _Package._loading = False
        return vars(self)[name]

    def _from_submodule(self, name):
        """``tf1norm.keys`` (a module) or ``tf1norm.batch_norm`` (the function of that module).

        Loading only the submodule lets tf1norm's own modules run ``from tf1norm
        import keys`` while the public surface is not loaded yet.
        """
        module = importlib.import_module(f"{__name__}.{name}")
        vars(self)[name] = getattr(module, name, module)
        return vars(self)[name]

    def __dir__(self):
        return sorted(set(vars(self)) | set(__all__))


sys.modules[__name__].__class__ = _Package
