"""tf1norm: weight constraints, normalization and regularization for graph-mode TF.

Import tf1norm before TensorFlow and ``tf.compat.v1.layers`` works with tf-keras
(tf1norm sets ``TF_USE_LEGACY_KERAS=1`` unless you set it yourself). Everything
here works inside ``with tf.Graph().as_default():`` without disabling eager
execution globally.

``import tf1norm`` itself is light: each public name is imported from its
module on first use (PEP 562 ``__getattr__`` over ``_PUBLIC_NAMES`` and
``_PUBLIC_MODULES``), so ``tf1norm --help`` answers before TensorFlow is
imported. ``import tf1norm`` still sets ``TF_USE_LEGACY_KERAS`` first
(``tf1norm._src.legacy_keras``). The ``TYPE_CHECKING`` block below names the
same imports for static tools (type checkers, griffe/mkdocstrings);
``tests/test_public_api.py`` checks that it, the two maps and ``__all__`` agree.

The package, by role (each layer imports only the layers below it; see
``[tool.importlinter]`` in ``pyproject.toml``):

======================  ==========================================================
``tf1norm.cli``         the ``tf1norm`` command line and its plots
``tf1norm.tf2``         the TF2 runtime: eager train step, Keras ``fit``, migration
``tf1norm.training``    the train step: ``create_train_op``, transforms, hooks
``tf1norm.bounds``      output-range analysis (beside the train step)
``tf1norm.graph``       graph plumbing: registry, keys, regularizers, getters,
                        scopes, constraints, batch norm, embeddings, tf-slim adapter
``tf1norm._math``       the pure math: norms, projections, reparameterizations,
                        embedding row caps, batch-norm statistics
``tf1norm._src``        the TensorFlow import, argument checks, eager helpers
======================  ==========================================================
"""

import importlib
from typing import TYPE_CHECKING

from tf1norm._src import legacy_keras  # noqa: F401  (TF_USE_LEGACY_KERAS, before any TensorFlow)
from tf1norm.graph import keras_registration  # no Keras, no TensorFlow

keras_registration.install()  # constraints register with Keras when it is imported

if TYPE_CHECKING:
    from tf1norm._math.projections import max_norm
    from tf1norm._math.range_projections import min_max_norm
    from tf1norm._math.range_projections import non_neg
    from tf1norm._math.projections import renorm
    from tf1norm._math.range_projections import unit_norm
    from tf1norm._math.reparam import spectral_norm
    from tf1norm._math.reparam import weight_norm
    from tf1norm._src.compat import require_v1_layers
    from tf1norm.graph.batch_norm import batch_norm
    from tf1norm.graph.constraints import Constraint
    from tf1norm.graph.constraints import MaxNorm
    from tf1norm.graph.constraints import MinMaxNorm
    from tf1norm.graph.constraints import NonNeg
    from tf1norm.graph.constraints import SpectralNorm
    from tf1norm.graph.constraints import UnitNorm
    from tf1norm.graph.embedding import embedding_lookup
    from tf1norm.graph.getters import spectral_norm_getter
    from tf1norm.graph.getters import weight_norm_getter
    from tf1norm.graph.regularizers import l1_l2_regularizer
    from tf1norm.graph.regularizers import l1_regularizer
    from tf1norm.graph.regularizers import l2_regularizer
    from tf1norm.graph.regularizers import max_norm_regularizer
    from tf1norm.graph.regularizers import spectral_norm_regularizer
    from tf1norm.graph.regularizers import total_loss
    from tf1norm.graph.reparam_tools import export_plain_checkpoint
    from tf1norm.graph.reparam_tools import restore_plain_checkpoint
    from tf1norm.graph.data_init import weight_norm_data_init
    from tf1norm.graph.scopes import slim_scope
    from tf1norm.tf2.keras_fit import attach_transforms
    from tf1norm.tf2.step import TrainStep
    from tf1norm.tf2.step import make_train_step
    from tf1norm.training.check import Finding
    from tf1norm.training.check import check_train_op
    from tf1norm.training.cuda_convnet import LayerParams
    from tf1norm.training.cuda_convnet import PerVariableMomentumOptimizer
    from tf1norm.training.cuda_convnet import layer_params
    from tf1norm.training.hooks import ConstraintHook
    from tf1norm.training.multipliers import multiply_gradients
    from tf1norm.training.skipping import skip_nonfinite
    from tf1norm.training.summaries import ChainSummaryHook
    from tf1norm.training.summaries import summarize_chain
    from tf1norm.training.train import create_train_op
    from tf1norm.training.transforms import StepContext
    from tf1norm.training.transforms import Transform
    from tf1norm.training.transforms import add_gradient_noise
    from tf1norm.training.transforms import clip_by_global_norm
    from tf1norm.training.transforms import clip_by_norm
    from tf1norm.training.transforms import clip_by_value
    from tf1norm.training.transforms import project_constraints
    from tf1norm.training.weight_decay import adamw
    from tf1norm.training.weight_decay import add_decoupled_weight_decay
    from tf1norm.training.weight_decay import add_l2_to_gradients
    from tf1norm.training.weight_decay import sgd_decay_step
    from tf1norm import bounds as bounds
    from tf1norm.graph import keys
    from tf1norm.tf2 import migration
    from tf1norm.graph import registry
    from tf1norm.graph import slim_layers as slim_layers
    from tf1norm.training import summaries

