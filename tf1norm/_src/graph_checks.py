"""Graph-construction-time validation of graph objects: variables, ops, sessions, lists.

The messages have the form of ``tf1norm._src.checks`` (``"<function>:
`<argument>` <what is wrong>; got <value>. <how to fix>"``), which holds the
checks of tensors, axes and numbers.
"""

from tf1norm._src.checks import _fail
from tf1norm._src.compat import tf


def variable(weights, fn):
    """``weights`` as a ``tf.Variable`` (projections must assign), or TypeError."""
    if isinstance(weights, tf.Variable):
        return weights
    raise _fail(
        TypeError,
        fn,
        "weights",
        "must be a tf.Variable (a projection assigns to it)",
        type(weights).__name__,
        "Pass it as a variable regularizer (weights_regularizer=, kernel_regularizer=, "
        "get_variable(regularizer=)); for a computed tensor use tf1norm.max_norm.",
    )


def instance_list(items, kind, fn, arg, example):
    """``items`` (an iterable of ``kind``) as a list, each object once.

    One object listed twice would act twice (decay twice, clip twice) through one
    shared state, so it is refused rather than silently applied twice.
    """
    if items is None or isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        what = f"one {kind.__name__}, not a list" if isinstance(items, kind) else items
        raise _fail(
            TypeError,
            fn,
            arg,
            f"must be a list of tf1norm {kind.__name__} objects",
            what,
            f"Pass a list, e.g. {arg}=[{example}], or {arg}=() for none.",
        )
    items = list(items)
    for item in items:
        if not isinstance(item, kind):
            raise _fail(
                TypeError,
                fn,
                arg,
                f"must contain tf1norm {kind.__name__} objects only",
                item,
                f"Use e.g. {example}.",
            )
    repeated = [item for i, item in enumerate(items) if any(item is j for j in items[:i])]
    if repeated:
        raise _fail(
            ValueError,
            fn,
            arg,
            "lists the same object more than once",
            repeated[0],
            "List each object once (to apply an effect twice, build two objects).",
        )
    return items


def _is_variable(item):
    return isinstance(item, tf.Variable) or hasattr(item, "_get_partitions")


def variable_list(variables, fn, arg):
    """None, or a list of variables (a tensor such as ``tf.identity(w)`` is refused)."""
    if variables is None:
        return None
    if (
        isinstance(variables, (str, bytes))
        or _is_variable(variables)
        or not hasattr(variables, "__iter__")
    ):
        raise _fail(
            TypeError,
            fn,
            arg,
            "must be a list of tf.Variable",
            variables,
            "E.g. [w] or tf.compat.v1.trainable_variables('dense').",
        )
    variables = list(variables)
    for variable in variables:
        if not _is_variable(variable):
            raise _fail(
                TypeError,
                fn,
                arg,
                "must contain tf.Variable objects only",
                variable,
                "A tensor (e.g. tf.identity(w) or w.read_value()) or a name is not the "
                "variable: pass the variable.",
            )
        if not variable.dtype.base_dtype.is_floating:
            raise _fail(
                TypeError,
                fn,
                arg,
                "must contain floating-point variables only (no "
                "gradient reaches an integer or boolean variable)",
                f"{variable.op.name} ({variable.dtype.base_dtype.name})",
                "Leave such variables (step counters, lookup tables) out of the list.",
            )
    return variables


def op_list(ops, fn, arg):
    """A list of ``tf.Operation``/``tf.Tensor`` (from any iterable), or TypeError."""
    if isinstance(ops, (str, bytes, tf.Operation, tf.Tensor)) or not hasattr(ops, "__iter__"):
        raise _fail(
            TypeError,
            fn,
            arg,
            "must be a list of ops or tensors",
            ops,
            f"E.g. {arg}=tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS).",
        )
    ops = list(ops)
    for op in ops:
        operation(op, fn, arg)
    return ops


def operation(value, fn, arg):
    """``value`` as a ``tf.Operation`` (a tensor's op), or TypeError."""
    if isinstance(value, tf.Operation):
        return value
    if isinstance(value, tf.Tensor) or isinstance(value, tf.Variable):
        return value.op
    raise _fail(
        TypeError,
        fn,
        arg,
        "must be a tf.Operation or tf.Tensor",
        value,
        "Pass the op or tensor you run, e.g. the result of create_train_op.",
    )


def session(value, fn, arg="session"):
    """A ``tf.compat.v1.Session`` (or anything with ``run`` and ``graph``), or TypeError."""
    if not (hasattr(value, "run") and isinstance(getattr(value, "graph", None), tf.Graph)):
        raise _fail(
            TypeError,
            fn,
            arg,
            "must be a tf.compat.v1.Session",
            value,
            "Pass the session you trained with, e.g. tf.compat.v1.Session().",
        )
    return value
