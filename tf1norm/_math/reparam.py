"""Pure math of the reparameterizations: weight normalization and spectral norm.

Tensor -> Tensor functions, no variables; the custom getters in
``tf1norm.graph.getters`` create the variables and call these.
"""

import math

from tf1norm._src import axis_checks as _axis_checks
from tf1norm._src import checks as _checks
from tf1norm._math import norms as _norms
from tf1norm._math import weight_norm_scale as _weight_norm_scale
from tf1norm._src.compat import tf


def weight_norm(v, g, axes=None, epsilon=1e-12, name=None):
    """Weight normalization: ``w = g · v / ‖v‖`` per output unit.

    ``‖v‖ = sqrt(max(Σ_axes v², epsilon))``, so ``v = 0`` gives ``w = 0`` and
    finite gradients instead of NaN. The sum runs in float32 for float16 and
    bfloat16 (a float16 unit with Σv² > 65504 is not zeroed), and units whose
    Σv² overflows or underflows are recomputed as ``g·(v/m)/‖v/m‖`` with
    ``m = max|v|`` (see ``tf1norm._math.norms``). The default axes are every axis but the
    last (see ``tf1norm._math.projections``), so ``g`` has shape ``[out]``.

    Args:
      v: floating tensor, the direction (rank >= 1).
      g: gains, shaped like ``v`` with ``axes`` removed (``[out]`` by default).
      axes: reduction axes, default every axis but the last.
      epsilon: floor of the squared norm.
      name: optional name scope.

    Returns:
      ``w``, shaped and typed like ``v``.

    References:
      Salimans & Kingma, "Weight Normalization: A Simple Reparameterization to
      Accelerate Training of Deep Neural Networks", NeurIPS 2016.
    """
    return weight_norm_parts(v, g, axes, epsilon, name)[0]


def weight_norm_parts(v, g, axes=None, epsilon=1e-12, name=None):
    """``(w, plain_w, plain_ok)``: ``weight_norm``'s ``w``, and its plain-arithmetic value.

    ``plain_w`` is ``g·v·rsqrt(max(Σv², ε))`` before the range guard and
    ``plain_ok`` the guard's scalar predicate: where it is true, ``w`` is
    ``plain_w`` bit for bit. ``export_plain_checkpoint`` fetches these two
    instead of ``w`` (whose ``tf.cond`` per kernel made the first
    ``session.run`` cost 2.5× a ``Saver.save`` on resnet_v1_50).
    """
    with tf.name_scope(name or "weight_norm"):
        v = _checks.float_tensor(v, "weight_norm", "v")
        axes = _axis_checks.axes_tuple(
            axes, _checks.static_rank(v, "weight_norm", "v"), "weight_norm"
        )
        epsilon = _checks.positive_number(epsilon, "weight_norm", "epsilon")
        _checks.static_dimensions(
            v, [a for a in range(v.shape.rank) if a not in axes], "weight_norm", "v"
        )
        g = tf.cast(g, v.dtype)
        kept = [d for a, d in enumerate(v.shape) if a not in axes]
        if g.shape.rank is not None and g.shape.as_list() != kept:
            raise ValueError(
                f"weight_norm: `g` must have shape {kept} (v's shape without "
                f"axes {axes}); got {g.shape}."
            )
        gain = tf.reshape(g, [1 if a in axes else d for a, d in enumerate(v.shape)])
        epsilon = _norms.threshold(epsilon, _norms.compute_dtype(v.dtype), "weight_norm", "epsilon")
        return _weight_norm_scale.gain_times_direction(v, gain, axes, epsilon)


def _normalize_plain(x, epsilon):
    """``(x / sqrt(max(‖x‖², ε)), ‖x‖²)`` for a ``[1, n]`` vector."""
    squared = tf.reduce_sum(tf.square(x))
    return x * tf.math.rsqrt(tf.maximum(squared, epsilon)), squared


def _normalize_scaled(x, epsilon):
    """``(y / sqrt(max(‖y‖², ε)), ‖y‖²)`` with ``y = x / max|x|``: never under/overflows."""
    m = tf.reduce_max(tf.abs(x))
    return _normalize_plain(x / tf.where(m > 0, m, tf.ones_like(m)), epsilon)


def _iterate(matrix, u_in, power_iterations, epsilon, normalize):
    """``(û, v̂, σ = ‖v̂W‖, smallest ‖·‖² normalized)`` after ``power_iterations`` steps.

    ``matrix`` and ``u_in`` come in under ``stop_gradient``: nothing here is differentiated.
    """
    u_hat, smallest = u_in, None
    for _ in range(power_iterations):
        v_hat, v_squared = normalize(tf.matmul(u_hat, matrix, transpose_b=True), epsilon)
        u_hat, u_squared = normalize(tf.matmul(v_hat, matrix), epsilon)
        smallest = (
            tf.minimum(v_squared, u_squared)
            if smallest is None
            else tf.minimum(smallest, tf.minimum(v_squared, u_squared))
        )
    # σ = v̂ W ûᵀ with û = v̂W/‖v̂W‖ is ‖v̂W‖: no third matrix-vector product.
    return u_hat, v_hat, tf.sqrt(u_squared), smallest


