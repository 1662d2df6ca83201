"""Helpers shared by the embedding_lookup tests (tests/test_embedding*.py): NumPy twins,
exact-arithmetic norm checks, tables, sessions."""

import decimal
import fractions
import math

import numpy as np

from tf1norm._src.compat import v1, tf

UNIT = 2.0**-53
SCALING_ERROR = {
    np.float16: 2.0**-11 + 2.0**-24,
    np.float32: 2.0**-23,
    np.float64: 0.0,
    tf.bfloat16.as_numpy_dtype: 2.0**-8 + 2.0**-24,
}


def _torch_renorm_rows(rows, max_norm, p):
    """torch.embedding_renorm_: norm in the rows' dtype, scale in float64, rounded to the dtype."""
    norms = np.linalg.norm(rows, ord=p, axis=1, keepdims=True).astype(np.float64)
    scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(rows.dtype)
    return rows * scale


def _table(rng, rows=50, dim=6, scale=1.0):
    return (rng.standard_normal((rows, dim)) * scale).astype(np.float32)


def _step_op(train_op):
    """create_train_op's result as an op (it returns the loss tensor, tf-slim style)."""
    return train_op if isinstance(train_op, tf.Operation) else train_op.op


def _session(graph):
    """A session that runs independent ops in parallel, to expose ordering bugs."""
    return v1.Session(graph=graph, config=v1.ConfigProto(inter_op_parallelism_threads=4))


def _writes(closure, table):
    reads = {"ReadVariableOp", "ResourceGather"}
    return {op.type for op in closure.writes(table.handle.op, ("",)) if op.type not in reads}


def _p_norms(rows, p):
    return np.linalg.norm(rows.astype(np.float64), ord=p, axis=1, keepdims=True)


def _margin(dtype, dim, p):
    """max_norm_rows's documented shrink m = ρ + 3γ + 12u."""
    error = (dim + 752) * max(1.0, 1.0 / p) * UNIT
    return SCALING_ERROR[dtype] + 3 * error + 12 * UNIT


def _exact_norm_at_most(row, p, bound):
    """Is the p-norm of the stored values, in exact arithmetic, <= bound?

    Rows whose float64 norm is 1e-9 under the bound are (a float64 norm errs
    by ~dim·1e-16); the others are decided with rationals (integer p, inf) or
    40-digit decimals.
    """
    if _p_norms(np.asarray(row)[None], p)[0, 0] < bound * (1 - 1e-9):
        return True
    values = [abs(fractions.Fraction(float(v))) for v in row]  # float(v) is exact
    if p == math.inf:
        return max(values) <= bound
    if float(p).is_integer():
        return sum(v ** int(p) for v in values) <= fractions.Fraction(bound) ** int(p)
    with decimal.localcontext() as context:
        context.prec = 40  # far below the spacing of float64 norms
        power = decimal.Decimal(p)
        total = sum(decimal.Decimal(float(v)) ** power for v in values)
        return total <= decimal.Decimal(bound) ** power