# Public name -> the module that defines it (imported on first use).
_PUBLIC_NAMES = {
    "ChainSummaryHook": "tf1norm.training.summaries",
    "Constraint": "tf1norm.graph.constraints",
    "ConstraintHook": "tf1norm.training.hooks",
    "Finding": "tf1norm.training.check",
    "LayerParams": "tf1norm.training.cuda_convnet",
    "MaxNorm": "tf1norm.graph.constraints",
    "MinMaxNorm": "tf1norm.graph.constraints",
    "NonNeg": "tf1norm.graph.constraints",
    "PerVariableMomentumOptimizer": "tf1norm.training.cuda_convnet",
    "SpectralNorm": "tf1norm.graph.constraints",
    "StepContext": "tf1norm.training.transforms",
    "TrainStep": "tf1norm.tf2.step",
    "Transform": "tf1norm.training.transforms",
    "UnitNorm": "tf1norm.graph.constraints",
    "adamw": "tf1norm.training.weight_decay",
    "add_decoupled_weight_decay": "tf1norm.training.weight_decay",
    "add_gradient_noise": "tf1norm.training.transforms",
    "add_l2_to_gradients": "tf1norm.training.weight_decay",
    "attach_transforms": "tf1norm.tf2.keras_fit",
    "batch_norm": "tf1norm.graph.batch_norm",
    "check_train_op": "tf1norm.training.check",
    "clip_by_global_norm": "tf1norm.training.transforms",
    "clip_by_norm": "tf1norm.training.transforms",
    "clip_by_value": "tf1norm.training.transforms",
    "create_train_op": "tf1norm.training.train",
    "embedding_lookup": "tf1norm.graph.embedding",
    "export_plain_checkpoint": "tf1norm.graph.reparam_tools",
    "l1_l2_regularizer": "tf1norm.graph.regularizers",
    "l1_regularizer": "tf1norm.graph.regularizers",
    "l2_regularizer": "tf1norm.graph.regularizers",
    "layer_params": "tf1norm.training.cuda_convnet",
    "make_train_step": "tf1norm.tf2.step",
    "max_norm": "tf1norm._math.projections",
    "max_norm_regularizer": "tf1norm.graph.regularizers",
    "min_max_norm": "tf1norm._math.range_projections",
    "multiply_gradients": "tf1norm.training.multipliers",
    "non_neg": "tf1norm._math.range_projections",
    "project_constraints": "tf1norm.training.transforms",
    "renorm": "tf1norm._math.projections",
    "require_v1_layers": "tf1norm._src.compat",
    "restore_plain_checkpoint": "tf1norm.graph.reparam_tools",
    "sgd_decay_step": "tf1norm.training.weight_decay",
    "skip_nonfinite": "tf1norm.training.skipping",
    "slim_scope": "tf1norm.graph.scopes",
    "spectral_norm": "tf1norm._math.reparam",
    "spectral_norm_getter": "tf1norm.graph.getters",
    "spectral_norm_regularizer": "tf1norm.graph.regularizers",
    "summarize_chain": "tf1norm.training.summaries",
    "total_loss": "tf1norm.graph.regularizers",
    "unit_norm": "tf1norm._math.range_projections",
    "weight_norm": "tf1norm._math.reparam",
    "weight_norm_data_init": "tf1norm.graph.data_init",
    "weight_norm_getter": "tf1norm.graph.getters",
}

# Public submodules, reached as attributes (``tf1norm.keys``, ``from tf1norm import migration``).
_PUBLIC_MODULES = {
    "bounds": "tf1norm.bounds",
    "keys": "tf1norm.graph.keys",
    "migration": "tf1norm.tf2.migration",
    "registry": "tf1norm.graph.registry",
    "slim_layers": "tf1norm.graph.slim_layers",
    "summaries": "tf1norm.training.summaries",
}

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


def __getattr__(name):
    """Import a public name (and with it TensorFlow) on first use; PEP 562."""
    if name in _PUBLIC_MODULES:
        value = importlib.import_module(_PUBLIC_MODULES[name])
    elif name in _PUBLIC_NAMES:
        value = getattr(importlib.import_module(_PUBLIC_NAMES[name]), name)
    else:
        raise AttributeError(f"module 'tf1norm' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_PUBLIC_MODULES))
