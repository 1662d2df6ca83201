"""Weight normalization and spectral normalization: math, getters, sharing."""

import numpy as np
import pytest
import tf_slim as slim

import tf1norm
from tf1norm import keys
from tf1norm._src.compat import tf, v1


def _sigma(w):
    return np.linalg.svd(w.reshape(-1, w.shape[-1]), compute_uv=False)[0]


@pytest.mark.parametrize("shape", [(20, 12), (3, 3, 4, 6)])
def test_sigma_matches_svd_after_50_iterations(sess, rng, shape):
    w = rng.standard_normal(shape)
    normalized, sigma, u = tf1norm.spectral_norm(w, rng.standard_normal((1, shape[-1])), 50)
    value, normalized = sess.run([sigma, normalized])
    assert value == pytest.approx(_sigma(w), rel=1e-4)
    assert _sigma(normalized) == pytest.approx(1.0, rel=1e-4)


def test_one_iteration_per_step_tracks_a_slowly_changing_weight(sess, rng):
    start, drift = rng.standard_normal((16, 10)), rng.standard_normal((16, 10))
    w = v1.get_variable("w", initializer=start)
    u = v1.get_variable("u", initializer=rng.standard_normal((1, 10)), trainable=False)
    _, sigma, u_new = tf1norm.spectral_norm(w, u, 1)
    with tf.control_dependencies([u.assign(u_new)]):
        step = tf.identity(sigma)
    move = w.assign_add(0.002 * drift)
    sess.run(v1.global_variables_initializer())
    errors = []
    for _ in range(200):
        estimate = sess.run(step)
        errors.append(abs(estimate - _sigma(sess.run(w))) / _sigma(sess.run(w)))
        sess.run(move)
    assert max(errors[20:]) < 1e-2


def test_gradient_through_sigma_matches_finite_differences(sess, rng):
    w0 = rng.standard_normal((5, 4))
    w = tf.constant(w0)
    u0 = np.linalg.svd(w0)[2][:1]  # converged u: the stop-gradient terms vanish
    normalized, _, _ = tf1norm.spectral_norm(w, u0, 50)
    probe = rng.standard_normal((5, 4))
    analytic = sess.run(tf.gradients(tf.reduce_sum(normalized * probe), w)[0])

    def f(m):
        return np.sum(m / _sigma(m) * probe)

    numeric = np.zeros_like(w0)
    for index in np.ndindex(w0.shape):
        bump = np.zeros_like(w0)
        bump[index] = 1e-6
        numeric[index] = (f(w0 + bump) - f(w0 - bump)) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-7)


def test_seed_004_loop_creates_one_u_per_layer_without_renaming(graph):
    layers = tf1norm.require_v1_layers()
    x = tf.ones([2, 6])
    with v1.variable_scope("net", custom_getter=tf1norm.spectral_norm_getter()):
        for units in (5, 4, 3):
            x = layers.dense(x, units, activation=tf.nn.relu)
    created = [(v.op.name, v.trainable) for v in v1.global_variables()]
    assert created == [
        ("net/dense/kernel", True),
        ("net/dense/kernel/sn_u", False),
        ("net/dense/bias", True),
        ("net/dense_1/kernel", True),
        ("net/dense_1/kernel/sn_u", False),
        ("net/dense_1/bias", True),
        ("net/dense_2/kernel", True),
        ("net/dense_2/kernel/sn_u", False),
        ("net/dense_2/bias", True),
    ]
    assert len(v1.get_collection(keys.SPECTRAL_NORM_SIGMA)) == 3


@pytest.mark.parametrize("reuse", [True, v1.AUTO_REUSE])
def test_towers_share_one_u(graph, reuse):
    getter = tf1norm.spectral_norm_getter()
    outputs = []
    for tower in range(2):
        with v1.variable_scope(
            "model", custom_getter=getter, reuse=None if tower == 0 and reuse is True else reuse
        ):
            outputs.append(slim.fully_connected(tf.ones([2, 4]), 3, scope="fc"))
    assert [v.op.name for v in v1.global_variables()] == [
        "model/fc/weights",
        "model/fc/weights/sn_u",
        "model/fc/biases",
    ]


