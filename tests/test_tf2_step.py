"""``make_train_step`` and ``attach_transforms``: the transform chain in TF2."""

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

keras = pytest.importorskip("keras")

X = np.array([[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]], np.float32)
W0 = np.array([[0.2, -0.1], [0.4, 0.3], [-0.5, 0.1]], np.float32)
LR, CLIP = 0.1, 0.5


def _optimizers():
    return {
        "keras3": lambda: keras.optimizers.SGD(LR),
        "tf_keras": lambda: tf.keras.optimizers.SGD(LR),
        "v1": lambda: v1.train.GradientDescentOptimizer(LR),
    }


def _numpy_steps(steps, decay=0.0):
    """SGD on sum((x w)^2) with gradients clipped to [-CLIP, CLIP], decoupled decay."""
    w = W0.astype(np.float64)
    for _ in range(steps):
        grad = np.clip(2 * X.T @ (X @ w), -CLIP, CLIP)
        w = w - LR * grad - LR * decay * w
    return w


def _run(optimizer, transforms, mode, steps=3, x=X):
    w = tf.Variable(W0, name="dense/kernel")
    step = tf1norm.make_train_step(optimizer, transforms)

    def one(x):
        return step(lambda: tf.reduce_sum(tf.matmul(x, w) ** 2), [w])

    run = one if mode == "eager" else tf.function(one, jit_compile=mode == "jit")
    for _ in range(steps):
        run(tf.constant(x))
    return w, step, run


@pytest.mark.parametrize("mode", ["eager", "function", "jit"])
@pytest.mark.parametrize("flavour", sorted(_optimizers()))
def test_clip_and_decoupled_decay_match_numpy(flavour, mode):
    transforms = [tf1norm.clip_by_value(-CLIP, CLIP), tf1norm.add_decoupled_weight_decay(0.2)]
    w, step, _ = _run(_optimizers()[flavour](), transforms, mode)
    np.testing.assert_allclose(w.numpy(), _numpy_steps(3, decay=0.2), rtol=1e-5, atol=1e-6)
    assert int(step.global_step.numpy()) == 3


def test_post_apply_reads_the_updated_weights():
    """A max-norm projection recorded for the variable runs after the update."""
    w = tf.Variable(W0 * 10, name="big/kernel")
    tf1norm.registry.register_projection(
        tf1norm.registry.Projection(
            w, lambda value: tf1norm.max_norm(value, 1.0, axes=[0]), "max_norm"
        ),
        tf1norm.keys.MAX_NORM,
    )
    step = tf1norm.make_train_step(keras.optimizers.SGD(1.0))
    run = tf.function(lambda: step(lambda: -tf.reduce_sum(w), [w]))
    run()
    norms = np.linalg.norm(w.numpy(), axis=0)
    np.testing.assert_allclose(norms, [1.0, 1.0], rtol=1e-6)  # projected after w += 1
    expected = (W0 * 10 + 1.0) / np.linalg.norm(W0 * 10 + 1.0, axis=0)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_skip_nonfinite_counter_is_created_once(mode):
    optimizer = keras.optimizers.SGD(LR)
    w, step, run = _run(optimizer, [tf1norm.skip_nonfinite()], mode, steps=1)
    before = w.numpy().copy()
    run(tf.constant(X * np.nan))
    run(tf.constant(np.full((3, 3), np.inf, np.float32)))  # a new shape: a retrace
    run(tf.constant(X))
    [counter] = step.persistent.values()
    assert int(counter.numpy()) == 2
    assert int(step.global_step.numpy()) == 2  # only the finite steps count
    assert not np.allclose(w.numpy(), before)  # the last (finite) step applied


def test_skipped_step_changes_nothing():
    w, step, run = _run(
        tf.keras.optimizers.Adam(0.1), [tf1norm.skip_nonfinite()], "function", steps=1
    )
    optimizer_values = [v.numpy().copy() for v in step.optimizer.variables]
    before = w.numpy().copy()
    run(tf.constant(X * np.nan))
    np.testing.assert_array_equal(w.numpy(), before)
    for variable, value in zip(step.optimizer.variables, optimizer_values):
        np.testing.assert_array_equal(variable.numpy(), value)


