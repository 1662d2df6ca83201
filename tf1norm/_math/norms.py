"""Overflow- and underflow-safe norm arithmetic shared by every projection.

Why: ``sqrt(Σ x²)`` overflows once a float32 unit's norm passes ~1.8e19 (and
any float16 unit whose Σ x² passes 65504), and underflows to 0 for entries
near 1e-23 (float32), so a plain projection returns zeros, NaN, or leaves a
unit that should be projected untouched.

The scheme, per unit (sub-tensor reduced over ``axes``):

* **compute dtype**: float16 and bfloat16 are reduced in float32; float32 and
  float64 in their own dtype.
* **fast path**: the plain norm and scale, exactly as before. A scalar
  predicate, from one or two reductions over the ``[units]`` norms or scales,
  says whether every unit's result can be trusted (norm finite, not where
  squares lose precision to underflow, scale a normal number); float16 needs
  none (its float32 sums cannot leave the range).
* **safe path**: only when the predicate fails (a ``tf.cond``, so the fast
  path pays no full-size op), for all units of the tensor:
  the unit is written ``x = m · (x / m)`` with ``m = max |x|`` (under
  ``stop_gradient``), its norm is ``n = m · r`` with ``r = ‖x / m‖`` in
  ``[1, N^(1/p)]``, and a projection to target norm ``T`` is computed as
  ``(x / m) · (T / r)``: no intermediate leaves the dtype's range unless the
  result itself does.

Thresholds given as Python numbers are rounded directly from the Python float
to the weight's dtype (``threshold``), so a cap of 1.1 on float64 stays 1.1.
"""

import math

import ml_dtypes
import numpy as np

from tf1norm._src import bits as _bits
from tf1norm._src import eager
from tf1norm._src.compat import tf

HALF = (tf.float16, tf.bfloat16)
RENORM_EPSILON = 1e-7  # torch.renorm's constant


def compute_dtype(dtype):
    """float32 for float16/bfloat16, else ``dtype`` itself."""
    dtype = tf.as_dtype(dtype).base_dtype
    return tf.float32 if dtype in HALF else dtype


def finfo(dtype):
    """NumPy ``finfo`` of a TF floating dtype (bfloat16 through ml_dtypes)."""
    return ml_dtypes.finfo(tf.as_dtype(dtype).base_dtype.as_numpy_dtype)


def low_norm(dtype, p=2.0):
    """Smallest norm the plain p-norm computes to full relative precision.

    For p = 2 it is ``sqrt(tiny) / eps`` (2⁻⁴⁰ in float32, 2⁻⁴⁵⁹ in float64):
    below it squares fall among the subnormals. Generally ``(tiny/eps²)^(1/p)``,
    at least ``tiny``.
    """
    info = finfo(dtype)
    tiny, eps = float(info.tiny), float(info.eps)
    if p == math.inf:
        return 0.0
    return max(math.exp((math.log(tiny) - 2 * math.log(eps)) / p), tiny)


def _range_text(dtype):
    info = finfo(dtype)
    return (
        f"{tf.as_dtype(dtype).name} holds positive values from "
        f"{float(info.smallest_subnormal):.4g} to {float(info.max):.6g}"
    )


def threshold(value, weight_dtype, fn, arg, allow_zero=False):
    """``value`` as a scalar tensor in ``compute_dtype(weight_dtype)``.

    A Python number is rounded once, directly from the Python float to
    ``weight_dtype`` (no float32 round trip), then widened exactly. A tensor
    is cast (its own precision is the caller's choice).

    Raises:
      ValueError: the number rounds to inf or, being non-zero, to 0 in
        ``weight_dtype``; the message names ``fn``, ``arg`` and the range.
    """
    wide = compute_dtype(weight_dtype)
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return tf.cast(value, wide)
    with np.errstate(over="ignore", under="ignore"):
        rounded = np.asarray(value, dtype=tf.as_dtype(weight_dtype).base_dtype.as_numpy_dtype)
    if not np.isfinite(rounded) or (rounded == 0 and (value != 0 or not allow_zero)):
        raise ValueError(
            f"{fn}: `{arg}` does not fit the weight's dtype; got {value!r}, "
            f"which rounds to {float(rounded)!r} ({_range_text(weight_dtype)}). "
            f"Pass a threshold inside that range, or use a wider dtype."
        )
    return tf.constant(float(rounded), wide)


