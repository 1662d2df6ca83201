"""Pure projections onto a norm range and the non-negative orthant: Tensor -> Tensor.

``unit_norm`` (norm 1), ``min_max_norm`` (norm in ``[min_value, max_value]``) and
``non_neg``. The conventions (default ``axes``, half types reduced and scaled in
float32, range-guarded norms, threshold rounding) are those of
``tf1norm._math.projections``, whose ``max_norm`` and ``renorm`` cap a norm from above.
"""

import math

from tf1norm._math import norms as _norms
from tf1norm._math.norms import (
    accurate,
    all_of,
    below,
    guarded,
    low_norm,
    normal_scale,
    p_norm,
    safe_positive,
    scaled_parts,
)
from tf1norm._math.projections import _apply, _compute_dtype, _divide_safe
from tf1norm._src import axis_checks as _axis_checks
from tf1norm._src import checks as _checks
from tf1norm._src.compat import tf


def unit_norm(w, axes=None, epsilon=1e-12, name=None):
    """Scale every sub-tensor to unit L2 norm: ``s / sqrt(max(||s||², epsilon))``.

    This is ``tf.nn.l2_normalize(w, axes, epsilon)`` with the per-unit default
    axes of this module: the projection seed 001 wrote as a "weight
    normalization" constraint. It is *not* weight normalization (that trains a
    separate gain ``g``; see the README). All-zero sub-tensors stay zero.
    Keras ``UnitNorm`` divides by ``epsilon + ||s||`` with epsilon 1e-7 instead.
    Sub-tensors with norm below ``sqrt(epsilon)`` are scaled by
    ``1/sqrt(epsilon)`` (not to unit norm); huge ones (float32 norms above
    ~1.8e19) are normalized exactly, see the module docstring.

    Args:
      w: floating tensor. axes: as in ``max_norm``.
      epsilon: floor on the squared norm, a float > 0.
      name: optional name scope.

    Returns:
      A tensor of ``w``'s shape and dtype.
    """
    with tf.name_scope(name or "unit_norm"):
        w = _checks.float_tensor(w, "unit_norm")
        axes = _axis_checks.axes_tuple(axes, _checks.static_rank(w, "unit_norm"), "unit_norm")
        epsilon = _checks.positive_number(epsilon, "unit_norm", "epsilon")
        return _unit_norm(
            w, axes, _norms.threshold(epsilon, _compute_dtype(w), "unit_norm", "epsilon")
        )


def _unit_norm(w, axes, epsilon):
    """``w · rsqrt(max(Σw², ε))``, range-guarded; the half types scale in float32."""
    wide = tf.cast(w, epsilon.dtype)
    # x·x, not tf.square: Square's gradient 2x overflows near max-finite
    squared = tf.reduce_sum(wide * wide, axis=axes, keepdims=True)
    fast = _apply(w, wide, tf.math.rsqrt(tf.maximum(squared, epsilon)))
    if w.dtype == tf.float16:
        return fast
    low = 2 * low_norm(epsilon.dtype) ** 2  # on squares: eps >= 4·low_norm² is safe
    trusted = all_of(below(squared, math.inf), accurate(squared, low, epsilon))

    def slow():
        m, r = scaled_parts(wide, axes, norm_fn=lambda y, a, q: p_norm(y, q, a))
        unit = (wide / m) / _divide_safe(r)
        return tf.cast(
            tf.where(m * r >= tf.sqrt(epsilon), unit, wide * tf.math.rsqrt(epsilon)), w.dtype
        )

    return guarded(fast, trusted, slow)


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
        axes = _axis_checks.axes_tuple(axes, _checks.static_rank(w, "min_max_norm"), "min_max_norm")
        min_value, max_value, rate = check_min_max(min_value, max_value, rate)
        bounds = [
            _norms.threshold(v, w.dtype, "min_max_norm", arg, allow_zero=True)
            for v, arg in ((min_value, "min_value"), (max_value, "max_value"))
        ]
        rate = _norms.threshold(rate, _compute_dtype(w), "min_max_norm", "rate")
        return _min_max_guarded(w, axes, bounds, rate, min_value == 0)


def _min_max_guarded(w, axes, bounds, rate, from_zero):
    """Keras MinMaxNorm on the plain norm; units out of its safe range recomputed scaled."""
    norm = p_norm(w, 2, axes)
    finite = tf.where(norm < math.inf, norm, tf.zeros_like(norm))  # (1 - 1)·inf: NaN gradients
    target = rate * tf.clip_by_value(finite, *bounds) + (1.0 - rate) * finite
    nonzero, safe_norm = safe_positive(finite)
    changed = tf.not_equal(target, finite) & nonzero
    scale = tf.where(changed, target / safe_norm, tf.ones_like(norm))
    wide = tf.cast(w, norm.dtype)
    fast = _apply(w, wide, scale)  # x * 1.0 == x: unchanged units are bit-exact
    if w.dtype == tf.float16:
        return fast
    low = low_norm(norm.dtype)
    exact = accurate(norm, low, bounds[1]) if from_zero else tf.reduce_min(norm) >= low
    trusted = all_of(below(norm, math.inf), exact, normal_scale(scale))
    return guarded(fast, trusted, lambda: _min_max_scaled(wide, axes, bounds, rate, w.dtype))


def _min_max_scaled(wide, axes, bounds, rate, dtype):
    """``(x/m)·(rate·clip(n)/r) + (1 − rate)·x`` with ``n = m·r``; unchanged units exact."""
    m, r = scaled_parts(wide, axes, norm_fn=lambda y, a, q: p_norm(y, q, a))
    norm = m * r
    clipped = tf.clip_by_value(norm, *bounds)
    changed = tf.not_equal(clipped, norm) & (r > 0)
    moved = (wide / m) * (rate * clipped / _divide_safe(r)) + wide * (1.0 - rate)
    return tf.cast(tf.where(changed, moved, wide), dtype)


def check_min_max(min_value, max_value, rate, fn="min_max_norm"):
    """Validate MinMaxNorm arguments; return them as floats."""
    min_value = _checks.positive_number(min_value, fn, "min_value", allow_zero=True)
    max_value = _checks.positive_number(max_value, fn, "max_value")
    rate = _checks.positive_number(rate, fn, "rate")
    if max_value < min_value:
        raise ValueError(
            f"{fn}: `max_value` must be >= `min_value`; got max_value="
            f"{max_value!r}, min_value={min_value!r}. Swap them."
        )
    if rate > 1:
        raise ValueError(
            f"{fn}: `rate` must be in (0, 1]; got {rate!r}. Use rate=1.0 for a full projection."
        )
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