def _batch_norm_model(k):
    model = k.Sequential(
        [k.Input((3,)), k.layers.Dense(4), k.layers.BatchNormalization(), k.layers.Dense(2)]
    )
    model.compile(optimizer=k.optimizers.Adam(0.1), loss="mse")
    return model


def _state(model, step):
    """Every value a step may write: weights, moving statistics, slots, step counter."""
    optimizer_variables = step.optimizer.variables
    values = list(model.weights) + list(optimizer_variables) + [step.global_step]
    return [np.array(v.numpy()) for v in values]


def _assert_unchanged(before, after):
    assert len(before) == len(after)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(new, old)


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras"])
def test_skipped_custom_step_restores_moving_statistics(flavour):
    k = keras if flavour == "keras3" else tf.keras
    model = _batch_norm_model(k)
    skip = tf1norm.skip_nonfinite()
    step = tf1norm.make_train_step(model.optimizer, [skip])

    @tf.function
    def run(x):
        return step(
            lambda: tf.reduce_sum(model(x, training=True) ** 2),
            lambda: model.trainable_variables,
            restore_on_skip=lambda: model.non_trainable_variables,
        )

    run(tf.constant(X))
    before = _state(model, step)
    run(tf.constant(X * np.nan))
    _assert_unchanged(before, _state(model, step))
    assert int(skip.skipped_steps.numpy()) == 1
    run(tf.constant(X))
    assert not np.array_equal(_state(model, step)[0], before[0])  # a finite step applies


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras"])
def test_skipped_fit_step_restores_moving_statistics(flavour):
    k = keras if flavour == "keras3" else tf.keras
    model = _batch_norm_model(k)
    current = tf1norm.attach_transforms(model, [tf1norm.skip_nonfinite()])
    y = np.ones((2, 2), np.float32)
    model.fit(X, y, batch_size=2, epochs=1, verbose=0)
    before = _state(model, current())
    model.fit(X * np.nan, y, batch_size=2, epochs=1, verbose=0)
    _assert_unchanged(before, _state(model, current()))
    assert int(current().global_step.numpy()) == 1


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras"])
def test_model_fit_runs_the_chain(flavour):
    k = keras if flavour == "keras3" else tf.keras
    model = k.Sequential([k.Input((3,)), k.layers.Dense(2, use_bias=False)])
    model.layers[0].kernel.assign(W0)
    model.compile(optimizer=k.optimizers.SGD(LR), loss="mse")
    current = tf1norm.attach_transforms(model, [tf1norm.clip_by_value(-1e-3, 1e-3)])
    before = model.layers[0].kernel.numpy().copy()
    y = np.full((8, 2), 100.0, np.float32)  # large gradients: every entry clipped
    model.fit(np.tile(X, (4, 1)), y, batch_size=2, epochs=1, verbose=0, shuffle=False)
    change = model.layers[0].kernel.numpy() - before
    expected = np.sign(X.sum(axis=0))[:, None] * np.full_like(change, 4 * LR * 1e-3)
    np.testing.assert_allclose(change, expected, rtol=0, atol=1e-7)  # float32 steps of 1e-4
    assert int(current().global_step.numpy()) == 4


def _constrained_dense(flavour):
    """A Dense kernel with a Keras MaxNorm(1.0) and unit norms of 2."""
    k = keras if flavour in ("keras3", "v1") else tf.keras
    layer = k.layers.Dense(2, use_bias=False, kernel_constraint=k.constraints.MaxNorm(1.0))
    layer.build((None, 3))
    layer.kernel.assign(W0 * 2 / np.linalg.norm(W0, axis=0))
    return layer