def plain_norm(x, axes, p=2.0):
    """p-norm over ``axes`` (keepdims) in ``x``'s dtype, no care for range or gradient."""
    if p == 2:
        return eager.euclidean_norm(x, axes)
    magnitude = tf.abs(x)
    if p == math.inf:
        return tf.reduce_max(magnitude, axis=axes, keepdims=True)
    if p == 1:
        return tf.reduce_sum(magnitude, axis=axes, keepdims=True)
    return tf.reduce_sum(magnitude**p, axis=axes, keepdims=True) ** (1.0 / p)


def scaled_parts(x, axes, p=2.0, norm_fn=plain_norm):
    """``(m, r)`` with ``‖x‖_p = m · r`` per unit; safe for any finite ``x``.

    ``m`` is ``max |x|`` (1 for all-zero units) under ``stop_gradient``, so the
    gradient through ``r`` is the true one; ``r = ‖x / m‖_p`` lies in
    ``[1, N^(1/p)]`` for non-zero units and is 0 for zero units. ``norm_fn``
    (``x, axes, p -> keepdims norm``) may be a gradient-safe p-norm.
    """
    m = tf.stop_gradient(tf.reduce_max(tf.abs(x), axis=axes, keepdims=True))
    m = tf.where(m > 0, m, tf.ones_like(m))
    return m, norm_fn(x / m, axes, p)


def safe_norm(x, axes, p=2.0, keepdims=True):
    """The p-norm of each unit of ``x`` in ``compute_dtype(x.dtype)``, never spuriously 0 or inf.

    The result is inf only where the true norm exceeds the compute dtype's
    largest finite value (possible for float32/float64 units of
    near-max-finite entries). Forward use (no gradient care at zero).
    """
    wide = tf.cast(x, compute_dtype(x.dtype))
    fast = plain_norm(wide, axes, p)
    if p != math.inf:
        low = tf.constant(low_norm(wide.dtype, p), wide.dtype)
        trusted = (tf.reduce_min(fast) >= low) & below(fast, math.inf)

        def slow():
            m, r = scaled_parts(wide, axes, p)
            return m * r

        fast = guarded(fast, trusted, slow)
    return fast if keepdims else tf.squeeze(fast, axis=axes)


def guarded(fast, trusted, slow_fn, cold=False):
    """``fast`` if ``trusted`` (a scalar bool), else ``slow_fn()`` (the scaled form for all units).

    ``slow_fn`` runs inside a ``tf.cond`` branch, so the fast path costs only
    the few reductions that compute ``trusted``. The slow branch never mixes
    in ``fast``, so no NaN from an overflowed fast path leaks into gradients;
    units it leaves unchanged are bit-exact in both.

    ``cold=True`` (forward-only callers): in a graph, the slow branch is one
    call of a function that is never inlined (``cold_call``). A session lowers
    ``tf.cond`` to ``Switch``/``Merge`` and still dispatches every node of the
    branch not taken, as a dead tensor (~0.1 µs each): the exact recomputation
    of ``cap_exact`` is ~230 nodes, 0.26 of the ops of a max-norm MLP step,
    though it runs only for norms near the float range's edges.
    """
    if trusted is True:
        return fast
    slow = cold_call(slow_fn) if cold else slow_fn
    return tf.cond(trusted, lambda: tf.identity(fast), slow)


