"""create_train_op: one complete, ordered step; each transform; bad input."""

import numpy as np
import pytest

import tf1norm
from tf1norm import keys
from tf1norm._src.compat import tf, v1

import numpy_twins as twins
from conftest import run_initialized

W0 = np.array([[0.6, 0.1, -0.2], [0.7, 0.1, 0.3], [-0.5, 0.05, 0.4]], np.float32)
G = np.array([[-3.0, 0.1, 0.2], [-2.0, 0.2, -0.1], [1.0, 0.0, 0.3]], np.float32)


def _linear_problem(dtype=np.float32, regularizer=None):
    """Variable w with loss sum(w * G): the gradient is exactly G."""
    w = v1.get_variable("w", initializer=W0.astype(dtype), regularizer=regularizer)
    return w, tf.reduce_sum(w * G.astype(dtype))


def test_one_run_is_one_step_and_one_increment(sess):
    w, loss = _linear_problem()
    step = v1.train.get_or_create_global_step()
    optimizer = v1.train.AdamOptimizer(0.1)
    train_op = tf1norm.create_train_op(loss, optimizer)
    assert isinstance(train_op, tf.Tensor) and train_op.dtype == tf.float32  # tf-slim's loss
    run_initialized(sess, train_op)
    beta1_power, _ = optimizer._get_beta_accumulators()
    assert sess.run(step) == 1 and sess.run(beta1_power) == pytest.approx(0.9**2)
    sess.run(train_op)
    assert sess.run(step) == 2 and sess.run(beta1_power) == pytest.approx(0.9**3)


def test_update_ops_run_once_per_step_and_before_gradients(sess):
    w, loss = _linear_problem()
    counter = v1.get_variable("bn_counter", initializer=0.0, trainable=False)
    v1.add_to_collection(keys.UPDATE_OPS, counter.assign_add(1.0).op)
    train_op = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(0.1))
    assert tf1norm.check_train_op(train_op) == []
    run_initialized(sess, train_op)
    sess.run(train_op)
    assert sess.run(counter) == 2.0
    np.testing.assert_allclose(sess.run(w), W0 - 0.2 * G, rtol=1e-6)


def _one_step_expectation(lr, wd, clip):
    g = G * min(1.0, clip / np.linalg.norm(G))
    return twins.max_norm(W0.astype(np.float64) - lr * g - lr * wd * W0, 1.0)


def test_projection_and_decay_are_ordered_under_parallel_execution():
    """20 fresh sessions with 2 inter-op threads all give the NumPy answer."""
    expected = _one_step_expectation(lr=0.1, wd=0.5, clip=2.0)
    config = v1.ConfigProto(inter_op_parallelism_threads=2, intra_op_parallelism_threads=1)
    for _ in range(20):
        with tf.Graph().as_default():
            w, loss = _linear_problem(regularizer=tf1norm.max_norm_regularizer(1.0))
            train_op = tf1norm.create_train_op(
                loss,
                v1.train.MomentumOptimizer(0.1, 0.9),
                transforms=[
                    tf1norm.clip_by_global_norm(2.0),
                    tf1norm.add_decoupled_weight_decay(0.5),
                ],
            )
            with v1.Session(config=config) as sess:
                run_initialized(sess, train_op)
                result = sess.run(w)
        np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-7)
    assert np.linalg.norm(expected, axis=0)[0] == pytest.approx(1.0)  # projection is active


def test_sgd_decay_step_reads_pre_update_weights_every_time():
    config = v1.ConfigProto(inter_op_parallelism_threads=2)
    expected = W0 - 0.1 * G - 0.3 * W0  # w[t+1] = w[t] - lr*dw - wd*w[t]
    for _ in range(20):
        with tf.Graph().as_default():
            w, loss = _linear_problem(regularizer=tf1norm.l2_regularizer(0.3))
            train_op = tf1norm.create_train_op(
                loss, v1.train.GradientDescentOptimizer(0.1), transforms=[tf1norm.sgd_decay_step()]
            )
            with v1.Session(config=config) as sess:
                run_initialized(sess, train_op)
                np.testing.assert_allclose(sess.run(w), expected, rtol=1e-6)


