"""``max_norm`` on subnormal units and thresholds, every dtype, against exact rational arithmetic.

TensorFlow's CPU kernels (and XLA's) flush subnormals to zero, so the plain
formula left float32 entries 1e-40 capped at 1e-42 200× over the cap and
turned float32 ones capped at 1e-44 into zeros (issue 20). The properties,
for every unit (column of a ``[4, units]`` kernel), with the unit's exact norm
``n`` and the threshold ``t`` rounded to the weight's dtype:

* a zero unit stays zero;
* a unit with ``n <= t`` comes back bit for bit;
* a unit with ``n > t`` ends with exact norm ``<= t·(1 + 4·eps)`` and
  ``>= t·(1 − 4·eps) − √4·q`` (``q`` the smallest subnormal: results below the
  normal range are rounded toward zero onto the subnormal grid), and each
  entry is within ``4·eps·t + q`` of ``x·t/n``.

``eps`` is the weight dtype's machine epsilon. Norms and the over/under
decision are computed exactly with ``fractions.Fraction`` (every float is a
dyadic rational); units whose ``n/t`` is within 1e-4 of 1 are not classified
(the kernel's rounding may decide either way there). Three entry points:
``max_norm`` (with its gradient), ``max_norm_assignment`` in a TF1 graph (the
train op's traced cap, also with a fed threshold) and under
``jit_compile=True`` (the XLA factors, also with a threshold tensor).
Run with ``TF_ENABLE_ONEDNN_OPTS=0`` too (the results must not depend on oneDNN).
"""

import fractions
import math

import ml_dtypes
import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

DTYPES = ["float16", "bfloat16", "float32", "float64"]
PATTERN = [3.0, -1.0, 2.0, -2.0]


def np_dtype(name):
    return np.dtype(getattr(ml_dtypes, name)) if name == "bfloat16" else np.dtype(name)


def info(name):
    return ml_dtypes.finfo(np_dtype(name))


def in_dtype(values, name):
    return np.asarray(values, np.float64).astype(np_dtype(name))


def edge_units(name):
    """Columns: zero, a few quanta, mid-subnormal, smallest normals, mixed, ones, huge."""
    q, tiny, big = (
        float(info(name).smallest_subnormal),
        float(info(name).tiny),
        float(info(name).max),
    )
    columns = [
        [0.0] * 4,
        [q * p for p in PATTERN],
        [tiny / 64 * p for p in PATTERN],
        [tiny * p for p in PATTERN],
        [1.0, tiny / 8, -q, 0.0],
        [1.0, -1.0, 1.0, -1.0],
        [big / 4 * p / 3 for p in PATTERN],
    ]
    return in_dtype(np.array(columns).T, name)


def random_units(name, rng, count=48):
    """Entries from random bit patterns (every exponent equally likely), a quarter subnormal."""
    width = np_dtype(name).itemsize * 8
    bits = rng.integers(0, 2 ** (width - 1), size=(4, count), dtype=np.uint64)
    values = bits.astype(f"uint{width}").view(np_dtype(name)).astype(np.float64)
    values = np.where(np.isfinite(values), values, 0.0)
    subnormal = rng.integers(0, 2 ** max(width - 10, 8), size=(4, count)) * float(
        info(name).smallest_subnormal
    )
    values = np.where(rng.random((4, count)) < 0.25, subnormal, values)
    return in_dtype(values * rng.choice([-1.0, 1.0], size=values.shape), name)


def thresholds(name, rng):
    q, tiny = float(info(name).smallest_subnormal), float(info(name).tiny)
    fixed = [3 * q, 7 * q, tiny / 300, tiny * 1.5, tiny * 2**20, 1.0]
    drawn = [math.exp(x) for x in rng.uniform(math.log(q), math.log(float(info(name).max)), 3)]
    return [float(in_dtype(t, name)) for t in fixed + drawn if float(in_dtype(t, name)) > 0]


# ---------------------------------------------------------------- exact reference


def exact_squared_norm(column):
    return sum(fractions.Fraction(float(x)) ** 2 for x in column)


def root(square):
    """``sqrt`` of a non-negative Fraction as a float, without under- or overflow on the way."""
    if square == 0:
        return 0.0
    k = (square.denominator.bit_length() - square.numerator.bit_length()) // 2
    return math.ldexp(math.sqrt(float(square * fractions.Fraction(4) ** k)), -k)


def check_unit(name, before, after, t, where):
    eps, q = float(info(name).eps), float(info(name).smallest_subnormal)
    if not np.any(before.astype(np.float64)):
        assert np.all(after.astype(np.float64) == 0), f"{where}: zero unit became {after}"
        return
    n2, t2 = exact_squared_norm(before), fractions.Fraction(t) ** 2
    if abs(n2 / t2 - 1) < fractions.Fraction(1, 10**4):
        return  # too close to the threshold to say which side the kernel's rounding takes
    if n2 < t2:
        assert after.tobytes() == before.tobytes(), (
            f"{where}: under-threshold unit changed {before} -> {after}"
        )
        return
    out2 = exact_squared_norm(after)
    assert out2 <= t2 * fractions.Fraction(1 + 4 * eps) ** 2, (
        f"{where}: norm {root(out2)} over the threshold {t} ({before} -> {after})"
    )
    lowest = fractions.Fraction(t) * fractions.Fraction(1 - 4 * eps) - 2 * fractions.Fraction(q)
    assert lowest <= 0 or out2 >= lowest**2, (
        f"{where}: norm {root(out2)} collapsed under {t} ({before} -> {after})"
    )
    twin = _twin(before, t)
    error = np.abs(after.astype(np.float64) - twin)
    assert np.all(error <= 4 * eps * t + q), (
        f"{where}: {after} is not x·t/n = {twin} (n = {root(n2)})"
    )


