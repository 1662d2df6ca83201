"""Numerics on edge inputs, per dtype: no NaN/Inf, zero stays zero, huge and tiny units projected.

Every projection, reparameterization and constraint runs on a ``[4, 7]`` kernel
(dense ``[in, out]``: one unit per column) whose columns are the unit kinds:

=========  ======================================================================
column     entries (times the pattern ``[1, -1/2, 1/4, -3/4]``)
=========  ======================================================================
zero       0
tiny       1e-30 (float16: 2⁻¹², whose squares 2⁻²⁴ underflow float16 sums;
           float64: 1e-300, whose squares underflow float64)
large      1e20 (float16: 3e4, whose squares overflow float16)
max        the dtype's largest finite value (the unit's norm is beyond the dtype)
single     one max-finite entry, the rest 0 (norm exactly max-finite)
inside     0.6: norm ~0.82, inside [0.5, 1] (must pass through bit-exact)
mixed      [1e20, 1e-30, 0, -1] scaled like large/tiny (float16: [3e4, 2⁻¹², 0, -1])
=========  ======================================================================

Each result is compared with a Python float64 twin that computes the same
formula on the scaled form ``x = m·(x/m)`` (so the twin itself never
overflows), within a per-dtype tolerance relative to the unit's result norm.
One graph and one session per dtype (module-scoped), so the module runs in
seconds. The kernel and the twins are in tests/edge_kernels.py; thresholds in the
weight's dtype and the XLA path in test_numerics_thresholds.py.
"""

import numpy as np
import pytest

import tf1norm
from tf1norm.graph import embedding
from tf1norm._src.compat import tf, v1

from edge_kernels import (
    DTYPES,
    GAIN,
    KINDS,
    TINY,
    TOLERANCE,
    np_dtype,
    kernel,
    parts,
    twin_max_norm,
    twin_renorm,
    twin_unit_norm,
    twin_min_max,
    twin_weight_norm,
    twin_columns,
    _as64,
    _assert_close,
)


# ---------------------------------------------------------------- graph, once per dtype


def _projections(w, name):
    tiny_cap = TINY[name] / 2  # below the tiny unit's norm: the tiny unit must be projected
    return {
        "max_norm": tf1norm.max_norm(w, 1.0),
        "max_norm_tiny_cap": tf1norm.max_norm(w, tiny_cap),
        "renorm": tf1norm.renorm(w, 2, 1, 1.0),
        "unit_norm": tf1norm.unit_norm(w),
        "min_max_norm": tf1norm.min_max_norm(w, 0.5, 1.0),
        "min_max_norm_rate": tf1norm.min_max_norm(w, 0.5, 1.0, rate=0.5),
        "non_neg": tf1norm.non_neg(w),
        "MaxNorm": tf1norm.MaxNorm(1.0)(w),
        "UnitNorm": tf1norm.UnitNorm()(w),
        "MinMaxNorm": tf1norm.MinMaxNorm(0.5, 1.0)(w),
        "NonNeg": tf1norm.NonNeg()(w),
        "weight_norm": tf1norm.weight_norm(w, tf.fill([w.shape[1]], tf.constant(GAIN, w.dtype))),
        "max_norm_rows": embedding.max_norm_rows(tf.transpose(w), 1.0),
        "torch_renorm_rows": embedding.torch_renorm_rows(tf.transpose(w), 1.0),
    }


def _gradients(w, outputs):
    names = ["max_norm", "renorm", "unit_norm", "min_max_norm", "weight_norm"]
    loss_terms = [tf.reduce_sum(tf.cast(outputs[n], tf.float32) * 1e-3) for n in names]
    return {"grad_" + n: tf.gradients(t, w)[0] for n, t in zip(names, loss_terms)}


def _regularizer_and_getters(name, value):
    dtype = tf.as_dtype(name)
    with v1.variable_scope("reg"):
        kernel_var = v1.get_variable("kernel", initializer=tf.constant(value), dtype=dtype)
    tf1norm.max_norm_regularizer(1.0)(kernel_var)
    with v1.variable_scope("wn", custom_getter=tf1norm.weight_norm_getter()):
        wn_kernel = v1.get_variable("kernel", initializer=tf.constant(value), dtype=dtype)
    with v1.variable_scope("wn", reuse=True):
        gain = v1.get_variable("kernel/wn_g", dtype=dtype)
    return {
        "regularizer_op": v1.get_collection("max_norm"),
        "regularizer_var": kernel_var,
        "getter_w": wn_kernel,
        "getter_g": gain,
    }


