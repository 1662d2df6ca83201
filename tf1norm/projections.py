"""Pure norm projections: Tensor -> Tensor, no variables, no side effects.

Conventions shared by every function here
-----------------------------------------
``axes`` are the axes a norm is reduced over, as in ``tf.clip_by_norm``. The
default ``axes=None`` means every axis but the last, i.e. one norm per output
unit over its incoming weights:

=====  ====================  ======================  ================
rank   TF layout              what one norm covers     default axes
=====  ====================  ======================  ================
1      ``[n]``               the whole vector          ``(0,)``
2      dense ``[in, out]``   one unit's inputs         ``(0,)``
3      conv1d ``[W, I, O]``  one filter                ``(0, 1)``
4      conv2d HWIO           one filter                ``(0, 1, 2)``
5      conv3d DHWIO          one filter                ``(0, 1, 2, 3)``
=====  ====================  ======================  ================

Note that this differs from ``tf.clip_by_norm(axes=None)``, which takes one norm
of the whole tensor. float16 and bfloat16 inputs are reduced in float32 and the
scale is cast back. Gradients are finite everywhere, including all-zero
sub-tensors (their gradient through the norm is taken as 0).
"""

import math

from tf1norm import _checks
from tf1norm._tf import tf

_RENORM_EPSILON = 1e-7  # torch.renorm's constant


def _compute_dtype(x):
    return tf.float32 if x.dtype in (tf.float16, tf.bfloat16) else x.dtype


def _safe_positive(x, fill=1.0):
    """(mask x > 0, x with non-positive entries replaced by ``fill``)."""
    positive = x > 0
    return positive, tf.where(positive, x, tf.ones_like(x) * fill)


def p_norm(x, p, axes):
    """p-norm over ``axes`` (keepdims) with finite gradients at zero.

    ``p`` may be any float > 0 or ``math.inf``. For p == 2 the squares are summed
    directly; for other p, ``|x|**p`` is summed with zero entries masked so
    that p < 1 gives no infinite gradient. Computed in float32 for half types.
    """
    x = tf.cast(x, _compute_dtype(x))
    if p == math.inf:
        return tf.reduce_max(tf.abs(x), axis=axes, keepdims=True)
    if p == 1:
        return tf.reduce_sum(tf.abs(x), axis=axes, keepdims=True)
    if p == 2:
        total = tf.reduce_sum(tf.square(x), axis=axes, keepdims=True)
    else:
        nonzero, magnitude = _safe_positive(tf.abs(x))
        powered = tf.where(nonzero, tf.pow(magnitude, p), tf.zeros_like(magnitude))
        total = tf.reduce_sum(powered, axis=axes, keepdims=True)
    positive, safe_total = _safe_positive(total)
    root = tf.sqrt(safe_total) if p == 2 else tf.pow(safe_total, 1.0 / p)
    return tf.where(positive, root, tf.zeros_like(root))


def _shrink_where_over(x, norm, limit, epsilon):
    """Scale sub-tensors with ``norm > limit`` by ``limit / (norm + epsilon)``.

    The per-sub-tensor factor is exactly 1.0 where the norm is at or under the
    limit, and ``x * 1.0 == x`` bit for bit in IEEE arithmetic, so those
    sub-tensors come back unchanged without a full-size ``tf.where``. The
    denominator is made safe in the branch not taken, so gradients stay finite.
    """
    limit = tf.cast(limit, norm.dtype)
    over = norm > limit
    safe_norm = tf.where(over, norm, tf.ones_like(norm) * limit)
    scale = tf.where(over, limit / (safe_norm + epsilon), tf.ones_like(norm))
    return x * tf.cast(scale, x.dtype)


def max_norm(w, threshold, axes=None, name=None):
    """Max-norm projection: cap the L2 norm of every sub-tensor at ``threshold``.

    For each sub-tensor ``s`` reduced over ``axes``::

        s <- s * threshold / ||s||_2    if ||s||_2 > threshold
        s <- s                          otherwise (bit-exact)

    No epsilon is added, so a clipped sub-tensor has norm ``threshold`` up to
    rounding; unlike Keras ``MaxNorm`` (which divides by ``norm + 1e-7`` and so
    shrinks every sub-tensor slightly), weights under the threshold are
    returned unchanged. All-zero sub-tensors stay zero with finite gradients.

    Args:
      w: floating tensor or variable (float16, bfloat16, float32, float64).
      threshold: maximum L2 norm, a Python float > 0 or a scalar float tensor.
      axes: axes to reduce over (``tf.clip_by_norm`` meaning). ``None`` means
        every axis but the last (see the module table); ``axes=1`` on a matrix
        clips rows, as in the seed ``clip_by_norm(x, 10, axes=1)``.
      name: optional name scope.

    Returns:
      A tensor of ``w``'s shape and dtype.

    Raises:
      TypeError: ``w`` is not floating; ``axes`` is not int(s).
      ValueError: rank 0 or unknown rank; ``threshold`` <= 0 or not finite;
        ``axes`` out of range or repeated.

    Example::

        x = tf.constant([[0., 0.], [3., 4.], [30., 40.], [300., 400.]])
        tf1norm.max_norm(x, 10.0, axes=1)  # rows 3 and 4 become [6., 8.]

    References:
      Srivastava et al., "Dropout: a simple way to prevent neural networks from
      overfitting", JMLR 2014, section 5.1 (max-norm regularization).
    """
    with tf.name_scope(name or "max_norm"):
        w = _checks.float_tensor(w, "max_norm")
        rank = _checks.static_rank(w, "max_norm")
        axes = _checks.axes_tuple(axes, rank, "max_norm")
        threshold = _checks.positive_scalar(threshold, "max_norm", "threshold")
        return _cap_l2_norm(w, axes, threshold)


