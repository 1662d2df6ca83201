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
of the whole tensor. float16 and bfloat16 inputs are reduced in float32 and
scaled in float32 before one rounding back. Gradients are finite everywhere,
including all-zero sub-tensors (their gradient through the norm is taken as 0).

Edge inputs (``tf1norm._math.norms``): norms never overflow or underflow. A unit
whose plain ``sqrt(Σx²)`` would be inf (float32 norms above ~1.8e19) or lose
precision to underflow (float32 entries near 1e-20 and below) is recomputed as
``(x/max|x|)·(t/r)``, so huge units are projected to the threshold and tiny
units are compared (and projected) with their true norm; zero units stay zero.
That recomputation runs in a ``tf.cond`` only when some unit needs it, so
ordinary float32 weights pay one extra tiny reduction.

Thresholds: a Python number is rounded once, directly to the weight's dtype
(a cap of 1.1 on float64 is 1.1, not float32's 1.1000000238); one that rounds
to inf or 0 there (1e5 for float16, 1e-60 for float32) raises ``ValueError``.
A threshold tensor is cast to the weight's dtype (float32 for the half types).
"""

import math

from tf1norm._src import bits as _bits
from tf1norm._src import axis_checks as _axis_checks
from tf1norm._src import checks as _checks
from tf1norm._math import norms as _norms
from tf1norm._src import eager
from tf1norm._math.norms import (
    HALF,
    accurate,
    all_of,
    cap_factors,
    finfo,
    guarded,
    guarded_factors,
    low_norm,
    scaled_parts,
)
from tf1norm._math.norms import renorm_guarded
from tf1norm._src.compat import tf


def _compute_dtype(x):
    return _norms.compute_dtype(x.dtype)


def _divide_safe(r):
    """``r`` with zeros replaced by 1 (zero units: the branch that uses it is not taken)."""
    return tf.where(r > 0, r, tf.ones_like(r))


def _apply(x, wide, scale):
    """``x · scale``; the half types multiply in float32 and round once.

    A unit whose scale is exactly 1.0 comes back bit-exact either way.
    """
    if x.dtype in HALF:
        return tf.cast(wide * scale, x.dtype)
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
      ValueError: rank 0 or unknown rank; ``threshold`` <= 0 or not finite, or
        (a Python number) rounding to inf or 0 in ``w``'s dtype;
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
        axes = _axis_checks.axes_tuple(axes, rank, "max_norm")
        threshold = _checks.positive_scalar(threshold, "max_norm", "threshold")
        return _cap_l2_norm(w, axes, _norms.threshold(threshold, w.dtype, "max_norm", "threshold"))


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
        axes = _axis_checks.axes_tuple(axes, _checks.static_rank(w, "max_norm"), "max_norm")
        threshold = _checks.positive_scalar(threshold, "max_norm", "threshold")
        limit = _norms.threshold(threshold, w.dtype, "max_norm", "threshold")
        if not _in_tf1_graph():
            return _cap_forward(w, axes, limit)
        static = tf.get_static_value(limit)
        if static is not None:  # a constant inside: the range guards fold to Python bools
            compiled = _compiled(w)
            cap = _traced_static_cap(
                w.dtype, limit.dtype, w.shape.rank, axes, float(static), compiled
            )
            return cap(w)
        return _traced_cap(w.dtype, limit.dtype, w.shape.rank, axes)(w, limit)


# From this many entries the train op writes a max-norm projection only when a
# unit is over the threshold (``max_norm_guarded``): the norms are one read of
# the kernel, the capped write one more read and a write. Smaller kernels take
# one compiled call, cheaper than two and a conditional.
GUARDED_FROM_SIZE = 1 << 18


def max_norm_guarded(w, threshold, axes=None):
    """``(over, project)`` to write ``max_norm_assignment(w)`` only when it changes ``w``.

    ``over`` is a scalar bool tensor, false exactly when every unit's norm is
    at most ``threshold`` (then the projection would return ``w`` bit for
    bit: skipping the write keeps the variable's bits). A NaN norm counts as
    over, so the projection decides as it does unguarded. ``project()`` builds
    the projected value from the same norms; call it in the branch that writes.

    Returns ``None`` where the guard does not apply and the caller assigns
    ``max_norm_assignment(w, threshold, axes)``: outside a TF1 graph, for
    kernels under ``GUARDED_FROM_SIZE`` entries or not compiled (see
    ``_compiled``), and for a threshold that is a tensor or so small that the
    plain norms near it are not exact (``norms.exact_floor``, ``low_norm``).

    On a 2-core AMD EPYC, vgg_a's fc6 kernel (7×7×512×4096, no unit over 1.0
    at its initial values) costs one read per step instead of two reads and a
    write.
    """
    w = _checks.float_tensor(w, "max_norm")
    rank = _checks.static_rank(w, "max_norm")
    axes = _axis_checks.axes_tuple(axes, rank, "max_norm")
    threshold = _checks.positive_scalar(threshold, "max_norm", "threshold")
    if not _in_tf1_graph() or not _compiled(w) or w.shape.num_elements() < GUARDED_FROM_SIZE:
        return None
    limit = _norms.threshold(threshold, w.dtype, "max_norm", "threshold")
    static = tf.get_static_value(limit)
    if static is None or static < 2 * low_norm(limit.dtype):
        return None
    if _above_exact_floor(w, axes, limit) is not True:
        return None
    static = float(static)
    norm = _traced_norms(w.dtype, rank, axes)(w)
    over = tf.logical_not(tf.reduce_all(norm <= tf.constant(static, limit.dtype)), name="over")
    cap = _traced_static_cap(w.dtype, limit.dtype, rank, axes, static, True, given_norm=True)
    return over, lambda: cap(w, norm)


def _traced_norms(dtype, rank, axes):
    """Compiled ``‖unit‖₂`` per unit (kept dims), as ``_cap_forward`` computes them."""

    def body(x):
        if not _leading_block(axes, rank):
            return eager.euclidean_norm(x, axes)
        kept = tf.concat([tf.ones([len(axes)], tf.int32), tf.shape(x)[len(axes) :]], 0)
        return tf.reshape(eager.euclidean_norm(_as_matrix(x, len(axes)), (0,)), kept)

    signature = [tf.TensorSpec([None] * rank, dtype)]
    return eager.traced_once(("max_norm_norms", dtype, rank, axes), body, signature, True)


def _in_tf1_graph():
    """True when building a plain graph (not eager, not inside a function body)."""
    return not tf.executing_eagerly() and not tf.compat.v1.get_default_graph().building_function


def _traced_cap(dtype, limit_dtype, rank, axes):
    """``_cap_forward`` traced once per (dtype, rank, axes) and called as one graph op.

    A projection per kernel of a large model would otherwise add the guard's
    ``tf.cond`` and its scaled branch (~40 ops) per kernel to the graph:
    building the train op of resnet_v1_50 took twice as long as ``minimize``.
    As a function call the graph gains one op per kernel; Grappler inlines
    the body when the session runs it, so the step costs the same.
    """
    signature = [tf.TensorSpec([None] * rank, dtype), tf.TensorSpec([], limit_dtype)]
    return eager.traced_once(
        ("max_norm", dtype, limit_dtype, rank, axes),
        lambda x, limit: _cap_forward(x, axes, limit),
        signature,
    )


# Kernels with at least this many entries are capped by one XLA-compiled call
# (``_compiled``); smaller ones by the plain ops, whose dispatch costs less than a launch.
# On a 2-core AMD EPYC (TF 2.21) the compiled call was faster from 3×3×64×64 and
# 300×100 up (0.18 ms against 0.24 ms, 0.16 against 0.33, per sess.run), even
# with a 100×10 kernel (0.24 against 0.22).
COMPILED_FROM_SIZE = 1 << 12


def _compiled(w):
    """True for a large float32/float64 kernel of static shape (``COMPILED_FROM_SIZE``).

    The plain ops pass over the kernel three times and write a temporary
    (``EuclideanNorm``, ``Mul``, ``SelectV2``); XLA fuses the norm into one
    read and the capped write into one more pass (``_cap_forward``'s XLA
    form: the range guard chooses per-unit factors, never a full-size
    copy). On an AMD EPYC (2 cores) a 2048×2048 projection and assign took
    2.1 ms instead of 3.7 ms. A conv kernel is capped as a matrix
    (``_cap_as_matrix``).
    """
    shape = w.shape
    if w.dtype.base_dtype not in (tf.float32, tf.float64) or not shape.is_fully_defined():
        return False
    return shape.num_elements() >= COMPILED_FROM_SIZE


def _traced_static_cap(dtype, limit_dtype, rank, axes, limit, compiled=False, given_norm=False):
    """``_traced_cap`` for a known ``limit``, traced once per value (and per ``compiled``).

    With the limit a constant of the body, ``accurate`` and the exact-floor
    test are decided while tracing: the body keeps one scalar range test.
    ``compiled``: the function is compiled with XLA (``jit_compile=True``).
    """

    def body(x, norm=None):
        if compiled and _leading_block(axes, rank):
            return _cap_as_matrix(x, len(axes), tf.constant(limit, limit_dtype), norm)
        return _cap_forward(x, axes, tf.constant(limit, limit_dtype), norm)

    signature = [tf.TensorSpec([None] * rank, dtype)]
    if given_norm:  # the units' norms (kept dims) come in second (``max_norm_guarded``)
        signature.append(tf.TensorSpec([None] * rank, limit_dtype))
    return eager.traced_once(
        ("max_norm_static", dtype, limit_dtype, rank, axes, limit, compiled, given_norm),
        body,
        signature,
        jit_compile=compiled,
    )


def _leading_block(axes, rank):
    """True when ``axes`` are the first axes of a tensor of rank 3 or more (conv kernels)."""
    return rank > 2 and axes == tuple(range(len(axes)))


def _cap_as_matrix(x, reduced, limit, norm=None):
    """``_cap_forward`` of ``x`` seen as a ``[units' size, units]`` matrix, reshaped back.

    XLA's CPU backend reduces a 4-D HWIO kernel over its first three axes as
    nested strided loops; over the same memory seen as a matrix it streams
    rows. On a 2-core AMD EPYC, capping and assigning a 7×7×512×4096 kernel
    (vgg's fc6) took 377 ms as 4-D and 76 ms as a matrix (plain ops: 149 ms),
    a 3×3×512×512 one 5.3 ms and 2.1 ms (plain ops: 3.7 ms). The units and
    their norms are the same; only the summation order may differ (round-off).
    """
    shape = tf.shape(x)
    matrix = _as_matrix(x, reduced)
    if norm is not None:
        norm = tf.reshape(norm, [1, -1])
    return tf.reshape(_cap_forward(matrix, (0,), limit, norm), shape)


def _as_matrix(x, reduced):
    """``x`` as ``[size of the first reduced axes, the rest]`` (a free reshape)."""
    return tf.reshape(x, tf.stack([-1, tf.reduce_prod(tf.shape(x)[reduced:])]))


def _cap_forward(x, axes, limit, norm=None):
    """``x·t/max(n, t)``: one EuclideanNorm pass, one multiply, range-guarded.

    ``t / max(n, t)`` is ``min(t/n, 1)`` with one op fewer, and exactly 1.0
    for ``n <= t`` (zero sub-tensors included); units not over are returned
    as they are (a ``where``: CPU kernels flush subnormal entries to zero even
    in ``x·1``). Where the plain norm or scale cannot be trusted (overflow,
    underflow, a cap below ``norms.exact_floor``) the units are recomputed
    exactly in binary (``tf1norm._math.norms.cap_exact``); float16 needs no other guard
    (its float32 sums stay in range, its entries are normal in float32).
    """
    wide = tf.cast(x, limit.dtype)
    if norm is None:  # else: the units' norms, computed by ``_traced_norms``
        norm = eager.euclidean_norm(wide, axes)
    scale = limit / tf.maximum(norm, limit)
    above_floor = _above_exact_floor(x, axes, limit)
    if above_floor is False:
        return _cap_exact(x, wide, axes, limit)
    if x.dtype == tf.float16:
        return guarded(
            _apply(x, wide, scale),
            above_floor,  # x * 1.0 == x: bit-exact under t
            lambda: _cap_exact(x, wide, axes, limit),
            cold=True,
        )
    low = low_norm(limit.dtype)
    # scale = t/max(n, t) is in (0, 1]: 0 or subnormal exactly where n overflowed or is huge
    tiny = tf.constant(float(finfo(scale.dtype).tiny), scale.dtype)
    if eager.in_xla():
        trusted = all_of(tf.reduce_min(scale) >= tiny, accurate(norm, low, limit))
        factored = lambda: guarded_factors(  # noqa: E731
            x, wide, scale, trusted, lambda: cap_factors(wide, axes, limit)
        )
        if above_floor is True:
            return factored()
        return tf.cond(above_floor, factored, lambda: _cap_exact(x, wide, axes, limit))
    trusted = all_of(tf.reduce_min(scale) >= tiny, accurate(norm, low, limit), above_floor)
    # over: the norm against the limit, not scale < 1: Grappler turns 1/max(n, 1) into a
    # Reciprocal whose vectorized CPU kernel returns 0.99999994 for 1.0 (issue 21)
    fast = tf.where(norm > limit, _apply(x, wide, scale), x)
    return guarded(fast, trusted, lambda: _cap_exact(x, wide, axes, limit), cold=True)


def _above_exact_floor(x, axes, limit):
    """``limit >= _norms.exact_floor`` for ``x``'s units: a Python bool when ``limit`` is known."""
    sizes = [x.shape[a] for a in axes]
    unit_size = math.prod(sizes) if None not in sizes else 2**31
    floor = _norms.exact_floor(x.dtype, unit_size)
    static = tf.get_static_value(limit)
    if static is not None:
        return bool(float(static) >= floor)
    return limit >= tf.constant(floor, limit.dtype)


def _cap_exact(x, wide, axes, limit):
    """``norms.cap_exact`` in ``x``'s dtype (half types rounded toward zero where subnormal)."""
    over, capped = _norms.cap_exact(wide, axes, limit)
    return tf.where(over, _bits.to_half_toward_zero(capped, x.dtype), x)


def _cap_l2_norm(w, axes, limit):
    """``max_norm`` with few, large ops: it runs after every training step.

    Forward: ``_cap_forward``. The gradient is written out, because the
    built-in ``EuclideanNorm`` gradient is NaN at zero: with ``u = s/n`` (taken
    as ``(s/m)/r``, so huge units do not overflow), for sub-tensors over the
    threshold ``d(t·s/n) = (t/n)·(dy − u·<u, dy>)``, elsewhere ``dy``.
    """

    @tf.custom_gradient
    def cap(x):
        def grad(dy):
            wide = tf.cast(x, limit.dtype)
            upstream = tf.cast(dy, limit.dtype)
            m, r = scaled_parts(wide, axes)
            over = m * r > limit
            safe_r = _divide_safe(r)
            unit = (wide / m) / safe_r
            scale = tf.where(over, (limit / m) / safe_r, tf.ones_like(r))
            dot = tf.reduce_sum(unit * upstream, axis=axes, keepdims=True)
            correction = tf.where(over, unit * dot, tf.zeros_like(unit))
            return tf.cast(scale * (upstream - correction), x.dtype)

        return _cap_forward(x, axes, limit), grad

    return cap(w)


def renorm(x, p, axis, maxnorm, name=None):
    """Exactly ``torch.renorm(x, p, axis, maxnorm)`` for TensorFlow.

    Each slice ``x[..., i, ...]`` along ``axis`` whose p-norm (taken over all
    the other axes) exceeds ``maxnorm`` is multiplied by
    ``maxnorm / (norm + 1e-7)``; other slices are returned bit-exact.

    Edge behaviour versus torch: torch sums ``|x|^p`` in the dtype, so a
    float32 slice with norm above ~1.8e19 gets norm inf and is zeroed, and a
    slice of 1e-30 entries gets norm 0 and is never renormalized. Here the
    same formula is applied to the true norm (computed scaled where the plain
    sum overflows or underflows), so such slices end with norm ``maxnorm``
    (or, for tiny slices, ``maxnorm·n/(n + 1e-7)``, torch's formula). Where
    torch's arithmetic is in range the results are identical.

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
        axis = _axis_checks.single_axis(axis, rank, "renorm")
        p = _check_p(p)
        maxnorm = _checks.positive_scalar(maxnorm, "renorm", "maxnorm")
        limit = _norms.threshold(maxnorm, x.dtype, "renorm", "maxnorm")
        axes = tuple(a for a in range(rank) if a != axis)
        return renorm_guarded(x, p, axes, limit)


def _check_p(p):
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"renorm: `p` must be a Python number; got {p!r}. Pass e.g. p=2.")
    if not p > 0 or math.isnan(p):
        raise ValueError(
            f"renorm: `p` must be > 0; got {p!r}. "
            "Use p=2 for the Euclidean norm, math.inf for the max norm."
        )
    return float(p)
