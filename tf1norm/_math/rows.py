"""The row norms of ``tf1norm.embedding_lookup``: cap or renormalize ``[n, dim]`` rows.

``max_norm_rows`` caps every row's p-norm at ``max_norm`` exactly (the
``"after_update"`` projection); ``torch_renorm_rows`` is
``torch.embedding_renorm_`` on gathered rows (the ``"torch"`` mode). Both leave
rows at or under ``max_norm`` bit for bit; ``tf1norm.graph.embedding`` gathers
the rows and assigns the results.
"""

import math

from tf1norm._math import norms as _norms
from tf1norm._math.norms import RENORM_EPSILON, renorm_scale, renorm_scaled, shrink_where_over
from tf1norm._src import eager
from tf1norm._src import embedding_checks as _arg
from tf1norm._src.compat import tf

_UNIT = 2.0**-53  # float64 unit roundoff: the norms of max_norm_rows are float64
# Relative rounding error of max_norm_rows's scaled rows beyond the float64 ones:
# float32 rounds the scale and the product; the half types round the float64
# product once, but Eigen casts float64 to them through float32.
_SCALING_ERROR = {
    tf.float16: 2.0**-11 + 2.0**-24,
    tf.bfloat16: 2.0**-8 + 2.0**-24,
    tf.float32: 2.0**-23,
    tf.float64: 0.0,
}
_HALF = (tf.float16, tf.bfloat16)


def max_norm_rows(rows, max_norm, norm_type=2.0):
    """Cap the p-norm of every row of ``rows`` at ``max_norm``, exactly.

    For each row ``r`` (norms computed in float64 as ``n̂``)::

        r <- r · max_norm·(1 − m) / n̂    if n̂ > max_norm·(1 − γ − 4u)
        r <- r                           otherwise (bit for bit)

    with ``u = 2⁻⁵³``, ``γ = (dim + 752)·max(1, 1/p)·u`` (a bound on the
    relative error of ``n̂``) and ``m = ρ + 3γ + 12u``. ``ρ`` is the rounding
    of the scaled row in its dtype: float32 and float64 rows are multiplied by
    the scale rounded to their dtype (ρ = 2⁻²³ float32, 0 float64, whose one
    rounding ``12u`` covers); half-type rows are scaled in float64 and rounded
    once (ρ = 2⁻¹¹ + 2⁻²⁴ float16, 2⁻⁸ + 2⁻²⁴ bfloat16: Eigen casts through
    float32), which also keeps a tiny scale from rounding as a subnormal.

    Guarantee: the exact p-norm of every returned row (the real number, no
    rounding) is <= ``max_norm``; a scaled row's is >= ``max_norm·(1 − 2m)``,
    i.e. within about two ulps of the dtype (a few 1e-13 relative in float64),
    and the projection is idempotent. The error analysis assumes the scaled
    entries stay normal numbers: in float16, below 2⁻¹⁴ they round with an
    absolute error of 2⁻²⁵ and a row can then pass ``max_norm`` when
    ``max_norm < 2⁻¹⁴·dim^(1/p)``; in float32 the scale must stay above 2⁻¹²⁶.
    Norms of ``|x|^p`` beyond the float64 range (``p`` above ~8 on float32
    entries near their maximum) overflow.

    Args:
      rows: ``[n, dim]`` floating tensor with a static ``dim``.
      max_norm: Python float > 0.
      norm_type: ``p`` of the p-norm, a float > 0 or ``math.inf``.

    Returns:
      A tensor of ``rows``'s shape and dtype.
    """
    fn = "max_norm_rows"
    max_norm, norm_type = _arg.checked_norm(fn, max_norm, norm_type)
    rows, dim = _arg.checked_rows(fn, rows)
    wide = tf.cast(rows, tf.float64)
    norm = row_norms(wide, norm_type)
    error = (dim + 752) * max(1.0, 1.0 / norm_type) * _UNIT
    over = norm > max_norm * (1.0 - error - 4 * _UNIT)
    target = max_norm * (1.0 - (_SCALING_ERROR[rows.dtype.base_dtype] + 3 * error + 12 * _UNIT))
    scale = tf.where(over, target / norm, tf.constant(1.0, tf.float64))
    if rows.dtype.base_dtype in _HALF:
        return tf.cast(wide * scale, rows.dtype)  # exact round trip where the scale is 1
    fast = rows * tf.cast(scale, rows.dtype)  # x · 1.0 == x where the scale is 1
    # float64 rows can overflow Σx² (or underflow it): those rows are recomputed scaled
    trusted = _norms.all_of(
        _trusted_norm(norm, max_norm, norm_type), _norms.normal_scale(tf.cast(scale, rows.dtype))
    )
    return _norms.guarded(
        fast,
        trusted,
        lambda: _norms.cap_scaled(
            wide,
            (1,),
            norm_type,
            lambda n: n > max_norm * (1.0 - error - 4 * _UNIT),
            target,
            rows.dtype,
        ),
    )