def test_projections_recorded_are_added_automatically_once(sess):
    from tf1norm.training.check import _Closure

    w, loss = _linear_problem(regularizer=tf1norm.max_norm_regularizer(1.0))
    explicit = tf1norm.create_train_op(
        loss,
        v1.train.GradientDescentOptimizer(0.1),
        transforms=[tf1norm.project_constraints()],
        name="a",
        global_step=None,
    )
    implicit = tf1norm.create_train_op(
        loss, v1.train.GradientDescentOptimizer(0.1), name="b", global_step=None
    )
    for train_op in (explicit, implicit):
        assert len(_Closure(train_op.op).writes(w.handle.op, ("AssignVariableOp",))) == 1
    run_initialized(sess, implicit)
    assert np.all(twins.norms(sess.run(w)) <= 1.0 + 1e-6)
    np.testing.assert_allclose(sess.run(w), twins.max_norm(W0 - 0.1 * G, 1.0), rtol=1e-6)


def test_variable_names_match_a_plain_minimize_graph():
    def names(build):
        with tf.Graph().as_default():
            w, loss = _linear_problem()
            build(loss, v1.train.AdamOptimizer(0.1))
            return sorted(v.op.name for v in v1.global_variables())

    plain = names(lambda loss, opt: opt.minimize(loss, v1.train.get_or_create_global_step()))
    ours = names(
        lambda loss, opt: tf1norm.create_train_op(
            loss, opt, transforms=[tf1norm.clip_by_global_norm(1.0)]
        )
    )
    assert ours == plain == ["beta1_power", "beta2_power", "global_step", "w", "w/Adam", "w/Adam_1"]


def test_clip_by_value_keeps_indexed_slices_sparse(sess):
    table = v1.get_variable("table", initializer=np.ones((5, 2), np.float32))
    loss = tf.reduce_sum(tf.nn.embedding_lookup(table, [1, 3]) * 10.0)
    optimizer = v1.train.GradientDescentOptimizer(1.0)
    grads = optimizer.compute_gradients(loss)
    context = tf1norm.StepContext(optimizer, None, [table])
    ((clipped, _),) = tf1norm.clip_by_value(-1.0, 1.0).pre_apply(grads, context)
    assert isinstance(clipped, tf.IndexedSlices)
    np.testing.assert_array_equal(sess.run(clipped.values), np.ones((2, 2)))
    train_op = tf1norm.create_train_op(loss, optimizer, transforms=[tf1norm.clip_by_value(-1, 1)])
    run_initialized(sess, train_op)
    np.testing.assert_array_equal(sess.run(table)[[0, 1, 2], 0], [1.0, 0.0, 1.0])


def test_clip_by_norm_and_global_norm(sess):
    w, loss = _linear_problem()
    clip = tf1norm.clip_by_global_norm(1.0)
    optimizer = v1.train.GradientDescentOptimizer(1.0)
    train_op = tf1norm.create_train_op(
        loss, optimizer, transforms=[tf1norm.clip_by_norm(2.0), clip]
    )
    norm = run_initialized(sess, [train_op, clip.global_norm])[1]  # computed before the update
    assert norm == pytest.approx(2.0, rel=1e-6)  # after clip_by_norm(2.0) of a norm-4 tensor
    assert v1.get_collection(keys.GRADIENT_GLOBAL_NORM) == [clip.global_norm]
    np.testing.assert_allclose(sess.run(w), W0 - G / np.linalg.norm(G), rtol=1e-5)


def test_multiply_gradients_by_name_and_variable(sess):
    w, loss = _linear_problem()
    b = v1.get_variable("layer/bias", initializer=np.zeros(3, np.float32))
    loss = loss + tf.reduce_sum(b)
    train_op = tf1norm.create_train_op(
        loss,
        v1.train.GradientDescentOptimizer(1.0),
        transforms=[tf1norm.multiply_gradients({"layer/.*": 0.5, w: 0.1})],
    )
    run_initialized(sess, train_op)
    np.testing.assert_allclose(sess.run(w), W0 - 0.1 * G, rtol=1e-6)
    np.testing.assert_allclose(sess.run(b), [-0.5] * 3)