def test_collection_mode_refreshes_u_once_per_training_step(sess, rng):
    x = tf.constant(rng.standard_normal((8, 6)).astype(np.float32))
    with v1.variable_scope("d", custom_getter=tf1norm.spectral_norm_getter(update="collection")):
        y = slim.fully_connected(x, 4, activation_fn=None, scope="fc")
    u = v1.global_variables("d/fc/weights/sn_u")[0]
    w = v1.global_variables("d/fc/weights")[0]
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(tf.square(y)), v1.train.GradientDescentOptimizer(0.01)
    )
    sess.run(v1.global_variables_initializer())
    before = sess.run(u)
    sess.run(y)
    np.testing.assert_array_equal(sess.run(u), before)  # evaluation leaves u alone
    _, _, expected = tf1norm.spectral_norm(sess.run(w), before, 1)  # forward pass of the step
    expected = sess.run(expected)
    sess.run(train_op)
    # u is a unit vector: its entries carry rounding errors of a few ulps of its
    # norm (1), not of themselves, so a tiny entry (-0.0015) needs an atol; the
    # two graphs may run other matvec kernels (seen on Python 3.13, 4e-5 relative).
    np.testing.assert_allclose(sess.run(u), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected, before)


def test_immediate_mode_refreshes_u_with_the_forward_pass(sess, rng):
    with v1.variable_scope("d", custom_getter=tf1norm.spectral_norm_getter()):
        y = slim.fully_connected(tf.ones([2, 6]), 4, scope="fc")
    u = v1.global_variables("d/fc/weights/sn_u")[0]
    sess.run(v1.global_variables_initializer())
    before = sess.run(u)
    sess.run(y)
    assert not np.allclose(sess.run(u), before)


def test_weight_norm_layer_is_unchanged_at_initialization(rng):
    x0 = rng.standard_normal((3, 5, 5, 2)).astype(np.float32)
    outputs = {}
    for use_getter in (False, True):
        with tf.Graph().as_default():
            getter = tf1norm.weight_norm_getter() if use_getter else None
            with v1.variable_scope("m", custom_getter=getter):
                net = slim.conv2d(
                    tf.constant(x0),
                    4,
                    [3, 3],
                    scope="conv",
                    weights_initializer=v1.glorot_uniform_initializer(seed=7),
                )
                net = slim.fully_connected(
                    slim.flatten(net),
                    3,
                    scope="fc",
                    weights_initializer=v1.glorot_uniform_initializer(seed=8),
                )
            with v1.Session() as sess:
                sess.run(v1.global_variables_initializer())
                outputs[use_getter] = sess.run(net)
                names = [(v.op.name, v.trainable) for v in v1.global_variables()]
                if use_getter:
                    loss = tf.reduce_sum(net)
                    grads = tf.gradients(loss, v1.trainable_variables())
                    assert all(g is not None for g in grads)
    np.testing.assert_allclose(outputs[True], outputs[False], rtol=1e-5, atol=1e-6)
    assert ("m/conv/weights/wn_g", True) in names and ("m/fc/weights/wn_g", True) in names


def test_weight_norm_math_and_zero_direction(sess):
    v = tf.constant([[3.0, 0.0], [4.0, 0.0]])
    w = tf1norm.weight_norm(v, [2.0, 5.0])
    value, grad = sess.run([w, tf.gradients(tf.reduce_sum(w), v)[0]])
    np.testing.assert_allclose(value, [[1.2, 0.0], [1.6, 0.0]], rtol=1e-6)
    assert np.all(np.isfinite(grad))


def test_seed_001_unit_norm_is_a_projection_not_weight_norm(sess, rng):
    """kernel_constraint=l2_normalize pins every norm at 1; weight norm trains g."""
    kernel = rng.standard_normal((3, 3, 2, 16)).astype(np.float32) * 3
    projected = sess.run(tf1norm.unit_norm(kernel))
    np.testing.assert_allclose(np.linalg.norm(projected.reshape(-1, 16), axis=0), 1.0, rtol=1e-5)
    gains = np.linspace(0.5, 2.0, 16).astype(np.float32)
    normalized = sess.run(tf1norm.weight_norm(kernel, gains))
    np.testing.assert_allclose(np.linalg.norm(normalized.reshape(-1, 16), axis=0), gains, rtol=1e-5)


@pytest.mark.parametrize(
    "call,fragment",
    [
        (lambda: tf1norm.spectral_norm_getter(update="later"), "'immediate' or 'collection'"),
        (lambda: tf1norm.spectral_norm_getter(power_iterations=0), "`power_iterations`"),
        (lambda: tf1norm.spectral_norm_getter(name_filter="("), "regular expression"),
        (lambda: tf1norm.spectral_norm(tf.ones([3]), tf.ones([1, 3])), "rank >= 2"),
        (lambda: tf1norm.weight_norm(tf.ones([3, 2]), tf.ones([3])), "`g` must have shape [2]"),
        (lambda: tf1norm.weight_norm_getter(name_filter=3), "regular expression"),
    ],
)
def test_bad_input(graph, call, fragment):
    with pytest.raises(ValueError) as info:
        call()
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda: tf1norm.spectral_norm(tf.ones([3, 2]), tf.ones([1, 2]), power_iterations=0),
        lambda: tf1norm.SpectralNorm(power_iterations=True),
        lambda: tf1norm.spectral_norm_getter(power_iterations=1.5),
    ],
)
def test_power_iterations_must_be_a_positive_int(graph, call):
    with pytest.raises(ValueError, match="`power_iterations` must be an int >= 1"):
        call()