def _twin(column, t):
    """``x·t/n`` in float64 on the scaled form ``x = m·(x/m)``: no overflow, no underflow."""
    x = column.astype(np.float64)
    m = np.abs(x).max()
    scaled = [math.ldexp(v, -math.frexp(m)[1]) for v in x]  # exact: a power of two
    r = math.sqrt(sum(v * v for v in scaled))
    return np.array([v / r * t for v in scaled])


# ---------------------------------------------------------------- the three entry points


def _tf1_results(value, caps, name):
    """``{(entry, t): output}`` from one TF1 graph: max_norm, max_norm_assignment, fed cap."""
    with tf.Graph().as_default():
        w = tf.constant(value)
        fed = v1.placeholder(tf.float32 if name in ("float16", "bfloat16") else w.dtype, [])
        fetches = {}
        for t in caps:
            fetches[("max_norm", t)] = tf1norm.max_norm(w, t)
            fetches[("assignment", t)] = tf1norm._math.projections.max_norm_assignment(w, t)
        fed_cap = tf1norm._math.projections.max_norm_assignment(w, fed)
        grads = tf.gradients(
            [tf.reduce_sum(tf.cast(fetches[("max_norm", t)], tf.float32)) for t in caps], w
        )[0]
        with v1.Session() as sess:
            results = sess.run(fetches)
            for t in caps:
                results[("fed", t)] = sess.run(fed_cap, {fed: t})
            results["grad"] = sess.run(grads)
    return results


def _xla_results(value, caps):
    @tf.function(jit_compile=True)
    def constant_caps(w):
        return [tf1norm._math.projections.max_norm_assignment(w, t) for t in caps]

    @tf.function(jit_compile=True)
    def tensor_cap(w, t):
        return tf1norm._math.projections.max_norm_assignment(w, t)

    results = {("xla", t): out.numpy() for t, out in zip(caps, constant_caps(tf.constant(value)))}
    limit_dtype = tf.float32 if value.dtype.itemsize == 2 else tf.as_dtype(value.dtype)
    for t in caps:
        results[("xla_tensor", t)] = tensor_cap(
            tf.constant(value), tf.constant(t, limit_dtype)
        ).numpy()
    return results


@pytest.fixture(scope="module", params=DTYPES)
def case(request):
    name = request.param
    rng = np.random.default_rng(20 + DTYPES.index(name))
    value = np.concatenate([edge_units(name), random_units(name, rng)], axis=1)
    caps = thresholds(name, rng)
    results = _tf1_results(value, caps, name)
    results.update(_xla_results(value, caps))
    return name, value, caps, results


# Seen on TensorFlow 2.16 (CI's oldest cell), passes on 2.21: the XLA path's
# float32 -> half conversion rounds a subnormal result to nearest, so under
# jit_compile a float16/bfloat16 unit capped at a subnormal threshold can end one
# subnormal ulp per entry over it (float16, t = 3 ulps: entries of 2 ulps).
_OLD_XLA_HALF = tuple(int(p) for p in tf.__version__.split(".")[:2]) < (2, 21)


@pytest.mark.parametrize("entry", ["max_norm", "assignment", "fed", "xla", "xla_tensor"])
def test_cap_properties_against_exact_arithmetic(case, entry, request):
    name, value, caps, results = case
    if _OLD_XLA_HALF and entry.startswith("xla") and name in ("float16", "bfloat16"):
        request.applymarker(
            pytest.mark.xfail(
                reason="XLA before TF 2.21 rounds subnormal half results to nearest", strict=False
            )
        )
    for t in caps:
        got = np.asarray(results[(entry, t)])
        assert got.dtype == value.dtype
        for j in range(value.shape[1]):
            check_unit(name, value[:, j], got[:, j], t, f"{entry} [{name}] t={t:.6g} unit {j}")


def test_gradient_stays_finite(case):
    assert np.all(np.isfinite(np.asarray(case[3]["grad"]).astype(np.float64)))


@pytest.mark.parametrize(
    "name, entries, cap",
    [
        ("float32", 1e-40, 1e-42),  # was left 200x over the cap (subnormals read as 0)
        ("float64", 1e-200, 1e-210),  # squares underflow float64
        ("float32", 1.0, 1e-44),  # the cap is 7 subnormal quanta: was 0
        ("float64", 1e-310, 1e-320),
        ("bfloat16", 1e-39, 8e-40),
        ("float16", 1.0, 2e-7),
    ],
)
def test_issue_cases(graph, name, entries, cap):
    value = in_dtype(np.full((4, 3), entries), name)
    t = float(in_dtype(cap, name))
    with v1.Session() as sess:
        got = sess.run(tf1norm.max_norm(tf.constant(value), cap))
    for j in range(3):
        check_unit(name, value[:, j], got[:, j], t, f"{name} {entries} capped at {cap}")
    assert np.all(got.astype(np.float64) != 0)  # not collapsed to zero
