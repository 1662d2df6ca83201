"""Weight-norm data init, checkpoint bridges, slim_scope, SpectralNorm constraint/regularizer."""

import numpy as np
import pytest
import tf_slim as slim

import tf1norm
from tf1norm import keys
from tf1norm._src.compat import tf, v1


def _mlp(x, activation=tf.nn.relu):
    net = slim.fully_connected(
        x,
        16,
        activation_fn=activation,
        scope="fc1",
        weights_initializer=v1.glorot_uniform_initializer(seed=1),
    )
    net = slim.fully_connected(
        net,
        8,
        activation_fn=activation,
        scope="fc2",
        weights_initializer=v1.glorot_uniform_initializer(seed=2),
    )
    return slim.fully_connected(
        net,
        3,
        activation_fn=None,
        scope="out",
        weights_initializer=v1.glorot_uniform_initializer(seed=3),
    )


def test_data_init_gives_zero_mean_unit_variance_preactivations(sess, rng):
    batch = (rng.standard_normal((64, 10)) * 3 + 1).astype(np.float32)
    x = v1.placeholder(tf.float32, [None, 10])
    with v1.variable_scope("", custom_getter=tf1norm.weight_norm_getter()):
        _mlp(x)
    sess.run(v1.global_variables_initializer())
    report = tf1norm.weight_norm_data_init(sess, {x: batch})
    assert [name for name, _, _ in report] == ["fc1/weights", "fc2/weights", "out/weights"]
    graph = v1.get_default_graph()
    for scope in ("fc1", "fc2", "out"):
        pre = graph.get_tensor_by_name(f"{scope}/BiasAdd:0")
        values = sess.run(pre, {x: batch})
        np.testing.assert_allclose(values.mean(axis=0), 0.0, atol=1e-4)
        np.testing.assert_allclose(values.std(axis=0), 1.0, rtol=1e-3)


def test_data_init_without_weight_norm_layers_raises(sess):
    with pytest.raises(ValueError, match="no weight-normalized weights"):
        tf1norm.weight_norm_data_init(sess)


def _outputs(build_getter, x0, action):
    with tf.Graph().as_default():
        x = tf.constant(x0)
        with v1.variable_scope("", custom_getter=build_getter):
            out = _mlp(x)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            result = action(sess)
            return sess.run(out), result


def test_plain_checkpoint_restores_into_weight_norm_model(tmp_path, rng):
    x0 = rng.standard_normal((4, 10)).astype(np.float32)
    path = str(tmp_path / "plain")

    def perturb_and_save(sess):
        for variable in v1.trainable_variables():
            sess.run(variable.assign_add(tf.fill(variable.shape, 0.1)))
        return v1.train.Saver().save(sess, path)

    plain, _ = _outputs(None, x0, perturb_and_save)
    restored, (derived) = _outputs(
        tf1norm.weight_norm_getter(), x0, lambda sess: tf1norm.restore_plain_checkpoint(sess, path)
    )
    np.testing.assert_allclose(restored, plain, rtol=1e-5, atol=1e-6)
    assert derived[1] == ["fc1/weights/wn_g", "fc2/weights/wn_g", "out/weights/wn_g"]


def test_weight_norm_model_exports_a_plain_checkpoint(tmp_path, rng):
    x0 = rng.standard_normal((4, 10)).astype(np.float32)
    path = str(tmp_path / "exported")

    def train_gains_and_export(sess):
        for record in tf1norm.registry.get_records(keys.WEIGHT_NORM):
            sess.run(record.g.assign(sess.run(record.g) * rng.uniform(0.5, 2.0, record.g.shape)))
        return tf1norm.export_plain_checkpoint(sess, path)

    weight_normed, _ = _outputs(tf1norm.weight_norm_getter(), x0, train_gains_and_export)
    plain, _ = _outputs(None, x0, lambda sess: v1.train.Saver().restore(sess, path))
    np.testing.assert_allclose(plain, weight_normed, rtol=1e-5, atol=1e-6)