def cold_call(fn):
    """``fn`` as a call of a never-inlined function in a graph; ``fn`` itself eagerly or in XLA.

    The returned zero-argument callable traces ``fn`` into a ``tf.function``
    marked ``_noinline`` (its captured tensors become the call's inputs), so
    the graph holds one call node where ``fn`` would put its whole body. Not
    for differentiated paths.
    """
    if tf.executing_eagerly() or eager.in_xla():
        return fn
    return tf.function(fn, autograph=False, experimental_attributes={"_noinline": True})


def guarded_factors(x, wide, scale, trusted, slow_factors):
    """``x·scale`` if ``trusted`` (a scalar bool tensor), else ``x·f₁·f₂·f₃``: for XLA.

    ``f₁, f₂, f₃`` come from ``slow_factors()``.

    Inside ``jit_compile=True`` a ``tf.cond`` over the full tensor (``guarded``)
    makes XLA materialize the fast result and copy it through the
    conditional (+12% on a max-norm MLP step). Here the conditional chooses
    three per-unit vectors and a per-unit ``over`` mask only (``[units]``,
    kept dims), and the full-size work is one fused
    ``where(over, ((x·f₁)·f₂)·f₃, x)`` outside it. On the fast path the factors
    are ``(1, scale, 1)``, so the product is ``x·scale`` bit for bit; units not
    over are ``x`` itself (subnormal entries too, which a multiplication by 1
    would flush to zero); the slow path keeps its factors apart, so none
    needs to be subnormal (CPU kernels flush subnormals to zero).
    """
    one = tf.ones_like(scale)
    factors = tf.cond(trusted, lambda: (one, tf.identity(scale), one, scale < 1), slow_factors)
    *factors, over = factors
    if x.dtype in HALF:
        return tf.where(over, tf.cast(wide * factors[0] * factors[1] * factors[2], x.dtype), x)
    first, second, third = (tf.cast(f, x.dtype) for f in factors)
    return tf.where(over, x * first * second * third, x)


def cap_factors(wide, axes, limit):
    """Per-unit ``(pre, 1/r, limit, over)``: ``((x·pre)/r)·limit`` caps the L2 norm, range-safe.

    ``pre`` is ``1/m`` (``m = max |x|``) clipped to ``[2^-k, 2^k]`` with
    ``k = maxexp − 28`` (100 for float32): never a subnormal, and the unit's
    largest entries land within ``2^±28``, so ``r = ‖x·pre‖`` neither
    overflows nor loses them to underflow; ``x·pre/r`` is the unit direction
    (entries at most 1) and ``·limit`` scales it to the limit, so the largest
    entries of every partial product are normal numbers whenever the
    result's are. Units not over the limit get ``(1, 1, 1, False)``.
    Subnormal entries read as 0 here: thresholds below ``exact_floor`` take
    ``cap_exact`` instead.
    """
    k = float(finfo(wide.dtype).maxexp - 28)
    low, high = (tf.constant(2.0**e, wide.dtype) for e in (-k, k))
    m = tf.reduce_max(tf.abs(wide), axis=axes, keepdims=True)
    pre = tf.clip_by_value(1 / tf.maximum(m, low), low, high)
    r = eager.euclidean_norm(wide * pre, axes)
    over = (r / pre > limit) & (r > 0)  # r/pre may be inf: still over
    one = tf.ones_like(r)
    return (
        tf.where(over, pre, one),
        tf.where(over, 1 / tf.where(over, r, one), one),
        tf.where(over, limit * one, one),
        over,
    )


def exact_floor(dtype, unit_size):
    """Smallest cap whose plain-arithmetic result is within ``eps·cap`` of exact.

    CPU kernels flush subnormal results to 0 (bfloat16, float32, float64,
    whose arithmetic runs in float32/float64), an error below ``tiny`` per
    entry; float16 results (float32 arithmetic, one rounding) round their
    subnormals to nearest, an error below ``tiny·eps/2``. Over a unit of
    ``unit_size`` entries that stays under ``eps·cap`` for caps from
    ``√unit_size · error / eps`` up: ``√N·1e-31`` for float32, ``√N·1.5e-36``
    for bfloat16, ``√N·3e-5`` for float16, ``√N·1e-292`` for float64.
    """
    info = finfo(dtype)
    tiny, eps = float(info.tiny), float(info.eps)
    error = tiny * eps / 2 if tf.as_dtype(dtype).base_dtype == tf.float16 else tiny
    return math.sqrt(unit_size) * error / eps