def _scaled_by_max(matrix):
    """``(W/k, k)`` with ``k = max|W|`` (1 for a zero matrix)."""
    m = tf.reduce_max(tf.abs(matrix))
    k = tf.where(m > 0, m, tf.ones_like(m))
    return matrix / k, k


def _power_iteration(w, rank, u, power_iterations, epsilon):
    """``(W, W/k, k, σ(W/k), û, v̂)`` in the compute dtype (float32 for the half types).

    The plain iteration runs first. If any normalized vector had ``‖x‖² < ε``
    (the floor would bend it) or overflowed, the iteration is redone (in a
    ``tf.cond``) on ``W/k`` with ``k = max|W|`` and max-abs-scaled vectors;
    ``σ(W) = k·σ(W/k)`` with the same ``û``, ``v̂``. Otherwise ``k = 1`` and
    ``W/k`` is ``W`` itself.

    Only the first result, ``W``, carries a gradient: the iteration and its
    one ``tf.cond`` read W and u under ``stop_gradient``, so no gradient is
    taken through the power iteration (on a zero W that gradient was NaN), and
    ``custom_gradient``'s variable search stops there. ``_divide_by_sigma``
    differentiates ``(W/k)/σ`` by hand.
    """
    compute = _norms.compute_dtype(w.dtype)
    floor = _norms.threshold(epsilon, compute, "spectral_norm", "epsilon")
    matrix = tf.cast(tf.reshape(w, [-1, w.shape[rank - 1]]), compute)
    u_in = tf.reshape(
        tf.cast(_checks.row_vector(u, w.shape[-1], "spectral_norm", "u"), compute), [1, -1]
    )
    constant, u_in = tf.stop_gradient(matrix), tf.stop_gradient(u_in)
    u_hat, v_hat, sigma, smallest = _iterate(
        constant, u_in, power_iterations, floor, _normalize_plain
    )
    low = max(_norms.low_norm(compute) ** 2, float(epsilon))
    trusted = (smallest >= low) & (smallest < math.inf) & (sigma < math.inf)

    def fast():
        one = tf.ones([], compute)
        return (one, tf.identity(sigma), tf.identity(u_hat), tf.identity(v_hat), constant)

    def slow():
        scaled, k = _scaled_by_max(constant)
        u_s, v_s, _, _ = _iterate(scaled, u_in, power_iterations, floor, _normalize_scaled)
        # the last ‖v̂W‖ of the scaled iteration, without overflow or underflow
        sigma_s = _norms.safe_norm(tf.matmul(v_s, scaled), [0, 1], keepdims=False)
        return k, sigma_s, u_s, v_s, scaled

    k, sigma, u_hat, v_hat, scaled = tf.cond(trusted, fast, slow)
    # A zero matrix (or a u orthogonal to its row space) gives û = 0; keeping
    # the incoming u lets the iteration resume once W is non-zero.
    u_hat = tf.where(sigma > 0, u_hat, u_in)
    return matrix, scaled, k, sigma, u_hat, v_hat


def _differentiable_scaled(matrix, k):
    """``W/k`` with its gradient (``1/k``); ``W`` itself when ``k = 1``."""
    return tf.cond(tf.equal(k, 1), lambda: tf.identity(matrix), lambda: matrix / k)


