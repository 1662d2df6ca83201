"""weight_norm's hand-written gradient against autodiff of the plain formula.

``tf1norm.weight_norm`` differentiates ``g·v/‖v‖`` by a custom gradient
(``tf1norm/_math/weight_norm_scale.py``); these tests take the autodiff
gradient of ``g·v·rsqrt(max(Σv², ε))`` in float64 as the reference, on dense
and HWIO conv kernels, several reduction axes, floored (tiny and zero) units,
and float32 kernels whose Σv² overflows or underflows (the guarded path).
"""

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1


def _reference(v, g, axes, epsilon):
    """Autodiff of the plain formula, float64 (no range guard needed at these values)."""
    squared = tf.reduce_sum(v * v, axis=axes, keepdims=True)
    shape = [1 if a in axes else d for a, d in enumerate(v.shape)]
    return tf.reshape(g, shape) * v * tf.math.rsqrt(tf.maximum(squared, epsilon))


def _gradients(v_value, g_value, upstream, axes, epsilon, dtype, fn):
    """``(w, ∂L/∂v, ∂L/∂g)`` of ``L = Σ w·upstream`` for ``fn(v, g)``, as float64 arrays."""
    with tf.Graph().as_default():
        v = tf.constant(v_value, dtype)
        g = tf.constant(g_value, dtype)
        w = fn(v, g, axes, epsilon)
        loss = tf.reduce_sum(tf.cast(w, tf.float64) * upstream)
        dv, dg = tf.gradients(loss, [v, g])
        with v1.Session() as session:
            return [np.asarray(x, np.float64) for x in session.run([w, dv, dg])]


def _library(v, g, axes, epsilon):
    return tf1norm.weight_norm(v, g, axes=axes, epsilon=epsilon)


CASES = [
    ((5, 3), None),  # dense [in, out]
    ((3, 3, 4, 6), None),  # conv HWIO, norm over H, W, I
    ((3, 3, 4, 6), (0, 1)),  # per (input, output) pair
    ((4, 7, 2), (1,)),  # middle axis
    ((6, 5), (1,)),  # per row
]


@pytest.mark.parametrize("shape, axes", CASES)
def test_gradient_matches_autodiff_in_float64(shape, axes):
    rng = np.random.default_rng(len(shape) * 10 + (0 if axes is None else len(axes)))
    v = rng.standard_normal(shape)
    reduce = tuple(range(len(shape) - 1)) if axes is None else axes
    kept = [d for a, d in enumerate(shape) if a not in reduce]
    g = rng.uniform(0.5, 2.0, kept)
    upstream = rng.standard_normal(shape)
    got = _gradients(v, g, upstream, axes, 1e-12, tf.float64, _library)
    want = _gradients(v, g, upstream, reduce, 1e-12, tf.float64, _reference)
    for name, a, b in zip(("w", "dv", "dg"), got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)
    # the projection term matters: the plain scaled gradient g/‖v‖·dW is wrong
    norms = np.sqrt((v * v).sum(axis=reduce, keepdims=True))
    assert not np.allclose(got[1], g.reshape(norms.shape) / norms * upstream, atol=1e-3)


def test_floored_units_drop_the_projection_term():
    """Units with Σv² < ε (a zero unit, a tiny one) take ∂L/∂v = g/√ε·dW, as autodiff of max."""
    rng = np.random.default_rng(1)
    v = rng.standard_normal((4, 3))
    v[:, 1] = 0.0
    v[:, 2] = 1e-5  # Σv² = 4e-10 < ε = 1e-8
    g = np.array([1.5, 2.0, 0.5])
    upstream = rng.standard_normal((4, 3))
    got = _gradients(v, g, upstream, None, 1e-8, tf.float64, _library)
    want = _gradients(v, g, upstream, (0,), 1e-8, tf.float64, _reference)
    for name, a, b in zip(("w", "dv", "dg"), got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(got[1][:, 1:], g[1:] / 1e-4 * upstream[:, 1:], rtol=1e-12)


@pytest.mark.parametrize("scale", [1e20, 1e-19])
def test_guarded_float32_gradient_matches_float64(scale):
    """Σv² overflows (1e20) or underflows (1e-19) in float32: the scaled path."""
    rng = np.random.default_rng(2)
    v = rng.standard_normal((3, 3, 2, 4)) * scale
    g = rng.uniform(0.5, 2.0, 4)
    upstream = rng.standard_normal(v.shape)
    got = _gradients(v, g, upstream, None, 1.5e-38, tf.float32, _library)
    want = _gradients(v, g, upstream, (0, 1, 2), 1.5e-38, tf.float64, _reference)
    for name, a, b in zip(("w", "dv", "dg"), got, want):
        assert np.all(np.isfinite(a)), name
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=0, err_msg=name)
