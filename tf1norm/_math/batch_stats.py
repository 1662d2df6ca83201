"""The pure math of ``tf1norm.batch_norm``: the fused kernel's 4-D layout and the moving averages.

Per-channel statistics over every axis but the channel axis do not depend on
how the other axes are grouped, so ``fused_layout`` reshapes rank 2-5 input to
the 4-D input of ``FusedBatchNorm`` (the table is in
``tf1norm.graph.batch_norm``). The rest is the arithmetic of the moving
averages: ``weight`` is ``1 − decay`` and ``step`` the update count.
"""

from tf1norm._src.compat import tf


def fused_layout(x, channels_first):
    """``x`` as 4-D input of the fused kernel and its data format (see the module table)."""
    rank = x.shape.rank
    if rank == 4:
        return x, "NCHW" if channels_first else "NHWC"
    dims = _dims(x)
    if rank == 2:
        return tf.reshape(x, [dims[0], 1, 1, dims[1]]), "NHWC"
    if channels_first:
        height, width = _two_spatial(dims[2:])
        return tf.reshape(x, [dims[0], dims[1], height, width]), "NCHW"
    height, width = _two_spatial(dims[1:-1])
    return tf.reshape(x, [dims[0], height, width, dims[-1]]), "NHWC"


def _dims(x):
    """Static dimensions where known, scalar tensors elsewhere."""
    static = x.shape.as_list()
    dynamic = tf.shape(x) if None in static else None
    return [d if d is not None else dynamic[i] for i, d in enumerate(static)]


def _two_spatial(spatial):
    return (spatial[0], 1) if len(spatial) == 1 else (spatial[0] * spatial[1], spatial[2])


def biased_variance(variance, count):
    """Undo Bessel's correction of the fused kernel's batch variance: ``σ²·(n − 1)/n``."""
    return variance * tf.maximum(count - 1.0, 0.0) / tf.maximum(count, 1.0)


def moving_average_delta(moving, value, weight):
    """``(moving − value)·weight``: subtracting it is one EMA step (weight = 1 − decay)."""
    return (moving - value) * weight


def debias_factor(weight, step):
    """``1 − (1 − weight)^step``, the zero-debias divisor of ``assign_moving_average``."""
    return 1.0 - tf.pow(1.0 - weight, step)