def _spectral(name, kind):
    """A rank-1 matrix of one kind (power iteration converges in one step)."""
    column = kernel(name)[:, KINDS.index(kind)].astype(np.float64)
    row = np.array([1.0, -0.5, 0.25, 0.5, -1.0])
    value = np.outer(column / (np.abs(column).max() or 1.0), row) * (np.abs(column).max())
    value = np.where(np.isfinite(value), value, 0).astype(np_dtype(name))
    dtype = tf.as_dtype(name)
    u = tf.constant(np.ones([1, 5]), dtype)
    w = tf.constant(value)
    normalized, sigma, u_new = tf1norm.spectral_norm(w, u, power_iterations=2)
    var = v1.get_variable("sn_" + kind, initializer=w, dtype=dtype)
    constrained = tf1norm.SpectralNorm(power_iterations=3)(var)
    return value, {"sn": normalized, "sigma": sigma, "u": u_new, "constraint": constrained}


SPECTRAL_KINDS = ["zero", "tiny", "large", "max", "inside"]


@pytest.fixture(scope="module", params=DTYPES)
def results(request):
    name = request.param
    graph = tf.Graph()
    with graph.as_default():
        value = kernel(name)
        w = tf.constant(value)
        outputs = _projections(w, name)
        outputs.update(_gradients(w, outputs))
        stateful = _regularizer_and_getters(name, value)
        spectral = {kind: _spectral(name, kind) for kind in SPECTRAL_KINDS}
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            got = sess.run(outputs)
            got["getter_w"], got["getter_g"] = sess.run(
                [stateful["getter_w"], stateful["getter_g"]]
            )
            sess.run(stateful["regularizer_op"])
            got["regularizer"] = sess.run(stateful["regularizer_var"])
            got["spectral"] = {k: (v, sess.run(f)) for k, (v, f) in spectral.items()}
    return name, value, got


PROJECTIONS = {
    "max_norm": lambda c: twin_max_norm(c, 1.0),
    "MaxNorm": lambda c: twin_max_norm(c, 1.0),
    "regularizer": lambda c: twin_max_norm(c, 1.0),
    "renorm": lambda c: twin_renorm(c, 1.0),
    "unit_norm": twin_unit_norm,
    "UnitNorm": twin_unit_norm,
    "min_max_norm": lambda c: twin_min_max(c, 0.5, 1.0, 1.0),
    "MinMaxNorm": lambda c: twin_min_max(c, 0.5, 1.0, 1.0),
    "min_max_norm_rate": lambda c: twin_min_max(c, 0.5, 1.0, 0.5),
    "weight_norm": lambda c: twin_weight_norm(c, GAIN),
    "non_neg": lambda c: [x if x > 0 else 0.0 for x in c],
    "NonNeg": lambda c: [x if x > 0 else 0.0 for x in c],
}


@pytest.mark.parametrize("op", sorted(PROJECTIONS))
def test_matches_float64_twin(results, op):
    name, value, got = results
    want = twin_columns(value, PROJECTIONS[op])
    _assert_close(name, got[op], want, op)


def test_tiny_units_are_projected(results):
    name, value, got = results
    cap = float(np.asarray(TINY[name] / 2, np_dtype(name)))
    want = twin_columns(value, lambda c: twin_max_norm(c, cap))
    _assert_close(name, got["max_norm_tiny_cap"], want, "max_norm(tiny cap)")
    norms = np.sqrt((_as64(got["max_norm_tiny_cap"]) ** 2).sum(axis=0))
    assert norms[KINDS.index("tiny")] == pytest.approx(cap, rel=TOLERANCE[name] * 4)


CAPPED = ["max_norm", "MaxNorm", "regularizer", "renorm", "min_max_norm", "MinMaxNorm"]


