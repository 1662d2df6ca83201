"""Weight normalization's ``g·v/‖v‖`` with a hand-written gradient.

Autodiff through ``g·v·rsqrt(max(Σv², ε))`` and its range guard builds about
a dozen backward ops per kernel (Mul, Sum, Tile, Reshape, RsqrtGrad, the
``tf.cond``'s gradient ``If``, AddN, ...). With ``n = ‖v‖`` per output unit,
``d = v/n`` and ``s = g/n``, the gradient of ``w = g·d`` for upstream ``dW`` is

    ∂L/∂g = Σ dW·d,        ∂L/∂v = s·(dW − (Σ dW·d)·d)

(the second term is dropped for units whose ``Σv²`` is under the floor ε,
where ``n = √ε`` is a constant, as autodiff through ``max`` drops it): a few
elementwise passes over the kernel. The range guard's ``tf.cond`` runs inside
the forward function only, once per kernel, and chooses per-unit ``1/n`` and
the floor mask along with ``w``; no gradient is taken through it.
"""

import math

from tf1norm._math import norms as _norms
from tf1norm._src.compat import tf


def gain_times_direction(v, gain, axes, epsilon):
    """``(w, plain w, plain_ok)`` of ``g·v·rsqrt(max(Σv², ε))``, range-guarded.

    ``gain`` is ``g`` reshaped to broadcast against ``v`` (kept dims, in
    ``v``'s dtype); ``epsilon`` a scalar tensor in the compute dtype (float32
    for the half types). Where Σv² overflows or loses precision to underflow
    (see ``tf1norm._math.norms``) the unit is recomputed as ``(v/m)·(g/r)``
    with ``‖v‖ = m·r``. ``plain w`` is the unguarded value and ``plain_ok``
    the scalar bool that ``w`` equals it (``reparam.weight_norm_parts``).
    Gradients flow to ``v`` and ``gain`` by the hand-written rule above.
    """
    extras = {}

    @tf.custom_gradient
    def scale(v, gain):
        wide, wide_gain = tf.cast(v, epsilon.dtype), tf.cast(gain, epsilon.dtype)
        # x·x, not tf.square: kept from the autodiff version (same forward bits)
        squared = tf.reduce_sum(wide * wide, axis=axes, keepdims=True)
        inverse = tf.math.rsqrt(tf.maximum(squared, epsilon))
        fast = wide * (wide_gain * inverse)
        trusted = _trusted(squared, v.dtype, epsilon)
        if trusted is True:
            w, inverse, keep = fast, inverse, squared >= epsilon
            trusted = tf.constant(True)
        else:
            w, inverse, keep = tf.cond(
                trusted,
                lambda: (tf.identity(fast), tf.identity(inverse), squared >= epsilon),
                lambda: _scaled_forward(wide, wide_gain, axes, epsilon),
            )
        extras.update(plain=tf.cast(fast, v.dtype), plain_ok=trusted)

        def grad(upstream):
            return _gradient(upstream, wide, wide_gain, inverse, keep, axes, (v, gain))

        return tf.cast(w, v.dtype), grad

    w = scale(v, gain)
    return w, extras["plain"], extras["plain_ok"]


def _trusted(squared, dtype, epsilon):
    """Scalar bool: the plain Σv² is finite and accurate (True for float16: no guard)."""
    if dtype == tf.float16:
        return True
    low = 2 * _norms.low_norm(epsilon.dtype) ** 2  # on squares: eps >= 4·low_norm² is safe
    return _norms.all_of(_norms.below(squared, math.inf), _norms.accurate(squared, low, epsilon))


def _scaled_forward(wide, gain, axes, epsilon):
    """``(w, 1/‖v‖, not floored)`` per unit from ``‖v‖ = m·r``, ``m = max|v|``: no overflow."""
    m = tf.reduce_max(tf.abs(wide), axis=axes, keepdims=True)
    m = tf.where(m > 0, m, tf.ones_like(m))
    scaled = wide / m
    r = tf.sqrt(tf.reduce_sum(scaled * scaled, axis=axes, keepdims=True))
    safe_r = tf.where(r > 0, r, tf.ones_like(r))
    keep = m * r >= tf.sqrt(epsilon)
    floor = tf.math.rsqrt(epsilon)
    w = tf.where(keep, scaled * (gain / safe_r), wide * floor * gain)
    return w, tf.where(keep, (1 / m) / safe_r, floor * tf.ones_like(m)), keep


def _gradient(upstream, wide, gain, inverse, keep, axes, inputs):
    """``(∂L/∂v, ∂L/∂gain)``: ``s·(dW − [keep]·(Σ dW·d)·d)`` and ``Σ dW·d``, ``d = v/n``."""
    v, g = inputs
    upstream = tf.cast(upstream, wide.dtype)
    direction = wide * inverse
    dot = tf.reduce_sum(upstream * direction, axis=axes, keepdims=True)
    projected = tf.where(keep, dot, tf.zeros_like(dot))
    dv = (gain * inverse) * (upstream - projected * direction)
    return tf.cast(dv, v.dtype), tf.cast(dot, g.dtype)
