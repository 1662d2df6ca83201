"""spectral_norm's hand-written gradient against autodiff of ``W / (v̂ W ûᵀ)``.

The power iteration's ``û``, ``v̂`` are constants of the gradient (Miyato et
al.); the reference takes them from a NumPy iteration in float64 and lets
TensorFlow differentiate ``W / σ``. Covers dense and HWIO kernels, a
non-converged ``u`` (one iteration: the rank-1 term is not ``W``'s own) and
float32 kernels so large that the iteration runs on ``W / max|W|``.
"""

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1


def _unit(x):
    return x / np.sqrt(np.sum(x * x))


def _reference(w_value, u_value, upstream):
    """``(W/σ, ∂L/∂W)`` with one NumPy power iteration and autodiff of ``W / σ``, float64."""
    matrix = w_value.reshape(-1, w_value.shape[-1])
    v_hat = _unit(u_value @ matrix.T)
    u_hat = _unit(v_hat @ matrix)
    with tf.Graph().as_default():
        w = tf.constant(w_value, tf.float64)
        flat = tf.reshape(w, matrix.shape)
        sigma = tf.reduce_sum(tf.matmul(tf.matmul(v_hat, flat), u_hat.T))
        out = w / sigma
        grad = tf.gradients(tf.reduce_sum(out * upstream), w)[0]
        with v1.Session() as session:
            return session.run([out, grad])


def _library(w_value, u_value, upstream, dtype):
    with tf.Graph().as_default():
        w = tf.constant(w_value, dtype)
        out, _, _ = tf1norm.spectral_norm(w, tf.constant(u_value, dtype), 1)
        loss = tf.reduce_sum(tf.cast(out, tf.float64) * upstream)
        grad = tf.gradients(loss, w)[0]
        with v1.Session() as session:
            return [np.asarray(x, np.float64) for x in session.run([out, grad])]


@pytest.mark.parametrize("shape", [(7, 5), (3, 3, 4, 6)])
def test_gradient_matches_autodiff_in_float64(shape):
    rng = np.random.default_rng(shape[0])
    w, u = rng.standard_normal(shape), rng.standard_normal((1, shape[-1]))
    upstream = rng.standard_normal(shape)
    got, want = _library(w, u, upstream, tf.float64), _reference(w, u, upstream)
    for name, a, b in zip(("w/σ", "grad"), got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13, err_msg=name)
    sigma = np.sum(w * want[0]) / np.sum(want[0] * want[0])
    # the rank-1 term through σ matters: upstream/σ alone is wrong
    assert not np.allclose(got[1], upstream / sigma, atol=1e-3)


def test_scaled_float32_kernel_gradient_matches_float64():
    """Entries ~1e20 overflow the plain iteration: W/max|W| path, gradient scaled back by k."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((3, 3, 2, 4)) * 1e20
    u = rng.standard_normal((1, 4))
    upstream = rng.standard_normal(w.shape)
    got = _library(w.astype(np.float32), u, upstream, tf.float32)
    want = _reference(w.astype(np.float32).astype(np.float64), u, upstream)
    for name, a, b in zip(("w/σ", "grad"), got, want):
        assert np.all(np.isfinite(a)), name
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(b).max(), err_msg=name)