@pytest.mark.parametrize("op", CAPPED + ["unit_norm", "UnitNorm", "weight_norm"])
def test_projected_norms_hit_the_target(results, op):
    name, _, got = results
    target = GAIN if op == "weight_norm" else 1.0
    norms = np.sqrt((_as64(got[op]) ** 2).sum(axis=0))
    for kind in ["large", "max", "single", "mixed"]:
        assert norms[KINDS.index(kind)] == pytest.approx(target, rel=TOLERANCE[name] * 4), (
            f"{op} [{name}] unit {kind}: norm {norms[KINDS.index(kind)]}"
        )


@pytest.mark.parametrize("op", sorted(PROJECTIONS) + ["max_norm_rows", "torch_renorm_rows"])
def test_zero_stays_zero(results, op):
    _, _, got = results
    column = np.asarray(got[op])
    column = column[KINDS.index("zero")] if op.endswith("_rows") else column[:, 0]
    assert np.all(_as64(column) == 0)


@pytest.mark.parametrize("op", CAPPED + ["non_neg"])
def test_in_range_units_are_bit_exact(results, op):
    _, value, got = results
    j = KINDS.index("inside")
    if op == "non_neg":
        j = KINDS.index("zero")
    assert np.asarray(got[op])[:, j].tobytes() == value[:, j].tobytes()


@pytest.mark.parametrize("op", ["max_norm", "renorm", "unit_norm", "min_max_norm", "weight_norm"])
def test_gradients_are_finite(results, op):
    name, _, got = results
    assert np.all(np.isfinite(_as64(got["grad_" + op]))), f"grad {op} [{name}]"


@pytest.mark.parametrize("op", ["max_norm_rows", "torch_renorm_rows"])
def test_embedding_rows(results, op):
    name, value, got = results
    rows = _as64(got[op])
    assert np.all(np.isfinite(rows))
    norms = np.sqrt((rows**2).sum(axis=1))
    for kind in ["large", "max", "single", "mixed"]:
        assert norms[KINDS.index(kind)] == pytest.approx(1.0, rel=TOLERANCE[name] * 4)
    inside = KINDS.index("inside")
    assert np.asarray(got[op])[inside].tobytes() == value.T[inside].tobytes()
    if op == "max_norm_rows":
        assert np.all(norms <= 1.0)


def test_weight_norm_getter(results):
    name, value, got = results
    g = _as64(got["getter_g"])
    want = [parts([float(x) for x in value[:, j]]) for j in range(value.shape[1])]
    for j, kind in enumerate(KINDS):
        m, r = want[j]
        if kind == "max":  # ‖v‖ is beyond the dtype: g cannot hold it (documented)
            continue
        assert g[j] == pytest.approx(m * r, rel=TOLERANCE[name] * 2, abs=0), kind
        w = _as64(got["getter_w"])[:, j]
        assert np.all(np.isfinite(w)), kind
    inside = KINDS.index("inside")
    w = _as64(got["getter_w"])[:, inside]
    np.testing.assert_allclose(w, _as64(value[:, inside]), rtol=TOLERANCE[name] * 4)


@pytest.mark.parametrize("kind", SPECTRAL_KINDS)
def test_spectral_norm(results, kind):
    name, _, got = results
    value, out = got["spectral"][kind]
    scaled = _as64(value)
    m = np.abs(scaled).max()
    assert np.all(np.isfinite(_as64(out["sn"]))) and np.all(np.isfinite(_as64(out["u"])))
    assert np.all(np.isfinite(_as64(out["constraint"])))
    if m == 0:
        assert np.all(_as64(out["sn"]) == 0) and np.all(_as64(out["constraint"]) == 0)
        return
    with np.errstate(over="ignore"):
        sigma = np.linalg.svd(scaled / m, compute_uv=False)[0] * m  # may be inf (beyond float64)
        sigma_fits = np.isfinite(np.asarray(sigma, np_dtype(name)).astype(np.float64))
    tol = TOLERANCE[name] * 4
    assert np.linalg.svd(_as64(out["sn"]), compute_uv=False)[0] == pytest.approx(1, rel=tol)
    got_sigma = _as64(out["sigma"])
    if sigma_fits:
        assert got_sigma == pytest.approx(sigma, rel=tol)
    constrained = _as64(out["constraint"])
    if sigma > 1:
        assert np.linalg.svd(constrained, compute_uv=False)[0] == pytest.approx(1, rel=tol)
    else:
        assert np.asarray(out["constraint"]).tobytes() == np.asarray(value).tobytes()
