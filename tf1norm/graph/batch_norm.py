"""Batch normalization for rank 2-5 inputs that always runs the fused kernel.

``FusedBatchNorm`` is TensorFlow's fast path, but it takes 4-D input only.
Per-channel statistics over every axis but the channel axis do not depend on
how the other axes are grouped, so the input is reshaped to 4-D, normalized and
reshaped back:

=====  ================  ===================  ================  ===================
rank   channels last     as fused input       channels first    as fused input
=====  ================  ===================  ================  ===================
2      ``[N, C]``        ``[N, 1, 1, C]``     (same)            ``[N, 1, 1, C]``
3      ``[N, L, C]``     ``[N, L, 1, C]``     ``[N, C, L]``     ``[N, C, L, 1]``
4      NHWC              NHWC                 NCHW              NCHW
5      NDHWC             ``[N, D·H, W, C]``   NCDHW             ``[N, C, D·H, W]``
=====  ================  ===================  ================  ===================

Two front ends share the code here: ``tf1norm.batch_norm`` (the names and
defaults of ``tf.compat.v1.layers.batch_normalization``) and
``tf1norm.slim_layers.batch_norm`` (tf-slim's). They differ only in how they
create the variables and in the ``Options`` they pass to ``normalize``.

The four variables (``gamma``, ``beta``, ``moving_mean``, ``moving_variance``)
are created with the enclosing scope's partitioner switched off, so under
``variable_scope(..., partitioner=...)`` they stay whole. (The layers API
keeps only the moving statistics whole and partitions ``gamma`` and ``beta``;
``Saver`` restores its checkpoints into the whole variables.)
"""

import collections
import contextlib

import numpy as np

from tf1norm._src import checks as _checks
from tf1norm.graph import keys
from tf1norm._src.compat import tf, v1
from tf1norm._math.batch_stats import biased_variance, debias_factor, fused_layout
from tf1norm._math.batch_stats import moving_average_delta

PARAM_NAMES = ("beta", "gamma", "moving_mean", "moving_variance")
DEFAULT_INITIALIZERS = {
    "beta": v1.zeros_initializer,
    "gamma": v1.ones_initializer,
    "moving_mean": v1.zeros_initializer,
    "moving_variance": v1.ones_initializer,
}

Params = collections.namedtuple("Params", "gamma beta moving_mean moving_variance")


class Options(
    collections.namedtuple(
        "Options", "decay epsilon channels_first unbiased_variance zero_debias updates_collections"
    )
):
    """How ``normalize`` runs and updates (already validated by the front end).

    Fields:
      decay: moving-average decay ``d``: ``moving -= (moving − batch)·(1 − d)``.
      epsilon: variance epsilon.
      channels_first: channels on axis 1 (NCHW, NCDHW) rather than last.
      unbiased_variance: ``moving_variance`` follows the Bessel-corrected batch
        variance (tf-slim's fused paths) instead of the biased one (non-fused).
      zero_debias: debias ``moving_mean`` as ``assign_moving_average(zero_debias=True)``.
      updates_collections: collection names for the update ops, None to run
        them in place (the output depends on them), or ``()`` for no updates.
    """


# ----------------------------------------------------------------- variables


@contextlib.contextmanager
def unpartitioned_scope():
    """Re-enter the current variable scope with its partitioner switched off."""
    with v1.variable_scope(v1.get_variable_scope()) as scope:
        scope.set_partitioner(None)
        yield scope


def create_params(make, center, scale, affine_order=("gamma", "beta")):
    """``Params`` of whole variables; ``make(name)`` creates one (``None`` when disabled).

    ``affine_order`` fixes the creation order (the layers API makes ``gamma``
    first, tf-slim ``beta``), hence the order of ``global_variables()``.
    """
    wanted = {"gamma": scale, "beta": center, "moving_mean": True, "moving_variance": True}
    with unpartitioned_scope():
        made = {name: make(name) for name in affine_order + PARAM_NAMES[2:] if wanted[name]}
    return Params(*(made.get(name) for name in Params._fields))


