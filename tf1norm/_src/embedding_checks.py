"""Argument checks of ``tf1norm.graph.embedding``.

Errors name the function, argument, value and fix.
"""

import math
import numbers

from tf1norm._src import checks as _checks
from tf1norm._src.compat import tf


def check_table_variable(fn, part):
    if not isinstance(part, tf.Variable):
        raise TypeError(
            f"{fn}: with max_norm, `params` must be a tf.Variable, a "
            "PartitionedVariable or a list of variables (rows are renormalized in "
            f"place); got {type(part).__name__}. Create the table with "
            "tf.compat.v1.get_variable."
        )
    if part.shape.rank != 2 or part.shape[1] is None or part.shape[0] is None:
        raise ValueError(
            f"{fn}: `params` must have rank 2 [vocabulary, dim] with a static "
            f"shape; got shape {part.shape}. Pass the 2-D table variable."
        )
    if not part.dtype.base_dtype.is_floating:
        raise TypeError(
            f"{fn}: `params` must be a floating table to renormalize; got "
            f"{part.dtype.base_dtype.name}. Create it as float32."
        )


def check_layout(fn, sizes):
    per, extras = divmod(sum(sizes), len(sizes))
    expected = [per + 1] * extras + [per] * (len(sizes) - extras)
    if sizes != expected:
        raise ValueError(
            f"{fn}: `params` shards must hold {expected} rows (the layout of "
            f"partition_strategy 'div' and 'mod'); got {sizes}. Create the table "
            "with a partitioner, e.g. fixed_size_partitioner."
        )


def checked_ids(fn, ids):
    ids = tf.convert_to_tensor(ids)
    if not ids.dtype.is_integer:
        raise TypeError(
            f"{fn}: `ids` must be an integer tensor; got {ids.dtype.name}. "
            "Cast it, e.g. tf.cast(ids, tf.int64)."
        )
    return ids


def vocabulary_size(params):
    """Rows of the table (a variable, a tensor or a list of row shards), None when unknown."""
    parts = (
        list(params)
        if isinstance(params, (list, tuple)) or type(params).__name__ == "PartitionedVariable"
        else [params]
    )
    sizes = [getattr(getattr(p, "shape", None), "rank", None) and p.shape[0] for p in parts]
    return sum(sizes) if sizes and all(isinstance(n, int) for n in sizes) else None


def ids_in_range(fn, ids, vocabulary):
    """``ids`` checked to lie in ``[0, vocabulary)``.

    Constant ids are checked now (ValueError); ids fed or computed at run time
    are returned through a ``tf.debugging.Assert`` that fails the run with the
    same message and the offending ids (TensorFlow's own error would name a
    gather node, or, on a partitioned table, a shard).
    """
    if vocabulary is None:
        return ids
    static = tf.get_static_value(ids)
    fix = (
        "Map unknown ids to a valid row (e.g. a reserved out-of-vocabulary row) or "
        "enlarge the table."
    )
    if static is not None:
        bad = static[(static < 0) | (static >= vocabulary)]
        if bad.size:
            raise ValueError(
                f"{fn}: `ids` must be in [0, {vocabulary}) (the table has "
                f"{vocabulary} rows); got {bad.ravel()[:5].tolist()}. {fix}"
            )
        return ids
    message = (
        f"{fn}: `ids` must be in [0, {vocabulary}) (the table has {vocabulary} rows; "
        f"checked at run time, the ids are fed or computed). {fix} Got:"
    )
    with tf.name_scope("check_ids"):
        flat = tf.reshape(ids, [-1])
        outside = tf.logical_or(flat < 0, flat >= vocabulary)
        check = tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(outside)),
            [message, tf.boolean_mask(flat, outside)],
            summarize=5,
        )
        with tf.control_dependencies([check]):
            return tf.identity(ids)


def checked_choice(fn, arg, value, choices, fix):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{fn}: `{arg}` must be one of {', '.join(map(repr, choices))}; got {value!r}. {fix}"
        )
    return value


def checked_norm_type(fn, norm_type):
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
        raise TypeError(
            f"{fn}: `norm_type` must be a Python number; got {norm_type!r}. "
            "Pass e.g. norm_type=2.0."
        )
    if math.isnan(norm_type) or norm_type <= 0:
        raise ValueError(
            f"{fn}: `norm_type` must be > 0 (the p of the p-norm); got "
            f"{norm_type!r}. Use 2.0 for the Euclidean norm, 1.0 or math.inf."
        )
    return float(norm_type)


def checked_norm(fn, max_norm, norm_type):
    return _checks.positive_number(max_norm, fn, "max_norm"), checked_norm_type(fn, norm_type)


def checked_rows(fn, rows):
    rows = _checks.float_tensor(rows, fn, "rows")
    if rows.shape.rank != 2 or rows.shape[1] is None:
        raise ValueError(
            f"{fn}: `rows` must have rank 2 [n, dim] with a static dim; got shape "
            f"{rows.shape}. Reshape it, e.g. tf.reshape(rows, [-1, dim])."
        )
    return rows, rows.shape[1]