def max_norm_assignment(w, threshold, axes=None, name=None):
    """``max_norm`` for values that are assigned to a variable, never differentiated.

    Bit for bit the same forward as ``max_norm``, without its hand-written
    gradient: ``tf.custom_gradient`` scans every global variable of the graph
    on each call in graph mode, so building one projection per kernel of a
    large model would cost time quadratic in the model. The train op's
    projections, ``MaxNorm`` constraints and embedding row projections use this.
    """
    with tf.name_scope(name or "max_norm"):
        w = _checks.float_tensor(w, "max_norm")
        axes = _checks.axes_tuple(axes, _checks.static_rank(w, "max_norm"), "max_norm")
        threshold = _checks.positive_scalar(threshold, "max_norm", "threshold")
        return _cap_forward(w, axes, tf.cast(threshold, _compute_dtype(w)))[0]


def _cap_forward(x, axes, limit):
    """``(x·t/max(n, t), n, wide x, scale)``: one EuclideanNorm pass, one multiply.

    ``t / max(n, t)`` is ``min(t/n, 1)`` with one op fewer, and exactly 1.0
    for ``n <= t`` (zero sub-tensors included).
    """
    wide = tf.cast(x, limit.dtype)
    norm = tf.math.reduce_euclidean_norm(wide, axis=axes, keepdims=True)
    scale = limit / tf.maximum(norm, limit)
    return x * tf.cast(scale, x.dtype), norm, wide, scale  # x * 1.0 == x: bit-exact under t


def _cap_l2_norm(w, axes, threshold):
    """``max_norm`` with few, large ops: it runs after every training step.

    Forward: one ``EuclideanNorm`` pass, ``scale = t / max(n, t)`` (exactly
    1.0 when ``n <= t``, zero sub-tensors included), one multiply. The gradient is written out, because the built-in
    ``EuclideanNorm`` gradient is NaN at zero: for sub-tensors over the
    threshold ``d(t·s/n) = (t/n)·(dy − s·<s, dy>/n²)``, elsewhere ``dy``.
    """
    compute = _compute_dtype(w)
    limit = tf.cast(threshold, compute)

    @tf.custom_gradient
    def cap(x):
        capped, norm, wide, scale = _cap_forward(x, axes, limit)

        def grad(dy):
            upstream = tf.cast(dy, compute)
            over = norm > limit
            safe_norm = tf.where(over, norm, tf.ones_like(norm))
            dot = tf.reduce_sum(wide * upstream, axis=axes, keepdims=True)
            correction = tf.where(over, scale * dot / tf.square(safe_norm),
                                  tf.zeros_like(norm))
            return tf.cast(scale * upstream - correction * wide, x.dtype)

        return capped, grad

    return cap(w)


def renorm(x, p, axis, maxnorm, name=None):
    """Exactly ``torch.renorm(x, p, axis, maxnorm)`` for TensorFlow.

    Each slice ``x[..., i, ...]`` along ``axis`` whose p-norm (taken over all
    the other axes) exceeds ``maxnorm`` is multiplied by
    ``maxnorm / (norm + 1e-7)``; other slices are returned bit-exact.

    Args:
      x: floating tensor of rank >= 2 (torch.renorm requires that too).
      p: norm order, a float > 0 or ``math.inf``.
      axis: the axis that indexes the slices (torch's ``dim``).
      maxnorm: a Python float > 0 or a scalar float tensor.
      name: optional name scope.

    Returns:
      A tensor of ``x``'s shape and dtype.

    Raises:
      TypeError, ValueError: as for ``max_norm``; also ``p <= 0`` and rank < 2.

    Example::

        x = tf.constant([[3., 4.], [30., 40.]])
        tf1norm.renorm(x, p=2, axis=0, maxnorm=10.0)  # [[3., 4.], [6., 8.]]
    """
    with tf.name_scope(name or "renorm"):
        x = _checks.float_tensor(x, "renorm", "x")
        rank = _checks.static_rank(x, "renorm", "x", minimum=2)
        axis = _checks.single_axis(axis, rank, "renorm")
        p = _check_p(p)
        maxnorm = _checks.positive_scalar(maxnorm, "renorm", "maxnorm")
        axes = tuple(a for a in range(rank) if a != axis)
        return _shrink_where_over(x, p_norm(x, p, axes), maxnorm, _RENORM_EPSILON)


