"""Batch normalization for rank 2-5 inputs that always runs the fused kernel.

``FusedBatchNorm`` is TensorFlow's fast path, but it takes 4-D input only.
Per-channel statistics over every axis but the last do not depend on how the
other axes are grouped, so ``[N, D, H, W, C]`` (NDHWC, 3-D convolutions) is
reshaped to ``[N, D·H, W, C]``, ``[N, L, C]`` to ``[N, L, 1, C]`` and ``[N, C]``
to ``[N, 1, 1, C]``; the result is reshaped back. The output, the gradients
and the moving averages are those of
``tf.compat.v1.layers.batch_normalization(fused=False)``, with the same
variables under the same names, so checkpoints are interchangeable.
"""

from tf1norm import _checks
from tf1norm import keys
from tf1norm._tf import tf, v1


def _as_nhwc(x):
    """Reshape a rank 2-5 channels-last tensor to 4-D NHWC with the same channels."""
    rank = x.shape.rank
    shape = tf.shape(x)
    if rank == 4:
        return x
    if rank == 2:
        return tf.reshape(x, tf.stack([shape[0], 1, 1, shape[1]]))
    if rank == 3:
        return tf.reshape(x, tf.stack([shape[0], shape[1], 1, shape[2]]))
    return tf.reshape(x, tf.stack([shape[0], shape[1] * shape[2], shape[3], shape[4]]))


def _variables(channels, dtype, center, scale):
    def make(name, initializer, trainable=True):
        return v1.get_variable(name, [channels], dtype, initializer, trainable=trainable)

    gamma = make("gamma", v1.ones_initializer()) if scale else None
    beta = make("beta", v1.zeros_initializer()) if center else None
    mean = make("moving_mean", v1.zeros_initializer(), trainable=False)
    variance = make("moving_variance", v1.ones_initializer(), trainable=False)
    return gamma, beta, mean, variance


def _moving_average_updates(moving_mean, moving_variance, mean, variance, count, decay):
    """assign_sub((moving − batch)·decay), on the biased batch variance like fused=False."""
    biased = variance * tf.maximum(count - 1.0, 0.0) / tf.maximum(count, 1.0)
    return [moving_mean.assign_sub((moving_mean - mean) * decay, read_value=False),
            moving_variance.assign_sub((moving_variance - biased) * decay, read_value=False)]


def batch_norm(x, training=False, momentum=0.99, epsilon=1e-3, center=True, scale=True,
               name=None, reuse=None):
    """Batch normalization over every axis but the last, on the fused kernel.

    Training mode normalizes with the batch mean and *biased* batch variance
    and adds two ops to ``UPDATE_OPS`` that move ``moving_mean`` and
    ``moving_variance`` towards them: ``moving -= (moving − batch)·(1 − momentum)``
    (``create_train_op`` runs ``UPDATE_OPS`` before the gradients). Inference
    mode uses the moving statistics. ``y = γ·(x − μ)/sqrt(σ² + epsilon) + β``.

    Args:
      x: float32 or float16 tensor of rank 2-5, channels last (NC, NLC, NHWC,
        NDHWC), with a known channel dimension.
      training: Python bool or boolean scalar tensor.
      momentum: moving-average momentum in [0, 1), as in ``tf.compat.v1.layers``.
      epsilon: variance epsilon > 0 (default 1e-3, as in ``tf.compat.v1.layers``).
      center, scale: create ``beta`` / ``gamma``.
      name: variable scope, default ``batch_normalization`` (uniquified).
      reuse: reuse the variables of an existing scope.

    Returns:
      A tensor of ``x``'s shape and dtype.

    Raises:
      TypeError: ``x`` not float32/float16.
      ValueError: rank not 2-5, unknown channels, bad momentum or epsilon.
    """
    x = _check_input(x)
    momentum = _check_momentum(momentum)
    epsilon = _checks.positive_number(epsilon, "batch_norm", "epsilon")
    channels = int(x.shape[-1])
    with v1.variable_scope(name, default_name="batch_normalization", reuse=reuse):
        gamma, beta, moving_mean, moving_variance = _variables(channels, tf.float32, center,
                                                               scale)
        gamma = tf.ones([channels]) if gamma is None else gamma
        beta = tf.zeros([channels]) if beta is None else beta
        flat = _as_nhwc(x)
        static = training if isinstance(training, bool) else tf.get_static_value(training)
        if static is not None and not static:
            out, _, _ = v1.nn.fused_batch_norm(flat, gamma, beta, moving_mean, moving_variance,
                                               epsilon, is_training=False)
            return tf.reshape(out, tf.shape(x))
        out, mean, variance = v1.nn.fused_batch_norm(flat, gamma, beta, epsilon=epsilon,
                                                     is_training=True)
        if static is None:
            inference, _, _ = v1.nn.fused_batch_norm(flat, gamma, beta, moving_mean,
                                                     moving_variance, epsilon, is_training=False)
            out = tf.where(training, out, inference)
        decay = (1.0 - momentum) * (1.0 if static else tf.cast(training, tf.float32))
        count = tf.cast(tf.size(flat) // channels, tf.float32)
        for update in _moving_average_updates(moving_mean, moving_variance, mean, variance,
                                              count, decay):
            v1.add_to_collection(keys.UPDATE_OPS, update)
        return tf.reshape(out, tf.shape(x))


def _check_input(x):
    x = _checks.float_tensor(x, "batch_norm", "x")
    if x.dtype not in (tf.float32, tf.float16):
        raise TypeError(f"batch_norm: `x` must be float32 or float16 (the fused kernel's "
                        f"types); got {x.dtype.name}. Cast it, e.g. tf.cast(x, tf.float32).")
    rank = x.shape.rank
    if rank is None or not 2 <= rank <= 5:
        raise ValueError(f"batch_norm: `x` must have rank 2 to 5 (channels last); got rank "
                         f"{rank}. Reshape it, or use tf.compat.v1.layers for other layouts.")
    if x.shape[-1] is None:
        raise ValueError(f"batch_norm: the channel (last) dimension of `x` must be known; got "
                         f"shape {x.shape}. Set it with tf.ensure_shape.")
    return x


def _check_momentum(momentum):
    momentum = _checks.positive_number(momentum, "batch_norm", "momentum", allow_zero=True)
    if momentum >= 1.0:
        raise ValueError(f"batch_norm: `momentum` must be in [0, 1); got {momentum!r}. "
                         "tf.compat.v1.layers uses 0.99.")
    return momentum
