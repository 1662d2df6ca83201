"""The edge-input kernel of the dtype numerics tests (tests/test_numerics_*.py): a
``[4, 7]`` kernel per dtype whose columns are the unit kinds (see
test_numerics_dtypes.py), and its Python float64 twins."""

import math

import ml_dtypes
import numpy as np

DTYPES = ["float16", "bfloat16", "float32", "float64"]
KINDS = ["zero", "tiny", "large", "max", "single", "inside", "mixed"]
PATTERN = [1.0, -0.5, 0.25, -0.75]
TOLERANCE = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-6, "float64": 1e-13}
TINY = {"float16": 2.0**-12, "bfloat16": 1e-30, "float32": 1e-30, "float64": 1e-300}
LARGE = {"float16": 3e4, "bfloat16": 1e20, "float32": 1e20, "float64": 1e20}
EPSILON = 1e-12  # unit_norm / weight_norm floor on the squared norm
GAIN = 2.0


def np_dtype(name):
    return np.dtype(getattr(ml_dtypes, name)) if name == "bfloat16" else np.dtype(name)


def kernel(name):
    """The ``[4, 7]`` edge-case kernel of the module docstring, in dtype ``name``."""
    big = float(ml_dtypes.finfo(np_dtype(name)).max)
    tiny, large = TINY[name], LARGE[name]
    columns = {
        "zero": [0.0] * 4,
        "tiny": [tiny * p for p in PATTERN],
        "large": [large * p for p in PATTERN],
        "max": [big * p for p in PATTERN],
        "single": [big, 0.0, 0.0, 0.0],
        "inside": [0.6 * p for p in PATTERN],
        "mixed": [large, tiny, 0.0, -1.0],
    }
    return np.array([columns[k] for k in KINDS], dtype=np.float64).T.astype(np_dtype(name))


# ---------------------------------------------------------------- Python twins


def parts(column):
    """``(m, r)`` with ``‖column‖ = m·r`` in Python floats (never overflows)."""
    m = max(abs(x) for x in column)
    if m == 0:
        return 0.0, 0.0
    return m, math.sqrt(sum((x / m) ** 2 for x in column))


def to_norm(column, target):
    m, r = parts(column)
    return [(x / m) * (target / r) for x in column]


def twin_max_norm(column, t):
    m, r = parts(column)
    return to_norm(column, t) if m * r > t else list(column)


def twin_renorm(column, t):  # torch: x·t/(n + 1e-7) where n > t
    m, r = parts(column)
    return [(x / m) * (t / (r + 1e-7 / m)) for x in column] if m * r > t else list(column)


def twin_unit_norm(column):
    m, r = parts(column)
    if m * r >= math.sqrt(EPSILON):
        return to_norm(column, 1.0)
    return [x / math.sqrt(EPSILON) for x in column]


def twin_min_max(column, low, high, rate):
    m, r = parts(column)
    norm = m * r
    clipped = min(max(norm, low), high)
    if m == 0 or clipped == norm:
        return list(column)
    return [(x / m) * (rate * clipped / r) + x * (1 - rate) for x in column]


def twin_weight_norm(column, gain):
    m, r = parts(column)
    if m * r >= math.sqrt(EPSILON):
        return to_norm(column, gain)
    return [x * gain / math.sqrt(EPSILON) for x in column]


def twin_columns(w, fn):
    columns = [fn([float(x) for x in w[:, j]]) for j in range(w.shape[1])]
    return np.array(columns, dtype=np.float64).T


def _as64(x):
    return np.asarray(x).astype(np.float64)


def _assert_close(name, got, want, what):
    got = _as64(got)
    assert np.all(np.isfinite(got)), f"{what} [{name}]: non-finite {got}"
    for j, kind in enumerate(KINDS):
        scale = np.abs(want[:, j]).max()
        err = np.abs(got[:, j] - want[:, j]).max()
        assert err <= TOLERANCE[name] * max(scale, 1e-300) * 2, (
            f"{what} [{name}] unit {kind}: got {got[:, j]}, want {want[:, j]}"
        )
