"""Graph-construction-time checks of ``axes``/``axis`` arguments.

The messages have the form of ``tf1norm._src.checks`` (``"<function>: `<argument>`
<what is wrong>; got <value>. <how to fix>"``).
"""

import numbers

from tf1norm._src.checks import _fail
from tf1norm._src.compat import tf


def default_axes(rank):
    """Every axis but the last (the whole vector for rank 1)."""
    return tuple(range(max(rank - 1, 1)))


def axes_tuple(axes, rank, fn, arg="axes"):
    """Normalize ``axes`` (None, int or sequence of ints) to sorted positive axes."""
    if axes is None:
        return default_axes(rank)
    normalized = [_one_axis(a, rank, fn, arg, axes) for a in _axis_items(axes, fn, arg)]
    if len(set(normalized)) != len(normalized):
        raise _fail(
            ValueError,
            fn,
            arg,
            "names an axis more than once",
            axes,
            "List each axis once (negative axes count from the end).",
        )
    return tuple(sorted(normalized))


def _axis_items(axes, fn, arg):
    """``axes`` (an int or a sequence of ints) as a non-empty list of ints, or raise."""
    if isinstance(axes, (tf.Tensor, tf.Variable)):
        raise _fail(
            TypeError,
            fn,
            arg,
            "must be Python ints, not a tensor (the axes shape "
            "the graph, so they must be known when it is built)",
            axes,
            "Pass a list of ints, e.g. axes=[0].",
        )
    items = [axes] if isinstance(axes, numbers.Integral) else axes
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise _fail(
            TypeError,
            fn,
            arg,
            "must be None, an int or a list of ints",
            axes,
            "Name the axes to reduce over, e.g. axes=[0] for a dense kernel.",
        )
    items = list(items)
    if not items:
        raise _fail(
            ValueError,
            fn,
            arg,
            "must name at least one axis",
            axes,
            "Use axes=None for every axis but the last.",
        )
    for axis in items:
        _int_axis(axis, fn, arg, axes)
    return items


def _int_axis(axis, fn, arg, axes):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise _fail(
            TypeError, fn, arg, "must contain only ints", axes, "Use Python ints such as 0 or -1."
        )


def _one_axis(axis, rank, fn, arg, axes):
    _int_axis(axis, fn, arg, axes)
    if not -rank <= axis < rank:
        raise _fail(
            ValueError,
            fn,
            arg,
            f"is out of range for a rank-{rank} tensor",
            axes,
            f"Use axes in [-{rank}, {rank - 1}].",
        )
    return int(axis) % rank


def single_axis(axis, rank, fn, arg="axis"):
    """One axis as a non-negative int, or TypeError/ValueError."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise _fail(
            TypeError,
            fn,
            arg,
            "must be a single int",
            axis,
            "Pass the axis that indexes the slices, e.g. axis=0.",
        )
    return _one_axis(axis, rank, fn, arg, axis)


def axes_argument(axes, fn, arg="axes"):
    """Type-check ``axes`` before the rank is known (factories, constraints)."""
    if axes is None or isinstance(axes, numbers.Integral) and not isinstance(axes, bool):
        return axes
    axes = tuple(_axis_items(axes, fn, arg))
    if len(set(axes)) != len(axes):  # -1 and 1 may still clash: checked once the rank is known
        raise _fail(
            ValueError, fn, arg, "names an axis more than once", axes, "List each axis once."
        )
    return axes