def _trusted_norm(norm, max_norm, norm_type):
    """Scalar: every plain row norm is exact enough to compare with ``max_norm`` (``_norms``)."""
    if norm_type == math.inf:
        return True
    low = _norms.low_norm(norm.dtype, norm_type)
    return _norms.all_of(
        _norms.below(norm, math.inf), _norms.accurate(norm, low, tf.constant(max_norm, norm.dtype))
    )


def torch_renorm_rows(rows, max_norm, norm_type=2.0):
    """``torch.embedding_renorm_`` on gathered rows: ``r·max_norm/(‖r‖_p + 1e-7)`` if over.

    As torch's CPU kernel: the norm is computed in the rows' dtype (float32 for
    the half types, then rounded to them), compared with ``max_norm`` and
    turned into the scale in float64, and the scale is rounded to the dtype
    before the multiply. Rows at or under max_norm come back bit for bit. No
    bound holds exactly: a renormalized row can exceed max_norm by rounding
    (by up to ~1.4e-7 for max_norm 1 in float32), as in torch.

    Args:
      rows: ``[n, dim]`` floating tensor.
      max_norm: Python float > 0.
      norm_type: ``p`` of the p-norm, a float > 0 or ``math.inf`` (torch's ``norm_type``).

    Returns:
      A tensor of ``rows``'s shape and dtype.
    """
    max_norm, norm_type = _arg.checked_norm("torch_renorm_rows", max_norm, norm_type)
    rows, _ = _arg.checked_rows("torch_renorm_rows", rows)
    wide = tf.cast(rows, tf.float32) if rows.dtype.base_dtype in _HALF else rows
    plain = row_norms(wide, norm_type)
    norm = tf.cast(tf.cast(plain, rows.dtype), tf.float64)
    # a float64 constant: tf.cast(1.3, tf.float64) would round 1.3 to float32 first
    limit = tf.constant(max_norm, tf.float64)
    fast = shrink_where_over(rows, norm, limit, RENORM_EPSILON)
    # Where torch's own arithmetic overflows or underflows (it then zeroes the row or
    # skips it) the row is renormalized with the same formula on a float64, scaled norm.
    trusted = _norms.all_of(
        _trusted_norm(plain, max_norm, norm_type),
        _norms.below(norm, math.inf),
        _norms.normal_scale(tf.cast(renorm_scale(norm, limit, RENORM_EPSILON), rows.dtype)),
    )
    return _norms.guarded(
        fast,
        trusted,
        lambda: renorm_scaled(tf.cast(rows, tf.float64), norm_type, (1,), limit, rows.dtype),
    )


def row_norms(rows, norm_type):
    """p-norm of every row of ``[n, dim]`` ``rows``, ``[n, 1]``, in their dtype. Forward only.

    ``sqrt(Σ x²)`` (one ``EuclideanNorm``) for p = 2, ``Σ |x|`` for 1,
    ``max |x|`` for inf, ``(Σ |x|^p)^(1/p)`` otherwise. No gradient care
    (``tf1norm._math.projections.p_norm`` has it): the embedding renorms and
    projections are assigned or stop-gradient'ed, never differentiated.
    """
    if norm_type == 2:
        return eager.euclidean_norm(rows, 1)
    magnitude = tf.abs(rows)
    if norm_type == math.inf:
        return tf.reduce_max(magnitude, axis=1, keepdims=True)
    if norm_type == 1:
        return tf.reduce_sum(magnitude, axis=1, keepdims=True)
    return tf.reduce_sum(magnitude**norm_type, axis=1, keepdims=True) ** (1.0 / norm_type)