def cap_exact(wide, axes, limit):
    """``(over, capped)``: units with L2 norm over ``limit`` scaled to it, exactly in binary.

    For float32/float64 ``wide`` (the half types' float32) and any finite
    entries and positive ``limit``, subnormal ones included (``tf1norm._src.bits``:
    no floating-point operation sees a subnormal). Each entry is split as
    ``x = s·2^e`` (``|s|`` in ``[1, 2)``), each unit's norm as ``n = r·2^top``
    with ``top`` its largest ``e`` and ``r = ‖s·2^(e−top)‖`` in ``[1, 2√N)``,
    and the cap as ``t = tₛ·2^tₑ``. A unit is over when ``r > tₛ·2^(tₑ−top)``
    (compared exactly), and its entries become ``(s·tₛ/r)·2^(e+tₑ−top)``:
    every product is a normal number, and the final power of two is applied
    to the bits, exactly where the result is normal and rounded toward zero
    where it is subnormal (so the capped norm stays under ``t`` to rounding).
    """
    s, e = _bits.split_exponent(wide)
    nowhere = tf.constant(_bits.NO_EXPONENT, e.dtype)
    top = tf.reduce_max(tf.where(tf.equal(s, 0), nowhere, e), axis=axes, keepdims=True)
    r = eager.euclidean_norm(_bits.times_power_of_two(s, e - top), axes)
    t_s, t_e = _bits.split_exponent(limit)
    margin = tf.constant(40, e.dtype)  # r < 2^32 for any unit of < 2^62 entries
    bound = _bits.times_power_of_two(t_s, tf.clip_by_value(t_e - top, -margin, margin))
    over = (r > bound) & (r > 0)
    factor = t_s / tf.where(over, r, tf.ones_like(r))
    return over, _bits.times_power_of_two(s * factor, e + (t_e - top))


def all_of(*predicates):
    """Scalar conjunction of scalar bool tensors; Python ``True`` entries are dropped."""
    kept = [p for p in predicates if p is not True]
    if not kept:
        return True
    result = kept[0]
    for predicate in kept[1:]:
        result = result & predicate
    return result


def below(x, bound):
    """Scalar: every entry of ``x`` is ``< bound``."""
    return tf.reduce_max(x) < bound


def accurate(norm, low, limit):
    """Scalar: no norm is below ``low`` unless ``limit >= 2·low`` (then it cannot matter).

    A plain norm under ``low`` may have lost precision to underflow; it can
    only change a comparison with a limit of the same size. ``True`` (no op)
    when ``limit`` is a constant ``>= 2·low``.
    """
    static = tf.get_static_value(limit)
    if static is not None and float(static) >= 2 * low:
        return True
    return (tf.reduce_min(norm) >= low) | (limit >= 2 * low)


def normal_scale(scale):
    """Scalar: every ``scale`` is a finite normal number (multiplying keeps precision)."""
    tiny = tf.constant(float(finfo(scale.dtype).tiny), scale.dtype)
    magnitude = tf.abs(scale)
    return (tf.reduce_min(magnitude) >= tiny) & (tf.reduce_max(magnitude) < math.inf)


def cap_scaled(wide, axes, p, is_over, target, dtype):
    """Units with ``is_over(‖x‖_p)`` scaled to norm ``target``, others unchanged, range-safe.

    Computed as ``(x/m)·(target/r)`` with ``‖x‖_p = m·r`` (``scaled_parts``);
    the result is cast to ``dtype`` (units not over come back bit-exact).
    """
    m, r = scaled_parts(wide, axes, p)
    over = is_over(m * r) & (r > 0)
    moved = (wide / m) * (target / tf.where(r > 0, r, tf.ones_like(r)))
    return tf.cast(tf.where(over, moved, wide), dtype)


