"""Helpers shared by the embedding_lookup tests (tests/test_embedding*.py)."""

import numpy as np

from tf1norm._src.compat import v1, tf


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
