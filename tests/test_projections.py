"""Pure projections: seed values, torch.renorm fixtures, NumPy twins, properties."""

import math
import pathlib

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

import numpy_twins as twins
from conftest import in_eager

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
SEED_X = np.array([0.0, 0.0, 3.0, 4.0, 30.0, 40.0, 300.0, 400.0], np.float32).reshape(4, 2)


def test_seed_000_clip_rows_and_columns(sess):
    x = tf.constant(SEED_X)
    rows, cols = sess.run([tf1norm.max_norm(x, 10, axes=1), tf1norm.max_norm(x, 350, axes=0)])
    np.testing.assert_allclose(rows, [[0, 0], [3, 4], [6, 8], [6.00000048, 8]], rtol=1e-6)
    np.testing.assert_allclose(
        cols, [[0, 0], [3, 3.48245788], [30, 34.82457733], [300, 348.24578857]], rtol=1e-6
    )
    np.testing.assert_array_equal(rows[:2], SEED_X[:2])  # untouched rows bit-exact
    np.testing.assert_array_equal(cols[:, 0], SEED_X[:, 0])


def test_seed_000_renorm_rows_and_columns(sess):
    x = tf.constant(SEED_X)
    rows, cols = sess.run([tf1norm.renorm(x, 2, 0, 10), tf1norm.renorm(x, 2, 1, 350)])
    np.testing.assert_allclose(
        rows, [[0, 0], [3, 4], [5.99999952, 7.99999952], [6.00000048, 8.00000095]], rtol=1e-6
    )
    np.testing.assert_allclose(
        cols, [[0, 0], [3, 3.48245788], [30, 34.82457733], [300, 348.24578857]], rtol=1e-6
    )


def _renorm_cases():
    data = np.load(FIXTURES / "torch_renorm.npz")
    count = sum(1 for k in data.files if k.endswith("_out"))
    return [
        (data[f"case{i}_x"], *data[f"case{i}_params"], data[f"case{i}_out"]) for i in range(count)
    ]


def test_renorm_matches_recorded_torch(sess):
    cases = _renorm_cases()
    assert {c[1] for c in cases} == {1.0, 2.0, 3.5} and len(cases) == 27
    outs = sess.run([tf1norm.renorm(x, p, int(axis), maxnorm) for x, p, axis, maxnorm, _ in cases])
    for (x, p, axis, maxnorm, expected), out in zip(cases, outs):
        np.testing.assert_allclose(
            out, expected, rtol=2e-6, atol=1e-7, err_msg=f"p={p} axis={axis} shape={x.shape}"
        )
        changed = np.any(out != x, axis=tuple(a for a in range(x.ndim) if a != axis))
        assert 0 < changed.sum() < x.shape[int(axis)]  # some slices clipped, some not


def test_renorm_infinity_norm(sess):
    x = np.array([[1.0, -5.0], [2.0, 2.0]], np.float32)
    out = sess.run(tf1norm.renorm(x, math.inf, 0, 4.0))
    np.testing.assert_allclose(out[0], x[0] * 4 / (5 + 1e-7), rtol=1e-6)
    np.testing.assert_array_equal(out[1], x[1])


@pytest.mark.parametrize("shape", [(7,), (6, 5), (3, 4, 5), (3, 3, 4, 6), (2, 3, 3, 2, 4)])
def test_max_norm_default_axes_match_numpy_twin(sess, rng, shape):
    w = rng.standard_normal(shape).astype(np.float32)
    threshold = float(np.median(twins.norms(w)))
    out = sess.run(tf1norm.max_norm(w, threshold))
    np.testing.assert_allclose(out, twins.max_norm(w, threshold), rtol=1e-6)
    assert np.all(twins.norms(out) <= threshold * (1 + 1e-6))


@pytest.mark.parametrize(
    "dtype,rtol", [(np.float16, 2e-3), (np.float32, 1e-6), (np.float64, 1e-12)]
)
def test_max_norm_dtypes(sess, rng, dtype, rtol):
    w = (rng.standard_normal((20, 8)) * 40).astype(dtype)  # float16 squares overflow
    out = sess.run(tf1norm.max_norm(w, 30.0))
    assert out.dtype == dtype and np.all(np.isfinite(out))
    np.testing.assert_allclose(twins.norms(out), np.minimum(twins.norms(w), 30.0), rtol=rtol)


def test_max_norm_bfloat16_runs(sess, rng):
    w = tf.cast(rng.standard_normal((5, 3)) * 4, tf.bfloat16)
    out = sess.run(tf.cast(tf1norm.max_norm(w, 1.0), tf.float32))
    np.testing.assert_allclose(twins.norms(out), 1.0, rtol=2e-2)


