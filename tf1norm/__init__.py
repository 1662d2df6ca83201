"""tf1norm: weight constraints, normalization and regularization for graph-mode TF.

Import tf1norm before TensorFlow and ``tf.compat.v1.layers`` works with tf-keras
(tf1norm sets ``TF_USE_LEGACY_KERAS=1`` unless you set it yourself). Everything
here works inside ``with tf.Graph().as_default():`` without disabling eager
execution globally.
"""

from tf1norm._tf import require_v1_layers
from tf1norm.constraints import Constraint
from tf1norm.constraints import MaxNorm
from tf1norm.constraints import MinMaxNorm
from tf1norm.constraints import NonNeg
from tf1norm.constraints import UnitNorm
from tf1norm import keys
from tf1norm.projections import max_norm
from tf1norm.projections import min_max_norm
from tf1norm.projections import non_neg
from tf1norm.projections import renorm
from tf1norm.projections import unit_norm
from tf1norm import registry
from tf1norm.regularizers import l1_l2_regularizer
from tf1norm.regularizers import l1_regularizer
from tf1norm.regularizers import l2_regularizer
from tf1norm.regularizers import max_norm_regularizer
from tf1norm.regularizers import total_loss

__version__ = "0.1.0"

__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "keys",
    "l1_l2_regularizer",
    "l1_regularizer",
    "l2_regularizer",
    "max_norm",
    "max_norm_regularizer",
    "min_max_norm",
    "non_neg",
    "registry",
    "renorm",
    "require_v1_layers",
    "total_loss",
    "unit_norm",
]
