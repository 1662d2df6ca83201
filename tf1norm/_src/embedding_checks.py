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