def safe_positive(x, fill=1.0):
    """(mask x > 0, x with non-positive entries replaced by ``fill``)."""
    positive = x > 0
    return positive, tf.where(positive, x, tf.ones_like(x) * fill)


def p_norm(x, p, axes):
    """p-norm over ``axes`` (keepdims) with finite gradients at zero.

    ``p`` may be any float > 0 or ``math.inf``. For p == 2 the squares are summed
    directly; for other p, ``|x|**p`` is summed with zero entries masked so
    that p < 1 gives no infinite gradient. Computed in float32 for half types.
    """
    x = tf.cast(x, compute_dtype(x.dtype))
    if p == math.inf:
        return tf.reduce_max(tf.abs(x), axis=axes, keepdims=True)
    if p == 1:
        return tf.reduce_sum(tf.abs(x), axis=axes, keepdims=True)
    if p == 2:
        # x·x, not tf.square: Square's gradient 2x overflows near max-finite
        total = tf.reduce_sum(x * x, axis=axes, keepdims=True)
    else:
        nonzero, magnitude = safe_positive(tf.abs(x))
        powered = tf.where(nonzero, tf.pow(magnitude, p), tf.zeros_like(magnitude))
        total = tf.reduce_sum(powered, axis=axes, keepdims=True)
    positive, safe_total = safe_positive(total)
    root = tf.sqrt(safe_total) if p == 2 else tf.pow(safe_total, 1.0 / p)
    return tf.where(positive, root, tf.zeros_like(root))


def renorm_scale(norm, limit, epsilon):
    """Per sub-tensor ``limit / (norm + epsilon)`` where ``norm > limit``, else exactly 1."""
    limit = tf.cast(limit, norm.dtype)
    over = norm > limit
    safe_norm = tf.where(over, norm, tf.ones_like(norm) * limit)
    return tf.where(over, limit / (safe_norm + epsilon), tf.ones_like(norm))


def shrink_where_over(x, norm, limit, epsilon):
    """Scale sub-tensors with ``norm > limit`` by ``limit / (norm + epsilon)``.

    The per-sub-tensor factor is exactly 1.0 where the norm is at or under the
    limit, and ``x * 1.0 == x`` bit for bit in IEEE arithmetic, so those
    sub-tensors come back unchanged without a full-size ``tf.where``. The
    denominator is made safe in the branch not taken, so gradients stay finite.
    """
    return x * tf.cast(renorm_scale(norm, limit, epsilon), x.dtype)


def renorm_guarded(x, p, axes, limit):
    """torch's formula on the plain p-norm; units out of its safe range recomputed scaled."""
    norm = p_norm(x, p, axes)
    scale = renorm_scale(norm, limit, RENORM_EPSILON)
    fast = x * tf.cast(scale, x.dtype)
    if p == math.inf or (x.dtype == tf.float16 and p in (1.0, 2.0)):
        return fast
    low = low_norm(norm.dtype, p)
    trusted = all_of(below(norm, math.inf), accurate(norm, low, limit), normal_scale(scale))
    wide = tf.cast(x, norm.dtype)
    return guarded(fast, trusted, lambda: renorm_scaled(wide, p, axes, limit, x.dtype))


def renorm_scaled(wide, p, axes, limit, dtype):
    """``x·t/(n + 1e-7)`` as ``(x/m)·t/(r + 1e-7/m)`` with ``n = m·r`` (no overflow)."""
    m, r = scaled_parts(wide, axes, p, norm_fn=lambda y, a, q: p_norm(y, q, a))
    over = m * r > limit
    moved = (wide / m) * (limit / (r + RENORM_EPSILON / m))
    return tf.cast(tf.where(over, moved, wide), dtype)