def _layers_variable(name, channels):
    return v1.get_variable(
        name,
        [channels],
        tf.float32,
        DEFAULT_INITIALIZERS[name](),
        trainable=name in ("gamma", "beta"),
    )


def _debias_variables(moving):
    """The ``biased`` and ``local_step`` variables of ``assign_moving_average(zero_debias=True)``.

    TensorFlow opens a variable scope named after the variable's full name
    *inside* the current scope, so in scope ``a/BatchNorm`` they are
    ``a/BatchNorm/a/BatchNorm/moving_mean/biased`` and ``.../local_step``; tf-slim
    checkpoints carry these names. Both are zero-initialized, non-trainable and
    in ``GLOBAL_VARIABLES`` only.
    """
    with unpartitioned_scope(), v1.variable_scope(moving.op.name):
        biased = v1.get_variable(
            "biased", moving.shape, moving.dtype, v1.zeros_initializer(), trainable=False
        )
        step = v1.get_variable(
            "local_step", [], moving.dtype, v1.zeros_initializer(), trainable=False
        )
    return biased, step


# ----------------------------------------------------------------- the graph


def normalize(x, params, training, options):
    """Normalize ``x`` (validated, rank 2-5) with ``params``; updates as ``options`` say.

    ``training`` is True, False or a boolean scalar tensor (see ``static_training``).
    Returns a tensor of ``x``'s shape; with a tensor ``training`` the update ops
    run with weight 0 (a no-op) when it is False.
    """
    flat, data_format = fused_layout(x, options.channels_first)
    channels = params.moving_mean.shape[0]
    gamma = tf.ones([channels]) if params.gamma is None else params.gamma
    beta = tf.zeros([channels]) if params.beta is None else params.beta

    def infer():
        return v1.nn.fused_batch_norm(
            flat,
            gamma,
            beta,
            params.moving_mean,
            params.moving_variance,
            options.epsilon,
            data_format=data_format,
            is_training=False,
        )[0]

    if training is False:
        return _restore_shape(infer(), x)
    out, mean, variance = v1.nn.fused_batch_norm(
        flat, gamma, beta, epsilon=options.epsilon, data_format=data_format, is_training=True
    )
    if training is not True:
        out = tf.where(training, out, infer())
    if options.updates_collections == ():
        return _restore_shape(out, x)
    count = tf.size(flat) // channels
    if not options.unbiased_variance:
        variance = biased_variance(variance, tf.cast(count, tf.float32))
    mean, variance = _checked_statistics(mean, variance, count, training, params, x)
    updates = _update_ops(params, mean, variance, training, options)
    return _restore_shape(_attach(out, updates, options.updates_collections), x)


def _checked_statistics(mean, variance, count, training, params, x):
    """Batch statistics that cannot write NaN into the moving averages.

    An empty batch has a NaN mean and variance. In training mode that is an
    error: a statically empty ``x`` raises ValueError here, a batch that is
    empty at run time fails a ``tf.debugging.Assert`` the updates depend on.
    With a tensor ``training`` that is False the updates have weight 0 and
    read the moving statistics themselves (0·NaN would still be NaN).
    """
    message = (
        "batch_norm: `x` has an empty batch (0 examples) in training mode; its mean and "
        "variance are NaN and would be written into moving_mean and moving_variance. "
        "Skip empty batches, or run them with training=False; got shape"
    )
    if training is True and x.shape.num_elements() == 0:
        raise ValueError(f"{message} {x.shape}.")
    ok = count > 0
    if training is not True:
        ok = tf.logical_or(tf.logical_not(training), ok)
        mean = tf.where(training, mean, params.moving_mean)
        variance = tf.where(training, variance, params.moving_variance)
    check = tf.debugging.Assert(ok, [message, tf.shape(x)])
    with tf.control_dependencies([check]):
        return tf.identity(mean), tf.identity(variance)


def _restore_shape(out, x):
    return out if x.shape.rank == 4 else tf.reshape(out, tf.shape(x))