def test_multiply_gradients_unknown_name_raises(graph):
    _, loss = _linear_problem()
    with pytest.raises(ValueError, match="'conv9/weights' matches no trained variable"):
        tf1norm.create_train_op(
            loss,
            v1.train.GradientDescentOptimizer(1.0),
            transforms=[tf1norm.multiply_gradients({"conv9/weights": 2})],
        )


def test_gradient_noise_has_the_requested_scale(sess):
    w = v1.get_variable("w", initializer=np.zeros(20000, np.float32))
    step = v1.train.get_or_create_global_step()
    noise = tf1norm.add_gradient_noise(0.3, decay=0.55, seed=1)
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(w * 0.0),
        v1.train.GradientDescentOptimizer(1.0),
        transforms=[noise],
        global_step=step,
    )
    run_initialized(sess, train_op)
    assert np.std(sess.run(w)) == pytest.approx(0.3, rel=0.03)
    before = sess.run(w)
    sess.run(train_op)  # t = 1: stddev 0.3 * 2 ** -0.275
    assert np.std(sess.run(w) - before) == pytest.approx(0.3 * 2**-0.275, rel=0.03)


def test_skip_nonfinite_leaves_variables_and_slots_untouched(sess):
    w, _ = _linear_problem()
    scale = v1.placeholder(tf.float32, [])
    step = v1.train.get_or_create_global_step()
    skip = tf1norm.skip_nonfinite()
    optimizer = v1.train.AdamOptimizer(0.1)
    train_op = tf1norm.create_train_op(tf.reduce_sum(w * G * scale), optimizer, transforms=[skip])
    run_initialized(sess, train_op, {scale: 1.0})
    watched = [
        w,
        step,
        optimizer.get_slot(w, "m"),
        optimizer.get_slot(w, "v"),
        *optimizer._get_beta_accumulators(),
    ]
    before = sess.run(watched)
    for bad in (np.nan, np.inf):
        sess.run(train_op, {scale: bad})
        for old, new in zip(before, sess.run(watched)):
            np.testing.assert_array_equal(old, new)
    assert sess.run(skip.skipped_steps) == 2
    sess.run(train_op, {scale: 1.0})
    assert sess.run(step) == 2 and sess.run(skip.skipped_steps) == 2


def test_none_gradients_pass_through(sess):
    w, loss = _linear_problem()
    unused = v1.get_variable("unused", initializer=np.ones(2, np.float32))
    train_op = tf1norm.create_train_op(
        loss,
        v1.train.GradientDescentOptimizer(0.1),
        variables=[w, unused],
        transforms=[
            tf1norm.clip_by_value(-5, 5),
            tf1norm.clip_by_global_norm(10.0),
            tf1norm.add_decoupled_weight_decay(0.1),
            tf1norm.skip_nonfinite(),
        ],
    )
    run_initialized(sess, train_op)
    np.testing.assert_array_equal(sess.run(unused), [1.0, 1.0])


def test_check_numerics_raises_on_nan_loss(sess):
    w, loss = _linear_problem()
    scale = v1.placeholder(tf.float32, [])
    train_op = tf1norm.create_train_op(loss * scale, v1.train.GradientDescentOptimizer(0.1))
    sess.run(v1.global_variables_initializer())
    with pytest.raises(tf.errors.InvalidArgumentError, match="LossTensor is inf or nan"):
        sess.run(train_op, {scale: np.nan})