@pytest.mark.parametrize("flavour", sorted(_optimizers()))
def test_keras_constraint_is_the_last_write_of_the_step(flavour):
    """Decoupled decay after Keras's constraint would leave unit norms at 0.98-0.99, not 1.0.

    With the v1 optimizer the kernel is a Keras 3 variable, whose constraint
    the optimizer never sees: the step applies it.
    """
    layer = _constrained_dense(flavour)
    decay = tf1norm.add_decoupled_weight_decay(0.01, scale_by_learning_rate=False)
    step = tf1norm.make_train_step(_optimizers()[flavour](), [decay])
    run = tf.function(lambda: step(lambda: -10 * tf.reduce_sum(layer.kernel), [layer.kernel]))
    for _ in range(3):  # each step pushes every unit out of the ball
        run()
        norms = np.linalg.norm(np.asarray(layer.kernel.numpy()), axis=0)
        np.testing.assert_allclose(norms, [1.0, 1.0], rtol=1e-6)


def test_eager_shim_layer_max_norm():
    """The shim's max-norm record is projected by an eager step, after the update."""

    class Shim(tf.keras.layers.Layer):
        @v1.keras.utils.track_tf1_style_variables
        def call(self, x):
            return tf1norm.require_v1_layers().dense(
                x, 4, kernel_regularizer=tf1norm.max_norm_regularizer(0.5), name="h"
            )

    def loss():
        # Eagerly, the shim calls variable regularizers when layer.losses is
        # read (max-norm adds no penalty but records there), as a loss with
        # penalties does: sum(layer.losses).
        return -tf.reduce_sum(layer(tf.constant(X))) + sum(layer.losses)

    layer = Shim()
    step = tf1norm.make_train_step(keras.optimizers.SGD(1.0))
    for _ in range(2):
        step(loss, lambda: layer.trainable_variables)
    kernel = [v for v in layer.variables if "kernel" in v.name][0]
    assert np.max(np.linalg.norm(kernel.numpy(), axis=0)) == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("flavour", sorted(_optimizers()))
def test_shim_max_norm_holds_in_a_plain_optimizer_loop(flavour):
    """No tf1norm step: the recorded projection is the variable's constraint, which
    every optimizer applies after its update (unit norms stayed at 1.84 before)."""

    class Shim(tf.keras.layers.Layer):
        @v1.keras.utils.track_tf1_style_variables
        def call(self, x):
            return tf1norm.require_v1_layers().dense(
                x, 4, kernel_regularizer=tf1norm.max_norm_regularizer(0.5), name="h"
            )

    layer = Shim()
    optimizer = _optimizers()[flavour]()

    @tf.function
    def train(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_sum(layer(x))
        grads = tape.gradient(loss, layer.trainable_variables)
        optimizer.apply_gradients(zip(grads, layer.trainable_variables))

    layer(tf.constant(X))
    for _ in range(3):
        train(tf.constant(X * 10))
        kernel = [v for v in layer.variables if "kernel" in v.name][0]
        np.testing.assert_allclose(np.linalg.norm(kernel.numpy(), axis=0), [0.5] * 4, rtol=1e-6)


def test_bad_input():
    with pytest.raises(TypeError, match="make_train_step: `optimizer`"):
        tf1norm.make_train_step(object())
    with pytest.raises(TypeError, match="make_train_step: `transforms`"):
        tf1norm.make_train_step(keras.optimizers.SGD(0.1), [lambda g: g])
    with pytest.raises(TypeError, match="TrainStep: `loss_fn`"):
        tf1norm.make_train_step(keras.optimizers.SGD(0.1))(1.0)
    with pytest.raises(TypeError, match="attach_transforms: `model`"):
        tf1norm.attach_transforms(object(), [])
    with pytest.raises(TypeError, match="sgd_decay_step reads a graph collection"):
        tf1norm.make_train_step(keras.optimizers.SGD(0.1), [tf1norm.sgd_decay_step()])
    w = tf.Variable(1.0)
    with pytest.raises(ValueError, match="no gradient flows"):
        tf1norm.make_train_step(keras.optimizers.SGD(0.1))(lambda: tf.constant(1.0), [w])