def test_u_and_g_are_saved_and_restored(tmp_path, rng):
    x0 = rng.standard_normal((4, 10)).astype(np.float32)
    path = str(tmp_path / "sn")
    getter = tf1norm.spectral_norm_getter()
    first, saved = _outputs(
        getter,
        x0,
        lambda sess: (
            v1.train.Saver().save(sess, path),
            sess.run(v1.global_variables("fc1/weights/sn_u")[0]),
        ),
    )
    _, restored = _outputs(
        tf1norm.spectral_norm_getter(),
        x0,
        lambda sess: (
            v1.train.Saver().restore(sess, path),
            sess.run(v1.global_variables("fc1/weights/sn_u")[0]),
        ),
    )
    np.testing.assert_array_equal(restored[1], saved[1])


LAYERS = {
    "slim.fully_connected": lambda: slim.fully_connected(tf.ones([2, 5]), 4, scope="fc"),
    "slim.conv2d": lambda: slim.conv2d(tf.ones([1, 6, 6, 3]), 4, [3, 3], scope="conv"),
    "slim.conv2d_transpose": lambda: slim.conv2d_transpose(
        tf.ones([1, 6, 6, 3]), 4, [3, 3], scope="deconv"
    ),
    "slim.separable_conv2d": lambda: slim.separable_conv2d(
        tf.ones([1, 6, 6, 3]), 4, [3, 3], depth_multiplier=2, scope="sep"
    ),
    "layers.dense": lambda: tf1norm.require_v1_layers().dense(tf.ones([2, 5]), 3, name="dense"),
    "layers.conv2d": lambda: tf1norm.require_v1_layers().conv2d(
        tf.ones([1, 6, 6, 3]), 3, 3, name="lconv"
    ),
}


@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("reparam", ["weight_norm", "spectral_norm"])
def test_slim_scope_covers_every_layer_type(graph, layer, reparam):
    with tf1norm.slim_scope(max_norm=2.0, l2=1e-3, **{reparam: True}):
        LAYERS[layer]()
    weights = [v for v in v1.trainable_variables() if v.shape.rank >= 2]
    suffix = "/wn_g" if reparam == "weight_norm" else "/sn_u"
    extra = {v.op.name for v in v1.global_variables() if v.op.name.endswith(suffix)}
    assert extra == {w.op.name + suffix for w in weights}
    assert len(v1.get_collection(keys.REGULARIZATION_LOSSES)) == len(weights)
    assert [p.variable for p in tf1norm.registry.get_projections(keys.MAX_NORM)] == weights
    biases = [v for v in v1.global_variables() if v.shape.rank == 1 and "wn_g" not in v.op.name]
    assert all(not any(n.startswith(b.op.name + "/") for n in extra) for b in biases)


def test_slim_scope_rejects_bad_requests(graph):
    with pytest.raises(ValueError, match="not both"):
        with tf1norm.slim_scope(weight_norm=True, spectral_norm=True):
            pass
    with pytest.raises(ValueError, match="nothing to apply"):
        with tf1norm.slim_scope():
            pass
    with pytest.raises(ValueError, match="`max_norm`"):
        with tf1norm.slim_scope(max_norm=-1.0):
            pass
    with pytest.raises(ValueError, match="slim_scope: `name_filter` must be a regular expression"):
        with tf1norm.slim_scope(l2=1e-3, name_filter="("):
            pass


def test_spectral_norm_constraint_caps_sigma_at_one(sess, rng):
    w0 = (rng.standard_normal((8, 5)) * 2).astype(np.float32)
    w = v1.get_variable("w", initializer=w0, constraint=tf1norm.SpectralNorm(power_iterations=3))
    step = v1.train.GradientDescentOptimizer(0.01).minimize(tf.reduce_sum(w))
    sess.run(v1.global_variables_initializer())
    sigmas = []
    for _ in range(20):
        sess.run(step)
        sigmas.append(np.linalg.svd(sess.run(w), compute_uv=False)[0])
    assert sigmas[0] < 0.5 * np.linalg.svd(w0, compute_uv=False)[0]  # projected from step 1
    assert sigmas[-1] == pytest.approx(1.0, rel=1e-3)  # σ estimate has converged
    assert [v.op.name for v in v1.global_variables()] == ["w", "w/sn_u_state"]