BAD = [
    (lambda loss: tf1norm.create_train_op(loss, "adam"), TypeError, "tf.compat.v1.train.Optimizer"),
    (
        lambda loss: tf1norm.create_train_op(loss, v1.train.AdamOptimizer(), transforms=[abs]),
        TypeError,
        "tf1norm Transform",
    ),
    (
        lambda loss: tf1norm.create_train_op(tf.stack([loss, loss]), v1.train.AdamOptimizer()),
        ValueError,
        "must be a scalar",
    ),
    (
        lambda loss: tf1norm.create_train_op(tf.constant(1.0), v1.train.AdamOptimizer()),
        ValueError,
        "no gradient flows",
    ),
    (lambda loss: tf1norm.clip_by_value(1.0, -1.0), ValueError, "clip_value_min"),
    (lambda loss: tf1norm.clip_by_norm(0.0), ValueError, "`clip_norm`"),
    (lambda loss: tf1norm.clip_by_global_norm(-1.0), ValueError, "`clip_norm`"),
    (lambda loss: tf1norm.multiply_gradients([]), TypeError, "non-empty dict"),
    (lambda loss: tf1norm.multiply_gradients({3: 1.0}), TypeError, "variables or names"),
    (lambda loss: tf1norm.add_gradient_noise(-0.1), ValueError, "`scale`"),
    (lambda loss: tf1norm.add_decoupled_weight_decay(-1e-2), ValueError, "`rate`"),
    (
        lambda loss: tf1norm.add_decoupled_weight_decay(1e-2, exclude=["("]),
        ValueError,
        "regular expressions",
    ),
    (lambda loss: tf1norm.sgd_decay_step(collection=None), TypeError, "`collection`"),
    (
        lambda loss: tf1norm.create_train_op(
            loss, v1.train.AdamOptimizer(), transforms=[tf1norm.sgd_decay_step("nothing")]
        ),
        ValueError,
        "collection 'nothing' is empty",
    ),
    (
        lambda loss: tf1norm.create_train_op(
            loss,
            v1.train.AdamOptimizer(),
            global_step=None,
            transforms=[tf1norm.add_gradient_noise(1.0, 0.5)],
        ),
        ValueError,
        "needs a global step",
    ),
    (lambda loss: tf1norm.project_constraints(5), TypeError, "`collection`"),
    (lambda loss: tf1norm.ConstraintHook(collection=1), TypeError, "`collection`"),
]


@pytest.mark.parametrize("call,error,fragment", BAD, ids=range(len(BAD)))
def test_bad_input(graph, call, error, fragment):
    _, loss = _linear_problem()
    with pytest.raises(error, match=None) as info:
        call(loss)
    assert fragment in str(info.value)


def test_each_projection_waits_only_for_its_own_update(graph):
    from tf1norm.training.check import _Closure

    reg = tf1norm.max_norm_regularizer(1.0)
    a = v1.get_variable("a", [4, 3], regularizer=reg)
    b = v1.get_variable("b", [3, 2], regularizer=reg)
    loss = tf.reduce_sum(tf.matmul(tf.ones([1, 4]), tf.matmul(a, b)))
    train_op = tf1norm.create_train_op(loss, v1.train.MomentumOptimizer(0.1, 0.9))
    closure = _Closure(train_op.op)
    for mine, other in ((a, b), (b, a)):
        (projection,) = [op for op in closure.writes(mine.handle.op, ("AssignVariableOp",))]
        (own,) = closure.writes(mine.handle.op, ("ResourceApply",))
        (foreign,) = closure.writes(other.handle.op, ("ResourceApply",))
        closure.mark([own, foreign])
        ancestors = closure.ancestor_mask(projection)
        assert ancestors & closure.mask([own]) and not ancestors & closure.mask([foreign])


def test_ref_variables_are_projected_decayed_and_counted(sess):
    """Legacy non-resource variables take the same write paths as resource ones."""
    w = v1.get_variable(
        "w", initializer=W0, use_resource=False, regularizer=tf1norm.max_norm_regularizer(1.0)
    )
    step = v1.Variable(0, dtype=tf.int64, trainable=False, use_resource=False, name="step")
    assert type(w).__name__ == "RefVariable"
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(w * G),
        v1.train.GradientDescentOptimizer(0.1),
        global_step=step,
        transforms=[tf1norm.add_decoupled_weight_decay(0.5)],
    )
    run_initialized(sess, train_op)
    expected = twins.max_norm(W0.astype(np.float64) - 0.1 * G - 0.1 * 0.5 * W0, 1.0)
    np.testing.assert_allclose(sess.run(w), expected, rtol=1e-5, atol=1e-7)
    assert sess.run(step) == 1
    sess.run(v1.get_collection(keys.MAX_NORM))  # the legacy collection op still runs
