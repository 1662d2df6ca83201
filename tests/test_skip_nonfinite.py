"""``skip_nonfinite`` leaves no trace of a skipped step, and ``check_numerics`` sees gradients.

The model has every kind of state a step writes: two batch-norm layers
(``tf1norm.batch_norm`` and ``tf.compat.v1.layers.batch_normalization``, both
through ``UPDATE_OPS``), a spectral-norm getter in ``immediate`` mode (its
``u`` is assigned in the forward pass), an assign only the loss waits for
(a streaming statistic of the inputs), max-norm projections (post-update),
the optimizer's slots and the global step. A fault is a NaN input batch, or a
NaN gradient in one layer only while the loss stays finite.
"""

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

OPTIMIZERS = {
    "gd": lambda: v1.train.GradientDescentOptimizer(0.1),
    "momentum": lambda: v1.train.MomentumOptimizer(0.1, 0.9),
    "adam": lambda: v1.train.AdamOptimizer(0.05),
    "rmsprop": lambda: v1.train.RMSPropOptimizer(0.05),
}
_RNG = np.random.default_rng(7)
BATCHES = [
    (_RNG.normal(size=(8, 5)).astype(np.float32), _RNG.normal(size=(8, 3)).astype(np.float32))
    for _ in range(6)
]
W1, W2, W3 = (_RNG.normal(size=shape).astype(np.float32) for shape in ((5, 6), (6, 4), (4, 3)))


class _Model:
    """The graph, its session and the feeds of a good or faulty step."""

    def __init__(self, optimizer, transforms_fn=lambda: [tf1norm.skip_nonfinite()], inter_op=1):
        self.graph = tf.Graph()
        with self.graph.as_default():
            v1.set_random_seed(3)
            self._build(optimizer, transforms_fn())
            self.init = v1.global_variables_initializer()
        config = v1.ConfigProto(
            inter_op_parallelism_threads=inter_op, intra_op_parallelism_threads=1
        )
        self.sess = v1.Session(graph=self.graph, config=config)
        self.sess.run(self.init)

    def _build(self, optimizer, transforms):
        self.x = v1.placeholder(tf.float32, [None, 5])
        self.y = v1.placeholder(tf.float32, [None, 3])
        self.poison = v1.placeholder_with_default(tf.constant(1.0), [])
        with v1.variable_scope("sn", custom_getter=tf1norm.spectral_norm_getter()):
            w1 = v1.get_variable("kernel", initializer=W1)
        h = tf.nn.relu(tf1norm.batch_norm(tf.matmul(self.x, w1), training=True))
        max_norm = tf1norm.max_norm_regularizer(1.5)
        w2 = v1.get_variable("w2", initializer=W2, regularizer=max_norm)
        h = tf.matmul(h, _poisoned_gradient(w2, self.poison))
        h = v1.layers.batch_normalization(h, training=True)
        w3 = v1.get_variable("w3", initializer=W3, regularizer=max_norm)
        loss = tf.reduce_mean(tf.square(tf.matmul(tf.nn.relu(h), w3) - self.y))
        # A write only the loss (not its gradients) depends on, like a streaming metric.
        input_sum = v1.get_variable("input_sum", initializer=0.0, trainable=False)
        with tf.control_dependencies([input_sum.assign_add(tf.reduce_sum(self.x))]):
            self.loss = tf.identity(loss)
        self.train_op = tf1norm.create_train_op(self.loss, optimizer(), transforms=transforms)
        self.skipped = v1.get_collection(tf1norm.keys.SKIPPED_STEPS)
        self.state = [v for v in v1.global_variables() if v not in self.skipped]

    def step(self, batch, nan_input=False, nan_gradient=False):
        x, y = batch
        feed = {self.x: np.full_like(x, np.nan) if nan_input else x, self.y: y}
        if nan_gradient:
            feed[self.poison] = np.nan
        return self.sess.run(self.train_op, feed)

    def values(self):
        return dict(zip([v.op.name for v in self.state], self.sess.run(self.state)))

    def skipped_steps(self):
        return self.sess.run(self.skipped[0])