def test_spectral_norm_regularizer_value_and_gradient(sess, rng):
    w0 = rng.standard_normal((6, 4))
    w = v1.get_variable(
        "w", initializer=w0, regularizer=tf1norm.spectral_norm_regularizer(0.2, power_iterations=10)
    )
    (loss,) = v1.get_collection(keys.REGULARIZATION_LOSSES)
    grad = tf.gradients(loss, w)[0]
    sess.run(v1.global_variables_initializer())
    for _ in range(30):  # power iteration converges while the loss is evaluated
        value, g = sess.run([loss, grad])
    u, s, vt = np.linalg.svd(w0)
    assert value == pytest.approx(0.1 * s[0] ** 2, rel=1e-6)
    np.testing.assert_allclose(g, 0.2 * s[0] * np.outer(u[:, 0], vt[0]), rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("update", ["immediate", "collection"])
def test_spectral_norm_export_matches_evaluation(tmp_path, rng, update):
    """Train a little, export W/σ(stored u), and the plain net computes the eval output."""
    x0 = rng.standard_normal((4, 10)).astype(np.float32)
    path = str(tmp_path / "sn_plain")
    with tf.Graph().as_default():
        training = v1.placeholder_with_default(True, [])
        getter = tf1norm.spectral_norm_getter(update=update, training=training)
        with v1.variable_scope("", custom_getter=getter):
            out = _mlp(tf.constant(x0))
        train_op = tf1norm.create_train_op(
            tf.reduce_sum(tf.square(out)), v1.train.GradientDescentOptimizer(0.05)
        )
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for _ in range(3):
                sess.run(train_op)
            evaluated = sess.run(out, {training: False})
            kernel, u = sess.run(
                [v1.global_variables("fc1/weights")[0], v1.global_variables("fc1/weights/sn_u")[0]]
            )
            tf1norm.export_plain_checkpoint(sess, path)
    stored = tf.train.load_checkpoint(path).get_variable_to_shape_map()
    assert not [name for name in stored if "sn_u" in name]
    assert tf.train.latest_checkpoint(str(tmp_path)) == path
    plain, _ = _outputs(None, x0, lambda sess: v1.train.Saver().restore(sess, path))
    np.testing.assert_allclose(plain, evaluated, rtol=1e-5, atol=1e-6)
    v = u @ kernel.T
    v /= np.linalg.norm(v)
    sigma = np.linalg.norm(v @ kernel)  # one power iteration from the stored u (NumPy twin)
    assert abs(sigma - 1.0) > 0.05  # dividing by σ matters here
    exported = tf.train.load_checkpoint(path).get_tensor("fc1/weights")
    np.testing.assert_allclose(exported, kernel / sigma, rtol=1e-5, atol=1e-7)


def _one_dense_layer(x, kernel):
    with v1.variable_scope("", custom_getter=tf1norm.weight_norm_getter()):
        return slim.fully_connected(
            x,
            kernel.shape[1],
            activation_fn=None,
            scope="fc",
            weights_initializer=tf.constant_initializer(kernel),
        )


def test_data_init_pools_sigma_when_a_unit_sees_few_values(sess):
    """VGG's fc6 at batch 2: two values per unit, one of them (nearly) constant.

    Per-unit σ would be 5e-7 for unit 0 and its gain would grow 2e6-fold; the
    next step's loss overflowed. With σ² pooled over the layer, every gain
    grows by the same, moderate factor.
    """
    x = tf.constant([[1.0, 0.0, 2.0], [1.0, 1e-6, -2.0]])
    kernel = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    out = _one_dense_layer(x, kernel)
    sess.run(v1.global_variables_initializer())
    g = v1.global_variables("fc/weights/wn_g")[0]
    before = sess.run(g)
    ((_, _, sigma),) = tf1norm.weight_norm_data_init(sess)
    ratio = sess.run(g) / before
    pooled = np.sqrt((0.0**2 + 2.0**2) / 2)  # per-unit σ: ~0 and 2
    np.testing.assert_allclose(sigma, [pooled, pooled], rtol=1e-5)
    np.testing.assert_allclose(ratio, 1 / pooled, rtol=1e-5)
    assert np.all(np.isfinite(sess.run(out)))


def test_data_init_keeps_the_gain_of_a_constant_unit(sess, rng):
    batch = rng.standard_normal((32, 3)).astype(np.float32)
    batch[:, 1] = 0.0  # unit 0 reads only this column: constant pre-activation
    kernel = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 1.0]], np.float32)
    _one_dense_layer(tf.constant(batch), kernel)
    sess.run(v1.global_variables_initializer())
    g = v1.global_variables("fc/weights/wn_g")[0]
    before = sess.run(g)
    ((_, _, sigma),) = tf1norm.weight_norm_data_init(sess)
    after = sess.run(g)
    assert sigma[0] == 0.0
    assert after[0] == before[0]  # not multiplied by 1/epsilon = 1e8
    np.testing.assert_allclose(after[1], before[1] / (batch[:, 0] + batch[:, 2]).std(), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match", [({"min_samples": 0}, "`min_samples`"), ({"init_scale": -1.0}, "`init_scale`")]
)
def test_data_init_validates_its_arguments(sess, kwargs, match):
    _one_dense_layer(tf.ones([2, 3]), np.ones((3, 2), np.float32))
    sess.run(v1.global_variables_initializer())
    with pytest.raises(ValueError, match=match):
        tf1norm.weight_norm_data_init(sess, **kwargs)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("tiny_unit", [False, True], ids=["plain", "guarded"])
