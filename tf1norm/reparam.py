"""Pure math of the reparameterizations: weight normalization and spectral norm.

Tensor -> Tensor functions, no variables; the custom getters in
``tf1norm.getters`` create the variables and call these.
"""

from tf1norm import _checks
from tf1norm._tf import tf


def weight_norm(v, g, axes=None, epsilon=1e-12, name=None):
    """Weight normalization: ``w = g · v / ‖v‖`` per output unit.

    ``‖v‖ = sqrt(max(Σ_axes v², epsilon))``, so ``v = 0`` gives ``w = 0`` and
    finite gradients instead of NaN. The default axes are every axis but the
    last (see ``tf1norm.projections``), so ``g`` has shape ``[out]``.

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
    with tf.name_scope(name or "weight_norm"):
        v = _checks.float_tensor(v, "weight_norm", "v")
        axes = _checks.axes_tuple(axes, _checks.static_rank(v, "weight_norm", "v"),
                                  "weight_norm")
        epsilon = _checks.positive_number(epsilon, "weight_norm", "epsilon")
        g = tf.cast(g, v.dtype)
        kept = [d for a, d in enumerate(v.shape) if a not in axes]
        if g.shape.rank is not None and g.shape.as_list() != kept:
            raise ValueError(f"weight_norm: `g` must have shape {kept} (v's shape without "
                             f"axes {axes}); got {g.shape}.")
        gain = tf.reshape(g, [1 if a in axes else d for a, d in enumerate(v.shape)])
        squared = tf.reduce_sum(tf.square(v), axis=axes, keepdims=True)
        return v * (gain * tf.math.rsqrt(tf.maximum(squared, epsilon)))


def _normalize(x, epsilon):
    return x * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(x)), epsilon))


def spectral_norm(w, u, power_iterations=1, epsilon=1e-12, name=None):
    """Spectral normalization by power iteration: ``(w / σ, σ, u_new)``.

    ``W = reshape(w, [-1, out])`` (a conv kernel HWIO becomes ``[H·W·I, O]``);
    starting from ``u`` (shape ``[1, out]``), each iteration computes
    ``v = normalize(u Wᵀ)``, ``u = normalize(v W)``; then ``σ = v W uᵀ``.
    ``u`` and ``v`` are under ``stop_gradient``, so the gradient of ``w / σ``
    flows through ``w`` in both the numerator and σ (a true reparameterization,
    Miyato et al. 2018). Normalization uses ``x / sqrt(max(‖x‖², epsilon))``.
    A zero ``w`` has σ = 0: the result is then ``w`` itself (zeros, not NaN)
    and ``u_new`` is ``u`` unchanged.

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
        power_iterations = _checks.positive_int(power_iterations, "spectral_norm",
                                                "power_iterations")
        epsilon = _checks.positive_number(epsilon, "spectral_norm", "epsilon")
        matrix = tf.reshape(w, [-1, w.shape[rank - 1]])
        u_in = tf.reshape(tf.cast(u, w.dtype), [1, -1])
        u_hat = u_in
        for _ in range(power_iterations):
            v_hat = _normalize(tf.matmul(u_hat, matrix, transpose_b=True), epsilon)
            product = tf.matmul(v_hat, matrix)
            u_hat = _normalize(product, epsilon)
        u_hat, v_hat = tf.stop_gradient(u_hat), tf.stop_gradient(v_hat)
        # σ = v̂ W ûᵀ with û = v̂W/‖v̂W‖ is ‖v̂W‖: no third matrix-vector product.
        sigma_value = tf.stop_gradient(tf.norm(product))
        # A zero matrix (or a u orthogonal to its row space) gives û = 0; keeping
        # the incoming u lets the iteration resume once W is non-zero.
        u_hat = tf.where(sigma_value > 0, u_hat, u_in)
        normalized = _divide_by_sigma(matrix, sigma_value, u_hat, v_hat)
        # The σ returned keeps its differentiable form (∂σ/∂W = v̂ᵀû); it is
        # only computed when used, e.g. by spectral_norm_regularizer.
        sigma = tf.reshape(tf.matmul(tf.matmul(v_hat, matrix), u_hat, transpose_b=True), [])
        return tf.reshape(normalized, tf.shape(w)), sigma, u_hat


def _divide_by_sigma(matrix, sigma, u_hat, v_hat):
    """``W / σ`` with σ = v̂ W ûᵀ, and a hand-written gradient.

    With û, v̂ constant, ∂σ/∂W = v̂ᵀû, so for upstream G:
    ``∂L/∂W = G/σ − (⟨G, W/σ⟩/σ)·v̂ᵀû``: one elementwise dot product and
    one pass that subtracts the rank-1 term by broadcasting. (A k=1 MatMul for
    the outer product, or a [1, N]×[N, 1] MatMul for the dot, is several times
    slower on CPU than these elementwise forms.)

    σ = 0 only for a zero matrix: then ``W / σ`` is taken as ``W`` itself
    (zero, with the identity gradient), never ``0/0 = NaN``.
    """
    inverse = tf.where(sigma > 0, 1.0 / sigma, tf.ones_like(sigma))

    @tf.custom_gradient
    def divide(m):
        out = m * inverse

        def grad(upstream):
            dot = tf.reduce_sum(upstream * out)
            column = tf.transpose(v_hat * (dot * inverse))  # [in, 1]
            return upstream * inverse - column * u_hat      # rank-1 term by broadcasting

        return out, grad

    return divide(matrix)