def _update_ops(params, mean, variance, training, options):
    """The two moving-average updates, in tf-slim's order (mean, then variance).

    Like ``assign_moving_average``'s, each is the assign's result (its ``.op``
    is the assign op) under a name scope ``AssignMovingAvg`` (``_1`` for the variance).
    """
    weight = tf.constant(1.0 - options.decay, tf.float32)
    gate = None if training is True else tf.cast(training, tf.float32)
    gated = weight if gate is None else weight * gate
    with tf.name_scope("AssignMovingAvg"):
        if options.zero_debias:
            mean_update = _assign_zero_debiased(params.moving_mean, mean, weight, gate, training)
        else:
            mean_update = params.moving_mean.assign_sub(
                moving_average_delta(params.moving_mean, mean, gated)
            )
    with tf.name_scope("AssignMovingAvg"):
        variance_update = params.moving_variance.assign_sub(
            moving_average_delta(params.moving_variance, variance, gated)
        )
    return [mean_update, variance_update]


def _assign_zero_debiased(moving, value, weight, gate, training):
    """``assign_moving_average(moving, value, decay, zero_debias=True)``, gated by ``training``.

    ``gate`` is None when training is statically True, else ``training`` as 0.0/1.0:
    a closed gate leaves ``biased`` and ``local_step`` as they are and writes
    ``moving`` back unchanged.
    """
    biased, local_step = _debias_variables(moving)
    new_biased = biased.assign_sub(
        moving_average_delta(biased, value, weight if gate is None else weight * gate)
    )
    step = local_step.assign_add(1.0 if gate is None else gate)
    unbiased = new_biased / debias_factor(weight, step)
    if gate is not None:
        unbiased = tf.where(training, unbiased, moving)
    return moving.assign(unbiased)


def _attach(out, updates, collections_):
    """Updates in place (``out`` depends on them) or into the update collections."""
    if collections_ is None:
        with tf.control_dependencies(updates):
            return tf.identity(out)
    for update in updates:
        v1.add_to_collections(collections_, update)
    return out


# ----------------------------------------------------------------- validation


def check_input(x, fn, arg):
    """``x`` as a float32/float16 tensor of rank 2-5, or TypeError/ValueError."""
    x = _checks.float_tensor(x, fn, arg)
    if x.dtype not in (tf.float32, tf.float16):
        raise TypeError(
            f"{fn}: `{arg}` must be float32 or float16 (the fused kernel's types); "
            f"got {x.dtype.name}. Cast it, e.g. tf.cast({arg}, tf.float32)."
        )
    rank = x.shape.rank
    if rank is None:
        raise ValueError(
            f"{fn}: `{arg}` has undefined rank; it must have rank 2 to 5. Give it "
            "a static shape, e.g. with tf.ensure_shape."
        )
    if not 2 <= rank <= 5:
        raise ValueError(
            f"{fn}: `{arg}` must have rank 2 to 5; got rank {rank}. Reshape it, "
            "or use tf.compat.v1.layers for other layouts."
        )
    return x


def channels_of(x, channels_first, fn, arg):
    """The static channel count of ``x`` (axis 1 or -1), or ValueError."""
    channels = x.shape[1 if channels_first else -1]
    if channels is None:
        raise ValueError(
            f"{fn}: `{arg}` has an undefined channel dimension "
            f"({'1' if channels_first else 'last'}); got shape {x.shape}. Set it "
            "with tf.ensure_shape."
        )
    return int(channels)


def check_decay(decay, fn, arg):
    """A Python number in [0, 1), or TypeError/ValueError."""
    return _checks.fraction_below_one(decay, fn, arg, "Typical values are 0.9, 0.99 or 0.999.")