def spectral_norm(w, u, power_iterations=1, epsilon=1e-12, name=None):
    """Spectral normalization by power iteration: ``(w / σ, σ, u_new)``.

    ``W = reshape(w, [-1, out])`` (a conv kernel HWIO becomes ``[H·W·I, O]``);
    starting from ``u`` (shape ``[1, out]``), each iteration computes
    ``v = normalize(u Wᵀ)``, ``u = normalize(v W)``; then ``σ = v W uᵀ``.
    ``u`` and ``v`` are under ``stop_gradient``, so the gradient of ``w / σ``
    flows through ``w`` in both the numerator and σ (a true reparameterization,
    Miyato et al. 2018). Normalization uses ``y / sqrt(max(‖y‖², epsilon))`` on
    ``y = x / max|x|`` (so tiny and huge weights normalize exactly; epsilon only
    guards zero vectors). The iteration runs in float32 for float16/bfloat16
    and on ``W / max|W|`` when W's entries are so large (or small) that its
    products would leave the dtype's range; σ is then taken back to scale, and
    is inf only when σ itself exceeds the weight dtype (e.g. σ > 65504 in float16).
    A zero ``w`` has σ = 0: the result is then ``w`` itself (zeros, not NaN),
    its gradient is the identity (``∂(w/σ)/∂w`` taken as ``I``; no epsilon is
    added to σ, so non-zero kernels are unaffected) and ``u_new`` is ``u``
    unchanged. A zero-initialized layer therefore trains: its first step moves
    ``w`` by the plain gradient, after which it is normalized as usual.

    Args:
      w: floating tensor of rank >= 2.
      u: current estimate of the first right singular vector, ``[1, out]``.
      power_iterations: int >= 1.
      epsilon: floor of squared norms.
      name: optional name scope.

    Returns:
      ``(w / σ, σ, u_new)``: normalized weight shaped like ``w``, scalar σ,
      and the refreshed ``u`` (assign it to your variable to carry it over).

    References:
      Miyato et al., "Spectral Normalization for Generative Adversarial
      Networks", ICLR 2018.
    """
    with tf.name_scope(name or "spectral_norm"):
        w = _checks.float_tensor(w, "spectral_norm")
        rank = _checks.static_rank(w, "spectral_norm", minimum=2)
        _checks.static_dimensions(w, [rank - 1], "spectral_norm")
        power_iterations = _checks.positive_int(
            power_iterations, "spectral_norm", "power_iterations"
        )
        epsilon = _checks.positive_number(epsilon, "spectral_norm", "epsilon")
        matrix, scaled, k, sigma_value, u_hat, v_hat = _power_iteration(
            w, rank, u, power_iterations, epsilon
        )
        normalized = _divide_by_sigma(matrix, scaled, k, sigma_value, u_hat, v_hat)
        # The σ returned keeps its differentiable form (∂σ/∂W = v̂ᵀû); it is
        # only computed when used, e.g. by spectral_norm_regularizer.
        matrix = _differentiable_scaled(matrix, k)
        sigma = k * tf.reshape(tf.matmul(tf.matmul(v_hat, matrix), u_hat, transpose_b=True), [])
        return (
            tf.reshape(tf.cast(normalized, w.dtype), tf.shape(w)),
            tf.cast(sigma, w.dtype),
            tf.cast(u_hat, w.dtype),
        )


def spectral_projection(w, u, power_iterations=1, epsilon=1e-12):
    """``(w / max(σ, 1), σ, u_new)`` forward only (no gradient through σ); never 0 or NaN.

    The ``SpectralNorm`` constraint's math: σ and the division are taken on
    the range-scaled matrix in the compute dtype, so a σ beyond the weight
    dtype's range (a float16 kernel with σ > 65504) still divides correctly.
    """
    w = _checks.float_tensor(w, "SpectralNorm")
    rank = _checks.static_rank(w, "SpectralNorm", minimum=2)
    _checks.static_dimensions(w, [rank - 1], "SpectralNorm")
    matrix, scaled, k, sigma_value, u_hat, _ = _power_iteration(
        w, rank, u, power_iterations, epsilon
    )
    sigma = k * sigma_value  # may be inf in float32/float64 when σ is beyond the range
    flat = tf.reshape(w, tf.shape(matrix))
    projected = tf.where(sigma > 1, tf.cast(scaled / sigma_value, w.dtype), flat)
    return tf.reshape(projected, tf.shape(w)), tf.cast(sigma, w.dtype), tf.cast(u_hat, w.dtype)


def _divide_by_sigma(matrix, scaled, k, sigma, u_hat, v_hat):
    """``(W/k) / σ`` (``scaled / σ``) with a hand-written gradient with respect to ``W``.

    ``scaled = W/k`` and σ = v̂ (W/k) ûᵀ come from ``_power_iteration`` (its
    one ``tf.cond``, forward only). With û, v̂, k constant, ∂σ/∂W = v̂ᵀû/k, so
    for upstream G: ``∂L/∂W = (G/σ − (⟨G, W/(kσ)⟩/σ)·v̂ᵀû)/k``: one
    elementwise dot product and one pass that subtracts the rank-1 term by
    broadcasting, with ``1/(kσ)`` folded into scalars (exactly ``1/σ`` when
    ``k = 1``). (A k=1 MatMul for the outer product, or a [1, N]×[N, 1]
    MatMul for the dot, is several times slower on CPU than these
    elementwise forms.)

    σ = 0 only for a zero matrix: then ``W / σ`` is taken as ``W`` itself
    (zero, with the identity gradient), never ``0/0 = NaN``.
    """
    inverse = tf.where(sigma > 0, 1.0 / sigma, tf.ones_like(sigma))

    @tf.custom_gradient
    def divide(m):
        del m  # the forward value is scaled/σ; the gradient is with respect to m = W
        out = scaled * inverse

        def grad(upstream):
            dot = tf.reduce_sum(upstream * out)
            step = inverse / k
            column = tf.transpose(v_hat * (dot * step))  # [in, 1]
            return upstream * step - column * u_hat  # rank-1 term by broadcasting

        return out, grad

    return divide(matrix)