def _poisoned_gradient(w, factor):
    """``w`` in the forward pass; its gradient is multiplied by ``factor`` (NaN: NaN)."""

    @tf.custom_gradient
    def identity(value):
        return tf.identity(value), lambda dy: dy * factor

    return identity(w)


def assert_same(before, after):
    assert before.keys() == after.keys()
    changed = [name for name in before if not np.array_equal(before[name], after[name])]
    assert not changed, f"changed on a skipped step: {changed}"


@pytest.fixture(scope="module", params=sorted(OPTIMIZERS))
def runs(request):
    """A faulty run and a clean run of the same model, trained on the same batches."""
    faulty, clean = _Model(OPTIMIZERS[request.param]), _Model(OPTIMIZERS[request.param])
    for model in (faulty, clean):
        for batch in BATCHES[:2]:
            model.step(batch)
    yield faulty, clean
    faulty.sess.close()
    clean.sess.close()


def test_the_model_has_every_kind_of_state(runs):
    faulty, _ = runs
    names = set(faulty.values())
    for expected in (
        "batch_normalization/moving_mean",
        "batch_normalization_1/moving_variance",
        "sn/kernel/sn_u",
        "global_step",
        "input_sum",
    ):
        assert expected in names
    with faulty.graph.as_default():
        assert len(v1.get_collection(tf1norm.keys.UPDATE_OPS)) == 4


def test_faults_change_nothing_and_training_resumes_bit_identically(runs):
    faulty, clean = runs
    before = faulty.values()
    faulty.step(BATCHES[2], nan_input=True)  # NaN loss, NaN statistics
    assert_same(before, faulty.values())
    assert faulty.skipped_steps() == 1
    loss = faulty.step(BATCHES[2], nan_gradient=True)  # finite loss, one NaN gradient
    assert np.isfinite(loss)
    assert_same(before, faulty.values())
    faulty.step(BATCHES[3], nan_input=True)  # three faults in a row
    faulty.step(BATCHES[4], nan_gradient=True)
    faulty.step(BATCHES[5], nan_input=True, nan_gradient=True)
    assert_same(before, faulty.values())
    assert faulty.skipped_steps() == 5
    for batch in BATCHES[2:]:
        faulty.step(batch)
        clean.step(batch)
    assert faulty.skipped_steps() == 5 and clean.skipped_steps() == 0
    resumed, reference = faulty.values(), clean.values()
    assert not np.array_equal(before["sn/kernel/sn_u"], resumed["sn/kernel/sn_u"])
    assert not np.array_equal(
        before["batch_normalization/moving_mean"], resumed["batch_normalization/moving_mean"]
    )
    assert_same(reference, resumed)


def test_restores_are_ordered_under_parallel_execution():
    """Each fresh session runs the snapshot before the writes and the restore after."""
    model = _Model(OPTIMIZERS["momentum"], inter_op=4)
    model.step(BATCHES[0])
    good = model.values()
    for attempt in range(8):
        model.sess.close()
        model.sess = v1.Session(
            graph=model.graph,
            config=v1.ConfigProto(inter_op_parallelism_threads=4, intra_op_parallelism_threads=2),
        )
        model.sess.run(model.init)
        model.step(BATCHES[0])
        model.step(
            BATCHES[1 + attempt % 4], nan_input=attempt % 2 == 0, nan_gradient=attempt % 2 == 1
        )
        assert_same(good, model.values())
    model.sess.close()


class _ApplyIf(tf1norm.Transform):
    """Test transform: apply the step only when a fed flag is True."""

    def __init__(self, flag):
        self.flag = flag

    def pre_apply(self, grads_and_vars, context):
        context.add_apply_condition(self.flag, tf.no_op)
        return grads_and_vars


