"""Graph-construction-time validation shared by every public factory.

Each check raises ``TypeError`` or ``ValueError`` with a message of the form
``"<function>: `<argument>` <what is wrong>; got <value>. <how to fix>"``.
"""

import math
import numbers

import numpy as np

from tf1norm._tf import tf

_FLOAT_NAMES = "float16, bfloat16, float32 or float64"


def _fail(error, fn, arg, problem, got, fix):
    return error(f"{fn}: `{arg}` {problem}; got {got!r}. {fix}")


def float_tensor(x, fn, arg="w"):
    """``x`` as a floating-point tensor (variables are read) or TypeError."""
    if isinstance(x, (str, bytes)):
        raise _fail(TypeError, fn, arg, "must be a floating-point tensor", x,
                    f"Pass a {_FLOAT_NAMES} tensor or variable.")
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise _fail(TypeError, fn, arg, f"must have a floating dtype ({_FLOAT_NAMES})",
                    x.dtype.name, f"Cast it first, e.g. tf.cast({arg}, tf.float32).")
    return x


def static_rank(x, fn, arg="w", minimum=1):
    """The static rank of ``x``; ValueError when unknown or below ``minimum``."""
    rank = x.shape.rank
    if rank is None:
        raise _fail(ValueError, fn, arg, "needs a statically known rank", str(x.shape),
                    "Give the tensor a static shape, e.g. with tf.ensure_shape.")
    if rank < minimum:
        raise _fail(ValueError, fn, arg, f"must have rank >= {minimum}", rank,
                    "Pass the weight tensor itself, not a scalar.")
    return rank


def default_axes(rank):
    """Every axis but the last (the whole vector for rank 1)."""
    return tuple(range(max(rank - 1, 1)))


def axes_tuple(axes, rank, fn, arg="axes"):
    """Normalize ``axes`` (None, int or sequence of ints) to sorted positive axes."""
    if axes is None:
        return default_axes(rank)
    items = [axes] if isinstance(axes, numbers.Integral) else axes
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise _fail(TypeError, fn, arg, "must be None, an int or a list of ints", axes,
                    "Name the axes to reduce over, e.g. axes=[0] for a dense kernel.")
    items = list(items)
    if not items:
        raise _fail(ValueError, fn, arg, "must name at least one axis", axes,
                    "Use axes=None for every axis but the last.")
    normalized = [_one_axis(a, rank, fn, arg, axes) for a in items]
    if len(set(normalized)) != len(normalized):
        raise _fail(ValueError, fn, arg, "names an axis more than once", axes,
                    "List each axis once (negative axes count from the end).")
    return tuple(sorted(normalized))


def _one_axis(axis, rank, fn, arg, axes):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise _fail(TypeError, fn, arg, "must contain only ints", axes,
                    "Use Python ints such as 0 or -1.")
    if not -rank <= axis < rank:
        raise _fail(ValueError, fn, arg, f"is out of range for a rank-{rank} tensor", axes,
                    f"Use axes in [-{rank}, {rank - 1}].")
    return int(axis) % rank


def single_axis(axis, rank, fn, arg="axis"):
    """One axis as a non-negative int, or TypeError/ValueError."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise _fail(TypeError, fn, arg, "must be a single int", axis,
                    "Pass the axis that indexes the slices, e.g. axis=0.")
    return _one_axis(axis, rank, fn, arg, axis)


def axes_argument(axes, fn, arg="axes"):
    """Type-check ``axes`` before the rank is known (factories, constraints)."""
    if axes is None or isinstance(axes, numbers.Integral) and not isinstance(axes, bool):
        return axes
    if isinstance(axes, (str, bytes)) or not hasattr(axes, "__iter__"):
        raise _fail(TypeError, fn, arg, "must be None, an int or a list of ints", axes,
                    "Name the axes to reduce over, e.g. axes=[0] for a dense kernel.")
    axes = tuple(axes)
    axes_tuple(axes, 64, fn, arg)  # types, emptiness and repeats (negatives may clash later)
    return axes


def positive_number(value, fn, arg, allow_zero=False):
    """A finite Python number > 0 (>= 0 with ``allow_zero``), or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(TypeError, fn, arg, "must be a Python number", value,
                    "Pass a float such as 1.0.")
    if not math.isfinite(value):
        raise _fail(ValueError, fn, arg, "must be finite", value, "Pass a finite float.")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise _fail(ValueError, fn, arg, f"must be {bound}", value,
                    f"Pass a value {bound}.")
    return float(value)


def positive_int(value, fn, arg):
    """A Python int >= 1, or ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise _fail(ValueError, fn, arg, "must be an int >= 1", value, "Pass e.g. 1.")
    return int(value)


def positive_scalar(value, fn, arg):
    """A positive threshold: a Python number, or a scalar float tensor.

    Tensors whose value is known at graph-construction time are checked like
    numbers; others (placeholders, schedules) are accepted as they are.
    """
    if isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, bool):
        return positive_number(float(value), fn, arg)
    tensor = float_tensor(value, fn, arg)
    if tensor.shape.rank not in (None, 0):
        raise _fail(ValueError, fn, arg, "must be a scalar", str(tensor.shape),
                    "Pass one threshold for the whole tensor.")
    static = tf.get_static_value(tensor)
    if static is not None:
        positive_number(float(static), fn, arg)
    return tensor


def string(value, fn, arg):
    """A non-empty str, or TypeError/ValueError."""
    if not isinstance(value, str):
        raise _fail(TypeError, fn, arg, "must be a string", value,
                    'Pass a collection name such as "max_norm".')
    if not value:
        raise _fail(ValueError, fn, arg, "must not be empty", value, "Pass a non-empty name.")
    return value


def variable(weights, fn):
    """``weights`` as a ``tf.Variable`` (projections must assign), or TypeError."""
    if isinstance(weights, tf.Variable):
        return weights
    raise _fail(TypeError, fn, "weights", "must be a tf.Variable (a projection assigns "
                "to it)", type(weights).__name__,
                "Pass it as a variable regularizer (weights_regularizer=, kernel_regularizer=, "
                "get_variable(regularizer=)); for a computed tensor use tf1norm.max_norm.")