def _check_p(p):
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"renorm: `p` must be a Python number; got {p!r}. "
                        "Pass e.g. p=2.")
    if not p > 0 or math.isnan(p):
        raise ValueError(f"renorm: `p` must be > 0; got {p!r}. "
                         "Use p=2 for the Euclidean norm, math.inf for the max norm.")
    return float(p)


def unit_norm(w, axes=None, epsilon=1e-12, name=None):
    """Scale every sub-tensor to unit L2 norm: ``s / sqrt(max(||s||², epsilon))``.

    This is ``tf.nn.l2_normalize(w, axes, epsilon)`` with the per-unit default
    axes of this module: the projection seed 001 wrote as a "weight
    normalization" constraint. It is *not* weight normalization (that trains a
    separate gain ``g``; see the README). All-zero sub-tensors stay zero.
    Keras ``UnitNorm`` divides by ``epsilon + ||s||`` with epsilon 1e-7 instead.

    Args:
      w: floating tensor. axes: as in ``max_norm``.
      epsilon: floor on the squared norm, a float > 0.
      name: optional name scope.

    Returns:
      A tensor of ``w``'s shape and dtype.
    """
    with tf.name_scope(name or "unit_norm"):
        w = _checks.float_tensor(w, "unit_norm")
        axes = _checks.axes_tuple(axes, _checks.static_rank(w, "unit_norm"), "unit_norm")
        epsilon = _checks.positive_number(epsilon, "unit_norm", "epsilon")
        wide = tf.cast(w, _compute_dtype(w))
        squared = tf.reduce_sum(tf.square(wide), axis=axes, keepdims=True)
        return w * tf.cast(tf.math.rsqrt(tf.maximum(squared, epsilon)), w.dtype)


def min_max_norm(w, min_value=0.0, max_value=1.0, rate=1.0, axes=None, name=None):
    """Keep every sub-tensor's L2 norm inside ``[min_value, max_value]``.

    With ``n = ||s||_2`` and ``target = rate * clip(n, min, max) + (1 - rate) * n``
    (Keras ``MinMaxNorm`` semantics), ``s <- s * target / n``. Sub-tensors
    already inside the interval are returned bit-exact when ``rate == 1``;
    all-zero sub-tensors stay zero (they have no direction to scale).

    Args:
      w: floating tensor. axes: as in ``max_norm``.
      min_value: lower norm bound, >= 0. max_value: upper bound, >= min_value, > 0.
      rate: in (0, 1]; 1 projects fully, smaller values move part way.
      name: optional name scope.

    Returns:
      A tensor of ``w``'s shape and dtype.
    """
    with tf.name_scope(name or "min_max_norm"):
        w = _checks.float_tensor(w, "min_max_norm")
        axes = _checks.axes_tuple(axes, _checks.static_rank(w, "min_max_norm"),
                                  "min_max_norm")
        min_value, max_value, rate = check_min_max(min_value, max_value, rate)
        norm = p_norm(w, 2, axes)
        target = rate * tf.clip_by_value(norm, min_value, max_value) + (1.0 - rate) * norm
        nonzero, safe_norm = _safe_positive(norm)
        changed = tf.not_equal(target, norm) & nonzero
        scale = tf.where(changed, target / safe_norm, tf.ones_like(norm))
        return w * tf.cast(scale, w.dtype)  # x * 1.0 == x: unchanged units are bit-exact


def check_min_max(min_value, max_value, rate, fn="min_max_norm"):
    """Validate MinMaxNorm arguments; return them as floats."""
    min_value = _checks.positive_number(min_value, fn, "min_value", allow_zero=True)
    max_value = _checks.positive_number(max_value, fn, "max_value")
    rate = _checks.positive_number(rate, fn, "rate")
    if max_value < min_value:
        raise ValueError(f"{fn}: `max_value` must be >= `min_value`; got max_value="
                         f"{max_value!r}, min_value={min_value!r}. Swap them.")
    if rate > 1:
        raise ValueError(f"{fn}: `rate` must be in (0, 1]; got {rate!r}. "
                         "Use rate=1.0 for a full projection.")
    return min_value, max_value, rate


def non_neg(w, name=None):
    """Zero the negative entries: ``w * (w >= 0)`` (Keras ``NonNeg`` semantics).

    Args:
      w: floating tensor of any rank. name: optional name scope.

    Returns:
      A tensor of ``w``'s shape and dtype.
    """
    with tf.name_scope(name or "non_neg"):
        w = _checks.float_tensor(w, "non_neg")
        return w * tf.cast(w >= 0, w.dtype)