def _spectral_dense(x, **getter_args):
    with v1.variable_scope("d", custom_getter=tf1norm.spectral_norm_getter(**getter_args)):
        return slim.fully_connected(x, 4, activation_fn=None, scope="fc")


def test_evaluation_with_training_false_is_repeatable_and_leaves_u(sess, rng):
    x = tf.constant(rng.standard_normal((3, 6)).astype(np.float32))
    y = _spectral_dense(x, training=False)
    u = v1.global_variables("d/fc/weights/sn_u")[0]
    sess.run(v1.global_variables_initializer())
    before = sess.run(u)
    first, second = sess.run(y), sess.run(y)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(sess.run(u), before)
    w = sess.run(v1.global_variables("d/fc/weights")[0])
    normalized, _, _ = tf1norm.spectral_norm(w, before, 1)  # one iteration from the stored u
    np.testing.assert_allclose(first, sess.run(x) @ sess.run(normalized), rtol=1e-5, atol=1e-6)


def test_training_placeholder_switches_the_refresh(sess, rng):
    training = v1.placeholder_with_default(True, [])
    y = _spectral_dense(tf.ones([2, 6]), training=training)
    u = v1.global_variables("d/fc/weights/sn_u")[0]
    sess.run(v1.global_variables_initializer())
    before = sess.run(u)
    evaluated = [sess.run(y, {training: False}) for _ in range(2)]
    np.testing.assert_array_equal(evaluated[0], evaluated[1])
    np.testing.assert_array_equal(sess.run(u), before)
    sess.run(y)  # training run: u moves
    assert not np.allclose(sess.run(u), before)


@pytest.mark.parametrize("update", ["immediate", "collection"])
def test_zero_kernel_gives_zero_not_nan(sess, update):
    x = tf.ones([2, 6])
    with v1.variable_scope("d", custom_getter=tf1norm.spectral_norm_getter(update=update)):
        y = slim.fully_connected(
            x, 4, activation_fn=None, scope="fc", weights_initializer=tf.zeros_initializer()
        )
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(tf.square(y - 1.0)), v1.train.GradientDescentOptimizer(0.1)
    )
    u = v1.global_variables("d/fc/weights/sn_u")[0]
    sess.run(v1.global_variables_initializer())
    before = sess.run(u)
    np.testing.assert_array_equal(sess.run(y), np.zeros((2, 4), np.float32))
    sess.run(train_op)  # finite gradient (identity through σ = 0), and u is kept
    np.testing.assert_array_equal(sess.run(u), before)
    w = sess.run(v1.global_variables("d/fc/weights")[0])
    assert np.all(np.isfinite(w)) and np.abs(w).max() > 0
    sess.run(train_op)  # now W ≠ 0: σ is the largest singular value again
    normalized = sess.run(
        tf1norm.spectral_norm(v1.global_variables("d/fc/weights")[0], sess.run(u), 20)[0]
    )
    np.testing.assert_allclose(np.linalg.svd(normalized, compute_uv=False)[0], 1.0, rtol=1e-4)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_zero_initialized_layer_trains_under_spectral_norm(sess, rng, dtype):
    """Issue 20: with random inputs every step of a zero kernel failed "gradient ... is inf
    or nan" (the gradient went through the power iteration on the zero matrix)."""
    x = tf.constant(rng.standard_normal((8, 5)), dtype)
    target = tf.constant(rng.standard_normal((8, 3)), dtype)
    with v1.variable_scope("m", custom_getter=tf1norm.spectral_norm_getter()):
        y = v1.layers.Dense(3, kernel_initializer=tf.zeros_initializer(), dtype=dtype, name="d")(x)
    loss = tf.reduce_mean(tf.square(y - target))
    train_op = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(0.1))
    kernel = v1.global_variables("m/d/kernel")[0]
    sess.run(v1.global_variables_initializer())
    seen, losses = [sess.run(kernel)], [sess.run(loss)]
    for _ in range(4):
        sess.run(train_op)  # create_train_op's default finiteness checks are on
        seen.append(sess.run(kernel))
        losses.append(sess.run(loss))
        assert np.all(np.isfinite(seen[-1])) and not np.array_equal(seen[-1], seen[-2])
    assert np.abs(seen[1]).max() > 0 and np.all(np.isfinite(losses))
    assert sess.run(tf.reduce_max(tf.abs(y))) > 0  # the layer computes again


def test_bad_training_flag_is_named(graph):
    with pytest.raises(ValueError, match="`training` must be a Python bool.*got 'yes'"):
        tf1norm.spectral_norm_getter(training="yes")