def test_any_apply_condition_restores_after_the_writes():
    """A decision that needs no forward tensor still waits for the writes it undoes."""
    flags = []

    def transforms():
        flags.append(v1.placeholder_with_default(True, []))
        return [_ApplyIf(flags[-1])]

    model = _Model(OPTIMIZERS["adam"], transforms, inter_op=4)
    for attempt in range(6):
        model.step(BATCHES[attempt % 2])
        before = model.values()
        model.sess.run(
            model.train_op, {model.x: BATCHES[2][0], model.y: BATCHES[2][1], flags[0]: False}
        )
        assert_same(before, model.values())
    model.sess.close()


class _ScaleGradients(tf1norm.Transform):
    """Test transform: every gradient times a (fed) factor."""

    def __init__(self, factor):
        self.factor = factor

    def pre_apply(self, grads_and_vars, context):
        return [(g * self.factor, v) for g, v in grads_and_vars]


def test_a_transform_after_skip_that_makes_inf_is_skipped(sess):
    w = v1.get_variable("w", initializer=[1.0, 2.0])
    factor = v1.placeholder_with_default(1.0, [])
    skip = tf1norm.skip_nonfinite()
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(w * w),
        v1.train.GradientDescentOptimizer(0.1),
        transforms=[skip, _ScaleGradients(factor)],
    )
    sess.run(v1.global_variables_initializer())
    sess.run(train_op, {factor: np.inf})
    np.testing.assert_array_equal(sess.run(w), [1.0, 2.0])
    assert sess.run(skip.skipped_steps) == 1
    sess.run(train_op)
    np.testing.assert_allclose(sess.run(w), [0.8, 1.6])


def test_a_nonfinite_loss_with_finite_gradients_is_skipped(sess):
    w = v1.get_variable("w", initializer=[1.0, 2.0])
    offset = v1.placeholder_with_default(0.0, [])
    skip = tf1norm.skip_nonfinite()
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(w * w) + offset, v1.train.GradientDescentOptimizer(0.1), transforms=[skip]
    )
    sess.run(v1.global_variables_initializer())
    sess.run(train_op, {offset: np.nan})
    np.testing.assert_array_equal(sess.run(w), [1.0, 2.0])
    assert sess.run(skip.skipped_steps) == 1


def test_check_numerics_names_the_variable_with_a_nan_gradient(sess):
    """Without skip_nonfinite a finite loss with a NaN gradient raises, naming the layer."""
    a = v1.get_variable("a", initializer=[1.0, 2.0])
    b = v1.get_variable("b", initializer=[3.0])
    factor = v1.placeholder_with_default(1.0, [])
    loss = tf.reduce_sum(a * a) + tf.reduce_sum(_poisoned_gradient(b, factor))
    train_op = tf1norm.create_train_op(
        loss, v1.train.GradientDescentOptimizer(0.1), global_step=None
    )
    sess.run(v1.global_variables_initializer())
    with pytest.raises(tf.errors.InvalidArgumentError, match="the gradient of b is inf or nan"):
        sess.run(train_op, {factor: np.nan})
    np.testing.assert_array_equal(sess.run(b), [3.0])  # never written with the NaN
    sess.run(train_op)
    np.testing.assert_allclose(sess.run(b), [2.9])


def test_no_skip_leaves_the_graph_unmodified_by_snapshots(graph):
    """Without an apply condition no snapshot op is built (no cost for the default)."""
    x = v1.placeholder(tf.float32, [None, 2])
    w = v1.get_variable("w", initializer=np.ones((2, 2), np.float32))
    loss = tf.reduce_sum(tf1norm.batch_norm(tf.matmul(x, w), training=True))
    tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(0.1))
    assert not [op for op in graph.get_operations() if "skip_nonfinite_snapshot" in op.name]


def test_snapshots_are_one_per_written_variable(graph):
    x = v1.placeholder(tf.float32, [None, 2])
    w = v1.get_variable("w", initializer=np.ones((2, 2), np.float32))
    loss = tf.reduce_sum(tf1norm.batch_norm(tf.matmul(x, w), training=True))
    tf1norm.create_train_op(
        loss, v1.train.GradientDescentOptimizer(0.1), transforms=[tf1norm.skip_nonfinite()]
    )
    snapshots = [
        op
        for op in graph.get_operations()
        if op.name.startswith("skip_nonfinite_snapshot") and op.type == "ReadVariableOp"
    ]
    read = sorted(op.inputs[0].op.name for op in snapshots)
    assert read == ["batch_normalization/moving_mean", "batch_normalization/moving_variance"]