def test_max_norm_under_threshold_is_bit_exact(sess, rng):
    w = rng.standard_normal((50, 10)).astype(np.float32) * 0.01
    out = sess.run(tf1norm.max_norm(w, 1.0))
    np.testing.assert_array_equal(out, w)  # Keras MaxNorm would shrink by ~1e-7


def test_keras3_max_norm_differs_only_by_its_epsilon(sess, rng):
    import keras  # Keras 3 ships with TensorFlow; called live as the reference

    w = rng.standard_normal((30, 6)).astype(np.float32)
    ours = sess.run(tf1norm.max_norm(w, 2.0))
    theirs = in_eager(keras.constraints.MaxNorm(max_value=2.0, axis=0), w)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_zero_subtensors_stay_zero_with_finite_gradients(sess):
    w = tf.constant([[0.0, 3.0], [0.0, 4.0]])
    functions = [
        lambda v: tf1norm.max_norm(v, 1.0),
        lambda v: tf1norm.unit_norm(v),
        lambda v: tf1norm.min_max_norm(v, 0.5, 1.0),
        lambda v: tf1norm.renorm(v, 2, 1, 1.0),
        lambda v: tf1norm.renorm(v, 0.5, 1, 1.0),
        lambda v: tf1norm.renorm(v, 1, 1, 1.0),
    ]
    for fn in functions:
        out = fn(w)
        value, grad = sess.run(
            [out, tf.gradients(tf.reduce_sum(out * [[1.0, 2.0], [3.0, 4.0]]), w)[0]]
        )
        np.testing.assert_array_equal(value[:, 0], [0.0, 0.0])
        assert np.all(np.isfinite(grad)), grad


def test_max_norm_gradient_matches_finite_differences(sess, rng):
    w0 = rng.standard_normal((4, 3))
    w = tf.constant(w0)
    y = tf.reduce_sum(tf.sin(tf1norm.max_norm(w, 1.0)))
    analytic = sess.run(tf.gradients(y, w)[0])
    numeric = np.zeros_like(w0)
    for index in np.ndindex(w0.shape):
        bump = np.zeros_like(w0)
        bump[index] = 1e-6
        numeric[index] = (
            np.sum(np.sin(twins.max_norm(w0 + bump, 1.0)))
            - np.sum(np.sin(twins.max_norm(w0 - bump, 1.0)))
        ) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(
    "fn",
    [
        lambda w: tf1norm.max_norm(w, 0.7),
        lambda w: tf1norm.renorm(w, 3.5, 1, 0.7),
        lambda w: tf1norm.unit_norm(w),
        lambda w: tf1norm.min_max_norm(w, 0.3, 0.8),
        lambda w: tf1norm.non_neg(w),
    ],
)
def test_projections_are_idempotent(sess, rng, fn):
    w = rng.standard_normal((9, 4)).astype(np.float32)
    once = fn(tf.constant(w))
    first, second = sess.run([once, fn(once)])
    np.testing.assert_allclose(second, first, rtol=2e-6, atol=1e-7)


def test_unit_norm_is_l2_normalize_per_unit(sess, rng):
    w = rng.standard_normal((3, 3, 2, 5)).astype(np.float32)
    out = sess.run(tf1norm.unit_norm(w))
    np.testing.assert_allclose(out, twins.unit_norm(w), rtol=1e-6)
    np.testing.assert_allclose(twins.norms(out), 1.0, rtol=1e-6)


@pytest.mark.parametrize("rate", [1.0, 0.5])
def test_min_max_norm_matches_numpy_and_keras(sess, rng, rate):
    import keras

    w = rng.standard_normal((10, 6)).astype(np.float32) * rng.uniform(0.05, 0.8, 6)
    out = sess.run(tf1norm.min_max_norm(w, 0.4, 1.2, rate))
    np.testing.assert_allclose(out, twins.min_max_norm(w, 0.4, 1.2, rate), rtol=1e-6)
    keras_out = in_eager(keras.constraints.MinMaxNorm(0.4, 1.2, rate, axis=0), w)
    np.testing.assert_allclose(out, keras_out, rtol=1e-5)
    inside = (twins.norms(w) >= 0.4) & (twins.norms(w) <= 1.2)
    assert inside.any()
    np.testing.assert_array_equal(out[:, inside], w[:, inside])


def test_non_neg(sess):
    out = sess.run(tf1norm.non_neg(tf.constant([[-1.0, 0.0, 2.5]])))
    np.testing.assert_array_equal(out, [[0.0, 0.0, 2.5]])