def static_training(training, fn, arg):
    """True or False when known at graph-construction time, else a boolean scalar tensor."""
    if isinstance(training, (bool, np.bool_)):
        return bool(training)
    fix = "Pass True, False or e.g. tf.compat.v1.placeholder_with_default(False, [])."
    if not isinstance(training, (tf.Tensor, tf.Variable)):
        raise TypeError(
            f"{fn}: `{arg}` must be a Python bool or a boolean scalar tensor; got "
            f"{training!r}. {fix}"
        )
    tensor = tf.convert_to_tensor(training)
    if tensor.dtype != tf.bool or tensor.shape.rank not in (None, 0):
        raise TypeError(
            f"{fn}: `{arg}` must be a Python bool or a boolean scalar tensor; got a "
            f"{tensor.dtype.name} tensor of shape {tensor.shape}. {fix}"
        )
    static = tf.get_static_value(tensor)
    return tensor if static is None else bool(static)


def _channels_first_axis(axis, rank):
    """Whether ``axis`` (the layers API's channel axis) is 1 rather than the last."""
    if isinstance(axis, bool) or not isinstance(axis, int) or axis not in (-1, 1, rank - 1):
        raise ValueError(
            f"batch_norm: `axis` must be the channel axis, -1 (or {rank - 1}, "
            f"channels last) or 1 (channels first); got {axis!r}. Transpose the "
            "input so that its channels come first or last."
        )
    return axis == 1 and rank > 2


# ----------------------------------------------------------------- layers API


def batch_norm(
    x,
    training=False,
    momentum=0.99,
    epsilon=1e-3,
    center=True,
    scale=True,
    name=None,
    reuse=None,
    axis=-1,
):
    """Batch normalization over every axis but the channel axis, on the fused kernel.

    Training mode normalizes with the batch mean and *biased* batch variance
    and adds two ops to ``UPDATE_OPS`` that move ``moving_mean`` and
    ``moving_variance`` towards them: ``moving -= (moving − batch)·(1 − momentum)``
    (``create_train_op`` runs ``UPDATE_OPS`` before the gradients). Inference
    mode uses the moving statistics. ``y = γ·(x − μ)/sqrt(σ² + epsilon) + β``.
    Output, gradients, moving averages and variable names are those of
    ``tf.compat.v1.layers.batch_normalization(fused=False)``, so checkpoints
    are interchangeable. Under a partitioned variable scope the four variables
    stay whole (the layers API would partition ``gamma`` and ``beta``; its
    checkpoints still restore).

    Args:
      x: float32 or float16 tensor of rank 2-5 (NC, NLC/NCL, NHWC/NCHW,
        NDHWC/NCDHW) with a known channel dimension.
      training: Python bool or boolean scalar tensor. With a tensor both
        outputs are built and the update ops are no-ops while it is False.
      momentum: moving-average momentum in [0, 1), as in ``tf.compat.v1.layers``.
      epsilon: variance epsilon > 0 (default 1e-3, as in ``tf.compat.v1.layers``).
      center, scale: create ``beta`` / ``gamma``.
      name: variable scope, default ``batch_normalization`` (uniquified).
      reuse: reuse the variables of an existing scope.
      axis: the channel axis, -1 (channels last, default) or 1 (channels first).

    Returns:
      A tensor of ``x``'s shape and dtype.

    Raises:
      TypeError: ``x`` not float32/float16; ``training`` not a bool.
      ValueError: rank not 2-5, unknown channels, bad axis, momentum or epsilon.

    Example:
      y = tf1norm.batch_norm(images_nchw, training=is_training, axis=1)
    """
    x = check_input(x, "batch_norm", "x")
    channels_first = _channels_first_axis(axis, x.shape.rank)
    channels = channels_of(x, channels_first, "batch_norm", "x")
    options = Options(
        decay=check_decay(momentum, "batch_norm", "momentum"),
        epsilon=_checks.positive_number(epsilon, "batch_norm", "epsilon"),
        channels_first=channels_first,
        unbiased_variance=False,
        zero_debias=False,
        updates_collections=keys.UPDATE_OPS,
    )
    training = static_training(training, "batch_norm", "training")
    with v1.variable_scope(name, default_name="batch_normalization", reuse=reuse):
        params = create_params(lambda n: _layers_variable(n, channels), center, scale)
        return normalize(x, params, training, options)
