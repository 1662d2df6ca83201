"""create_train_op as a drop-in for tf-slim's: global step, return value, loops that stop."""

import warnings

import numpy as np
import pytest

import tf1norm
from tf1norm import keys
from tf1norm._src.compat import tf, v1

from conftest import run_initialized

W0 = np.array([[0.6, 0.1], [0.7, -0.3]], np.float32)
G = np.array([[-3.0, 0.1], [-2.0, 4.0]], np.float32)


def _problem(name="w"):
    """Variable w with loss sum(w * G): the gradient is exactly G."""
    w = v1.get_variable(name, initializer=W0)
    return w, tf.reduce_sum(w * G)


def _sgd():
    return v1.train.GradientDescentOptimizer(0.1)


def test_default_creates_the_global_step_and_returns_the_loss(sess):
    w, loss = _problem()
    assert v1.train.get_global_step() is None
    train_op = tf1norm.create_train_op(loss, _sgd())
    step = v1.train.get_global_step()
    assert step is not None and train_op.dtype == tf.float32 and train_op.shape.rank == 0
    assert train_op in v1.get_collection(keys.TRAIN_OP)  # after the optimizer's own op
    first = run_initialized(sess, train_op)
    assert first == pytest.approx(float(np.sum(W0 * G)))  # the loss before the update
    assert sess.run(train_op) == pytest.approx(float(np.sum((W0 - 0.1 * G) * G)))
    assert sess.run(step) == 2
    np.testing.assert_allclose(sess.run(w), W0 - 0.2 * G, rtol=1e-6)


def test_global_step_none_means_no_increment_even_when_one_exists(sess):
    _, loss = _problem()
    step = v1.train.get_or_create_global_step()
    train_op = tf1norm.create_train_op(loss, _sgd(), global_step=None)
    run_initialized(sess, train_op)
    sess.run(train_op)
    assert sess.run(step) == 0


def test_gan_two_train_ops_count_each_step_once(sess):
    """tf-slim's rule: the default increments; the other train op passes None."""
    _, generator_loss = _problem("generator")
    _, discriminator_loss = _problem("discriminator")
    var = lambda scope: v1.trainable_variables(scope)  # noqa: E731
    g_op = tf1norm.create_train_op(generator_loss, _sgd(), variables=var("generator"))
    d_op = tf1norm.create_train_op(
        discriminator_loss, _sgd(), global_step=None, variables_to_train=var("discriminator")
    )
    sess.run(v1.global_variables_initializer())
    for _ in range(10):
        sess.run(d_op)
        sess.run(g_op)
    assert sess.run(v1.train.get_global_step()) == 10


def test_second_incrementing_train_op_is_warned_about(graph):
    _, loss = _problem()
    tf1norm.create_train_op(loss, _sgd())
    with pytest.warns(UserWarning, match="global_step=None"):
        tf1norm.create_train_op(loss, _sgd(), name="other")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tf1norm.create_train_op(loss, _sgd(), global_step=None, name="third")


def test_slim_learning_train_stops_at_number_of_steps(tmp_path):
    import tf_slim as slim

    with tf.Graph().as_default():
        w, loss = _problem()
        train_op = tf1norm.create_train_op(
            loss * 0.01, _sgd(), transforms=[tf1norm.clip_by_norm(1.0)]
        )
        # No Supervisor threads (summary_writer=None, save_interval_secs=0): they run eagerly in a
        # process where eager execution is on (pytest's); see legacy_examples/slim_train.py
        # for the plain call in a TF1 process.
        final_loss = slim.learning.train(
            train_op, str(tmp_path), number_of_steps=5, summary_writer=None, save_interval_secs=0
        )
        assert np.isfinite(final_loss)
    reader = tf.train.load_checkpoint(str(tmp_path))
    assert reader.get_tensor("global_step") == 5
    clipped = G * 0.01 * min(1.0, 1.0 / np.linalg.norm(G * 0.01))
    np.testing.assert_allclose(reader.get_tensor("w"), W0 - 5 * 0.1 * clipped, rtol=1e-5)


def test_monitored_training_session_stops_at_last_step(tmp_path):
    with tf.Graph().as_default():
        _, loss = _problem()
        train_op = tf1norm.create_train_op(loss, _sgd())
        runs = 0
        with v1.train.MonitoredTrainingSession(
            checkpoint_dir=str(tmp_path),
            hooks=[v1.train.StopAtStepHook(last_step=7)],
            save_summaries_steps=None,
            save_checkpoint_secs=None,
        ) as session:
            while not session.should_stop() and runs < 100:
                session.run(train_op)
                runs += 1
    assert runs == 7