def test_threshold_may_be_a_scalar_tensor(sess):
    limit = v1.placeholder(tf.float32, [])
    out = sess.run(tf1norm.max_norm(tf.constant(SEED_X), limit, axes=1), {limit: 50.0})
    np.testing.assert_allclose(out[3], [30, 40], rtol=1e-6)
    np.testing.assert_array_equal(out[:3], SEED_X[:3])


def test_works_in_eager_mode_too():
    assert tf.executing_eagerly()
    out = tf1norm.max_norm(tf.constant(SEED_X), 10.0, axes=1).numpy()
    np.testing.assert_allclose(out[3], [6, 8], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_assignment_form_equals_max_norm_bit_for_bit(sess, rng, dtype):
    """The train op's projection (no custom gradient) computes max_norm's forward exactly."""
    x = tf.constant((rng.standard_normal((5, 3, 4)) * 3).astype(dtype))
    for axes in (None, 0, (0, 1)):
        expected, got = sess.run(
            [
                tf1norm.max_norm(x, 2.5, axes),
                tf1norm._math.projections.max_norm_assignment(x, 2.5, axes),
            ]
        )
        np.testing.assert_array_equal(got, expected)
        assert np.abs(got - sess.run(x)).max() > 0  # the cap is active somewhere


def test_assignment_form_adds_no_gradient_function(graph):
    """tf.custom_gradient scans all global variables per call: the assign form must not use it."""
    x = v1.get_variable("x", [3, 2])
    before = len(graph.get_operations())
    tf1norm._math.projections.max_norm_assignment(x, 1.0)
    added = graph.get_operations()[before:]
    assert not [op for op in added if op.type == "IdentityN"], [op.type for op in added]


@pytest.mark.parametrize("shape", [(20, 100), (784, 300)])
def test_units_under_a_threshold_of_one_come_back_bit_for_bit_from_a_variable(graph, shape):
    """Grappler rewrites ``1/max(n, 1)`` as a Reciprocal that is 0.99999994 at 1.0 on CPU.

    Comparing ``scale < 1`` then scaled every unit under the threshold by
    0.99999994; the decision is taken on the norm itself. Both the plain
    (20×100) and the XLA-compiled (784×300) projection of the train op.
    """
    rng = np.random.default_rng(0)
    value = (rng.standard_normal(shape) * 0.5 / np.sqrt(shape[0])).astype(np.float32)
    value[:, :3] = 0.5 / np.sqrt(shape[0])  # norm 0.5 in float32 rounding: 0.49999988
    value[:, 3] *= 4.0  # one unit over
    from tf1norm._math import projections

    variable = tf.Variable(value)
    capped = projections.max_norm_assignment(variable.read_value(), 1.0)
    with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        got = sess.run(capped)
    norms = np.linalg.norm(value.astype(np.float64), axis=0)
    under = norms < 1.0 - 1e-6
    np.testing.assert_array_equal(got[:, under], value[:, under])
    np.testing.assert_allclose(np.linalg.norm(got[:, 3].astype(np.float64)), 1.0, rtol=1e-6)


@pytest.mark.parametrize("axes", [None, (0, 1), (0, 1, 2), (1, 2, 3), 3])
def test_compiled_conv_kernel_projection_matches_numpy_twin(graph, axes):
    """A conv kernel from ``COMPILED_FROM_SIZE`` entries: XLA caps it seen as a matrix.

    Leading-block axes (the default, ``(0, 1)``) take the reshaped path, the
    others the 4-D one; a wrong regrouping of units would cap the wrong entries.
    One unit is zero; the threshold is the median unit norm.
    """
    from tf1norm._math import projections

    shape = (3, 3, 32, 64)
    assert np.prod(shape) >= projections.COMPILED_FROM_SIZE
    rng = np.random.default_rng(7)
    value = (rng.standard_normal(shape) * rng.uniform(0.02, 0.4, shape[-1])).astype(np.float32)
    value[..., 0] = 0.0
    reduced = twins.default_axes(4) if axes is None else axes
    norms = np.sqrt(np.sum(value.astype(np.float64) ** 2, axis=reduced, keepdims=True))
    threshold = float(np.median(norms))  # about half the units over
    variable = tf.Variable(value)
    capped = projections.max_norm_assignment(variable.read_value(), threshold, axes)
    with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        got = sess.run(capped)
    expected = twins.max_norm(value, threshold, axes)
    under = np.broadcast_to(norms < threshold * (1 - 1e-6), shape)
    assert 0.2 < under.mean() < 0.8  # both kinds of unit present
    np.testing.assert_array_equal(got[under], value[under])  # bit-exact under the cap
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-7)
    capped_norms = np.sqrt(np.sum(got.astype(np.float64) ** 2, axis=reduced))
    assert capped_norms.max() <= threshold * (1 + 1e-6)
