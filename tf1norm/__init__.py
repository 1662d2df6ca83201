"""tf1norm: weight constraints, normalization and regularization for graph-mode TF.

Import tf1norm before TensorFlow and ``tf.compat.v1.layers`` works with tf-keras
(tf1norm sets ``TF_USE_LEGACY_KERAS=1`` unless you set it yourself). Everything
here works inside ``with tf.Graph().as_default():`` without disabling eager
execution globally.
"""

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
from tf1norm.train import create_train_op
from tf1norm.transforms import StepContext
from tf1norm.transforms import Transform
from tf1norm.transforms import add_gradient_noise
from tf1norm.transforms import clip_by_global_norm
from tf1norm.transforms import clip_by_norm
from tf1norm.transforms import clip_by_value
from tf1norm.transforms import multiply_gradients
from tf1norm.transforms import project_constraints
from tf1norm.transforms import skip_nonfinite
from tf1norm.weight_decay import adamw
from tf1norm.weight_decay import add_decoupled_weight_decay
from tf1norm.weight_decay import add_l2_to_gradients
from tf1norm.weight_decay import sgd_decay_step

__version__ = "0.1.0"

__all__ = [
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
    "Transform",
    "UnitNorm",
    "adamw",
    "add_decoupled_weight_decay",
    "add_gradient_noise",
    "add_l2_to_gradients",
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
    "max_norm",
    "max_norm_regularizer",
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
    "total_loss",
    "unit_norm",
    "weight_norm",
    "weight_norm_data_init",
    "weight_norm_getter",
]
