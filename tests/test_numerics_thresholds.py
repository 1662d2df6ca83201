"""Thresholds are rounded once to the weight's dtype (float64 thresholds are not
rounded to float32; a threshold outside the dtype raises; a threshold tensor is
cast), and max_norm under XLA agrees with the float64 twin on every edge unit
(the edge kernel: tests/edge_kernels.py)."""

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1
from edge_kernels import (
    DTYPES,
    KINDS,
    TINY,
    TOLERANCE,
    np_dtype,
    kernel,
    twin_columns,
    twin_max_norm,
    _as64,
    _assert_close,
)


# ---------------------------------------------------------------- thresholds in the dtype


def _run(tensor):
    with v1.Session() as sess:
        return sess.run(tensor)


def test_float64_threshold_is_not_rounded_to_float32(graph):
    w = tf.constant(np.array([[3.0], [4.0]]), tf.float64)
    out = _run(tf1norm.max_norm(w, 1.1))
    assert np.linalg.norm(out) == pytest.approx(1.1, rel=1e-15, abs=0)
    assert abs(np.linalg.norm(out) - 1.1) < 1e-15  # float32 1.1 would be 1.1000000238


def test_float64_huge_threshold(graph):
    w = tf.constant(np.array([[3e150], [4e150]]), tf.float64)
    out = _run(tf1norm.max_norm(w, 1e100))
    assert np.all(np.isfinite(out)) and np.linalg.norm(out / 1e100) == pytest.approx(1, rel=1e-14)


def test_float64_tiny_threshold_keeps_units_under_it(graph):
    value = np.array([[3e-71, 1.0], [4e-71, 0.0]])
    out = _run(tf1norm.max_norm(tf.constant(value), 1e-60))
    assert out[:, 0].tobytes() == value[:, 0].tobytes()  # under 1e-60: bit-exact
    assert out[0, 1] == pytest.approx(1e-60, rel=1e-15)


@pytest.mark.parametrize(
    "make, dtype, arg",
    [
        (lambda w: tf1norm.max_norm(w, 1e5), tf.float16, "threshold"),
        (lambda w: tf1norm.max_norm(w, 1e-60), tf.float32, "threshold"),
        (lambda w: tf1norm.MaxNorm(1e5)(w), tf.float16, "threshold"),
        (lambda w: tf1norm.renorm(w, 2, 1, 1e-50), tf.float32, "maxnorm"),
        (lambda w: tf1norm.min_max_norm(w, 0.0, 1e5), tf.float16, "max_value"),
        (lambda w: tf1norm.min_max_norm(w, 1e-50, 1.0), tf.float32, "min_value"),
        (lambda w: tf1norm.max_norm(w, 1e39), tf.bfloat16, "threshold"),
    ],
)
def test_threshold_outside_the_dtype_raises(graph, make, dtype, arg):
    w = tf.ones([3, 2], dtype)
    with pytest.raises(ValueError, match=f"`{arg}`.*{dtype.name}"):
        make(w)


def test_threshold_tensor_is_cast_to_the_weight_dtype(graph):
    w = tf.constant(np.array([[3.0], [4.0]]), tf.float64)
    limit = v1.placeholder(tf.float64, [])
    out = tf1norm.max_norm(w, limit)
    with v1.Session() as sess:
        value = sess.run(out, {limit: 1e-200})
    assert np.linalg.norm(value) == pytest.approx(1e-200, rel=1e-14)


# ---------------------------------------------------------------- the XLA path


@pytest.mark.parametrize("name", DTYPES)
def test_max_norm_under_xla_matches_float64_twin(name):
    """Inside ``jit_compile=True`` the cap picks per-unit factors in a small conditional
    (``_norms.guarded_factors``); it must agree with the twin on every edge unit."""
    value = kernel(name)
    tiny_cap = float(np.asarray(TINY[name] / 2, np_dtype(name)))

    @tf.function(jit_compile=True)
    def caps(w):
        return (
            tf1norm._math.projections.max_norm_assignment(w, 1.0, axes=(0,)),
            tf1norm._math.projections.max_norm_assignment(w, tiny_cap, axes=(0,)),
            tf1norm.MaxNorm(1.0)(w),
        )

    capped, tiny, constraint = (t.numpy() for t in caps(tf.constant(value)))
    want = twin_columns(value, lambda c: twin_max_norm(c, 1.0))
    _assert_close(name, capped, want, "max_norm under XLA")
    _assert_close(name, constraint, want, "MaxNorm under XLA")
    _assert_close(
        name,
        tiny,
        twin_columns(value, lambda c: twin_max_norm(c, tiny_cap)),
        "max_norm(tiny cap) under XLA",
    )
    inside = KINDS.index("inside")
    assert np.array_equal(capped[:, inside], value[:, inside])  # not over: bit-exact
    norms = np.sqrt((_as64(capped) ** 2).sum(axis=0))
    for kind in ["large", "max", "single", "mixed"]:
        assert norms[KINDS.index(kind)] == pytest.approx(1.0, rel=TOLERANCE[name] * 4), kind