def test_a_legacy_reference_variable_written_in_the_forward_pass_is_restored(sess):
    """A ``tf.cond`` branch cannot take a reference input: restored after the decision."""
    x = v1.placeholder(tf.float32, [None, 2])
    w = v1.get_variable("w", initializer=np.ones((2, 2), np.float32))
    seen = v1.get_variable("seen", initializer=0.0, use_resource=False, trainable=False)
    assert type(seen).__name__ == "RefVariable"
    with tf.control_dependencies([v1.assign_add(seen, tf.reduce_sum(x))]):
        loss = tf.identity(tf.reduce_sum(tf.matmul(x, w)))
    train_op = tf1norm.create_train_op(
        loss, v1.train.MomentumOptimizer(0.1, 0.9), transforms=[tf1norm.skip_nonfinite()]
    )
    sess.run(v1.global_variables_initializer())
    sess.run(train_op, {x: np.ones((3, 2))})
    sess.run(train_op, {x: np.full((3, 2), np.nan)})
    assert sess.run(seen) == 6.0
    sess.run(train_op, {x: np.ones((3, 2))})
    assert sess.run(seen) == 12.0
    np.testing.assert_allclose(sess.run(w), 1.0 - 0.3 - 0.3 * 1.9, rtol=1e-6)


def test_statistics_updated_inside_a_cond_op_are_restored(sess):
    """With a training *tensor* the layers' updates sit in an ``If`` op: still restored."""
    x = v1.placeholder(tf.float32, [None, 2])
    training = v1.placeholder_with_default(True, [])
    w = v1.get_variable("w", initializer=np.ones((2, 2), np.float32))
    h = v1.layers.batch_normalization(tf.matmul(x, w), training=training)
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(h * h), v1.train.AdamOptimizer(0.1), transforms=[tf1norm.skip_nonfinite()]
    )
    sess.run(v1.global_variables_initializer())
    sess.run(train_op, {x: [[1.0, 2.0], [3.0, 5.0]]})
    names = [v.op.name for v in v1.global_variables()]
    before = dict(zip(names, sess.run(v1.global_variables())))
    assert before["batch_normalization/moving_mean"][0] != 0.0  # the update ran
    sess.run(train_op, {x: [[np.nan, 2.0], [3.0, 5.0]]})
    after = dict(zip(names, sess.run(v1.global_variables())))
    del before["skip_nonfinite/skipped_steps"], after["skip_nonfinite/skipped_steps"]
    assert_same(before, after)


def _noisy_run(faults):
    """Weights after 3 good steps of a loss drawing from a tf.random.Generator."""
    with tf.Graph().as_default(), v1.Session() as session:
        x = v1.placeholder(tf.float32, [2])
        w = v1.get_variable("w", initializer=[1.0, 2.0])
        noise = tf.random.Generator.from_seed(5).normal([2])
        train_op = tf1norm.create_train_op(
            tf.reduce_sum(w * x * noise),
            v1.train.GradientDescentOptimizer(0.1),
            transforms=[tf1norm.skip_nonfinite()],
        )
        session.run(v1.global_variables_initializer())
        for _ in range(faults):
            session.run(train_op, {x: [np.nan, 1.0]})
        for _ in range(3):
            session.run(train_op, {x: [1.0, 1.0]})
        return session.run(w)


def test_a_random_generator_state_is_restored():
    """Draws of a skipped step are drawn again: the next steps see the clean run's noise."""
    clean, resumed = _noisy_run(0), _noisy_run(2)
    np.testing.assert_array_equal(clean, resumed)
    assert not np.array_equal(clean, [1.0, 2.0])