def test_summarize_gradients_reports_the_applied_gradients(sess):
    w, loss = _problem()
    train_op = tf1norm.create_train_op(
        loss, _sgd(), summarize_gradients=True, transforms=[tf1norm.clip_by_norm(2.0)]
    )
    summary = v1.Summary()
    summary.ParseFromString(run_initialized(sess, v1.summary.merge_all()))
    values = {v.tag: v for v in summary.value}
    assert set(values) == {"w_gradient", "w_gradient_norm"}
    assert values["w_gradient_norm"].simple_value == pytest.approx(2.0, rel=1e-6)
    assert values["w_gradient"].histo.num == 4
    assert values["w_gradient"].histo.max == pytest.approx(4.0 * 2.0 / np.linalg.norm(G))
    sess.run(train_op)


def test_summaries_of_skipped_nonfinite_gradients_do_not_fail(sess):
    _, loss = _problem()
    scale = v1.placeholder_with_default(1.0, [])
    tf1norm.create_train_op(
        loss * scale, _sgd(), summarize_gradients=True, transforms=[tf1norm.skip_nonfinite()]
    )
    sess.run(v1.global_variables_initializer())
    sess.run(v1.summary.merge_all(), {scale: np.nan})


def test_variables_to_train_alias_and_conflict(sess):
    w, loss = _problem()
    other = v1.get_variable("other", initializer=1.0)
    loss = loss + other * 3.0
    train_op = tf1norm.create_train_op(loss, _sgd(), variables_to_train=[other])
    run_initialized(sess, train_op)
    np.testing.assert_array_equal(sess.run(w), W0)
    assert sess.run(other) == pytest.approx(1.0 - 0.3)
    with pytest.raises(ValueError, match="variables_to_train"):
        tf1norm.create_train_op(loss, _sgd(), variables=[w], variables_to_train=[other])


@pytest.mark.parametrize(
    "transform,expected",
    [
        (lambda low, high: tf1norm.clip_by_value(low, high), np.clip(G, -0.5, 2.5)),
        (lambda low, high: tf1norm.clip_by_norm(high), G * 2.5 / np.linalg.norm(G)),
        (lambda low, high: tf1norm.clip_by_global_norm(high), G * 2.5 / np.linalg.norm(G)),
    ],
    ids=["value", "norm", "global_norm"],
)
def test_clip_bounds_may_be_tensors(sess, transform, expected):
    w, loss = _problem()
    low, high = v1.placeholder(tf.float32, []), v1.placeholder(tf.float32, [])
    train_op = tf1norm.create_train_op(loss, _sgd(), transforms=[transform(low, high)])
    run_initialized(sess, train_op, {low: -0.5, high: 2.5})
    np.testing.assert_allclose(sess.run(w), W0 - 0.1 * expected, rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be"):
        sess.run(train_op, {low: 3.0, high: -1.0})


def test_multiplier_of_a_none_gradient_raises(graph):
    w, loss = _problem()
    frozen = v1.get_variable("frozen", initializer=1.0)
    with pytest.raises(ValueError, match="frozen.*no gradient"):
        tf1norm.create_train_op(
            loss,
            _sgd(),
            variables=[w, frozen],
            transforms=[tf1norm.multiply_gradients({"frozen": 2.0})],
        )
    with pytest.raises(ValueError, match="no gradient"):
        tf1norm.create_train_op(
            loss,
            _sgd(),
            variables=[w, frozen],
            transforms=[tf1norm.multiply_gradients({frozen: 2.0})],
        )


def test_multiplier_pattern_skips_variables_without_gradient(sess):
    w, loss = _problem()
    frozen = v1.get_variable("frozen", initializer=1.0)
    train_op = tf1norm.create_train_op(
        loss, _sgd(), variables=[w, frozen], transforms=[tf1norm.multiply_gradients({".*": 2.0})]
    )
    run_initialized(sess, train_op)
    np.testing.assert_allclose(sess.run(w), W0 - 0.2 * G, rtol=1e-6)


@pytest.mark.parametrize(
    "global_step,fragment",
    [
        (0, "got 0"),
        ("global_step", "got 'global_step'"),
        (lambda: v1.Variable(0.0, name="float_step"), "got a float32 variable"),
        (lambda: tf.constant(1, tf.int64), "got <tf.Tensor"),
    ],
    ids=["int", "str", "float_variable", "tensor"],
)
def test_bad_global_step(graph, global_step, fragment):
    _, loss = _problem()
    global_step = global_step() if callable(global_step) else global_step
    with pytest.raises(TypeError, match="`global_step` must be an integer tf.Variable") as info:
        tf1norm.create_train_op(loss, _sgd(), global_step=global_step)
    assert fragment in str(info.value)


def test_nonfinite_multiplier_raises(graph):
    with pytest.raises(ValueError, match="factor of 'w' must be finite; got nan"):
        tf1norm.multiply_gradients({"w": float("nan")})