def test_weight_norm_export_is_the_layers_own_w(tmp_path, rng, dtype, tiny_unit):
    """Issue 20: the export computed g·v/‖v‖ in NumPy float64 and was 4e-5 off the float32 w
    the layer computes (TF's float32 sum order and rsqrt). It now writes the graph's own w:
    tolerance 0. ``tiny_unit`` puts a unit of 1e-30 entries in (its float32 squares
    underflow, so the range guard recomputes w: the export then fetches the guarded w)."""
    path = str(tmp_path / "plain")
    x = rng.standard_normal((6, 12))
    with tf.Graph().as_default():
        inputs = tf.constant(x, dtype)
        with v1.variable_scope("m", custom_getter=tf1norm.weight_norm_getter()):
            net = v1.layers.Dense(9, activation=tf.nn.relu, name="fc1", dtype=dtype)(inputs)
            logits = v1.layers.Dense(4, name="fc2", dtype=dtype)(net)
        records = tf1norm.registry.get_records(keys.WEIGHT_NORM)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for record in records:
                gains = sess.run(record.g) * rng.uniform(0.5, 2.0, record.g.shape)
                sess.run(record.g.assign(gains))
            if tiny_unit:
                v = records[0].v
                sess.run(v[:, 0].assign(tf.constant(1e-30 * rng.standard_normal(12), dtype)))
            tf1norm.export_plain_checkpoint(sess, path)
            layer_w = sess.run({record.name: record.w for record in records})
            want = sess.run(logits)
    reader = tf.train.load_checkpoint(path)
    for name, w in layer_w.items():
        saved = reader.get_tensor(name)
        assert saved.dtype == w.dtype and saved.tobytes() == w.tobytes(), name
    with tf.Graph().as_default():
        inputs = tf.constant(x, dtype)
        with v1.variable_scope("m"):
            net = v1.layers.Dense(9, activation=tf.nn.relu, name="fc1", dtype=dtype)(inputs)
            logits = v1.layers.Dense(4, name="fc2", dtype=dtype)(net)
        with v1.Session() as sess:
            v1.train.Saver().restore(sess, path)
            got = sess.run(logits)
    # the same weights and inputs: equal up to the matmul kernels' order of summation
    tolerance = 24 * np.finfo(want.dtype).eps * np.abs(want).max()  # 12 terms, 2 layers
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance)
