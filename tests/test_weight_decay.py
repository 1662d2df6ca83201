"""Weight decay flavours against recorded PyTorch trajectories and hand algebra."""

import pathlib

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

from conftest import run_initialized

FIXTURE = np.load(pathlib.Path(__file__).parent / "fixtures" / "torch_decay.npz")
NAMES = ("w1", "b1", "w2", "b2")


def _mlp(sess_graph_dtype=tf.float64):
    params = [v1.get_variable(n, initializer=FIXTURE[f"problem_{n}"]) for n in NAMES]
    w1, b1, w2, b2 = params
    x, y = FIXTURE["problem_x"], FIXTURE["problem_y"]
    loss = tf.reduce_mean(tf.square(tf.matmul(tf.tanh(tf.matmul(x, w1) + b1), w2) + b2 - y))
    return params, loss


def _f64(value):
    """TF1 optimizers turn Python floats into float32 tensors (0.9 -> 0.89999998)
    before casting to the variable dtype; float64 tensors keep full precision."""
    return tf.constant(value, tf.float64)


def _schedule():
    step = v1.train.get_or_create_global_step()
    lr = v1.train.exponential_decay(_f64(float(FIXTURE["lr0"])), step, 1, _f64(0.9), staircase=True)
    return step, lr


def _assert_trajectory(sess, train_op, params, kind):
    sess.run(v1.global_variables_initializer())
    for step in range(int(FIXTURE["steps"])):
        sess.run(train_op)
        for name, value in zip(NAMES, sess.run(params)):
            expected = FIXTURE[f"{kind}_{name}"][step]
            np.testing.assert_allclose(
                value, expected, rtol=1e-6, atol=1e-12, err_msg=f"{kind} {name} step {step}"
            )


def test_adamw_preset_matches_torch_adamw(sess):
    params, loss = _mlp()
    step, lr = _schedule()
    optimizer, transforms = tf1norm.adamw(
        lr,
        float(FIXTURE["weight_decay"]),
        beta1=_f64(0.9),
        beta2=_f64(0.999),
        epsilon=_f64(float(FIXTURE["eps"])),
    )
    train_op = tf1norm.create_train_op(loss, optimizer, global_step=step, transforms=transforms)
    _assert_trajectory(sess, train_op, params, "adamw")


def test_sgd_momentum_with_decoupled_decay_matches_torch(sess):
    params, loss = _mlp()
    step, lr = _schedule()
    train_op = tf1norm.create_train_op(
        loss,
        v1.train.MomentumOptimizer(lr, _f64(0.9)),
        global_step=step,
        transforms=[tf1norm.add_decoupled_weight_decay(float(FIXTURE["weight_decay"]))],
    )
    _assert_trajectory(sess, train_op, params, "sgdw")


def test_decay_differs_from_l2_in_the_loss_with_adam(sess):
    """The trajectories really test decoupling: Adam + L2 lands elsewhere."""
    params, loss = _mlp()
    step, lr = _schedule()
    l2 = sum(0.5 * float(FIXTURE["weight_decay"]) * tf.reduce_sum(tf.square(p)) for p in params)
    train_op = tf1norm.create_train_op(
        loss + l2, v1.train.AdamOptimizer(lr, epsilon=float(FIXTURE["eps"])), global_step=step
    )
    sess.run(v1.global_variables_initializer())
    for _ in range(int(FIXTURE["steps"])):
        sess.run(train_op)
    gap = np.abs(sess.run(params[0]) - FIXTURE["adamw_w1"][-1]).max()
    assert gap > 1e-3


def _gd_one_step(transform, regularizer=None):
    w0 = np.array([[1.0, -2.0], [0.5, 4.0]])
    w = v1.get_variable("layer/kernel", initializer=w0, regularizer=regularizer)
    b = v1.get_variable("layer/bias", initializer=np.array([1.0, 1.0]))
    loss = tf.reduce_sum(w) + tf.reduce_sum(b)  # gradients are all ones
    train_op = tf1norm.create_train_op(
        loss, v1.train.GradientDescentOptimizer(0.1), transforms=[transform]
    )
    return w0, w, b, train_op


def test_unscaled_decay_is_the_contrib_adamw_rule(sess):
    w0, w, b, train_op = _gd_one_step(
        tf1norm.add_decoupled_weight_decay(0.2, scale_by_learning_rate=False, exclude=["bias"])
    )
    run_initialized(sess, train_op)
    np.testing.assert_allclose(sess.run(w), w0 - 0.1 - 0.2 * w0)  # θ - lr·g - λ·θ_old
    np.testing.assert_allclose(sess.run(b), [0.9, 0.9])  # excluded: not decayed


def test_decay_var_list_limits_the_decay(sess):
    w0, w, b, _ = _gd_one_step(tf1norm.clip_by_value(-5, 5))
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(w) + tf.reduce_sum(b),
        v1.train.GradientDescentOptimizer(0.1),
        transforms=[tf1norm.add_decoupled_weight_decay(0.5, decay_var_list=[b])],
        name="t2",
        global_step=None,
    )
    run_initialized(sess, train_op)
    np.testing.assert_allclose(sess.run(w), w0 - 0.1)
    np.testing.assert_allclose(sess.run(b), [1 - 0.1 - 0.1 * 0.5 * 1.0] * 2)


def test_add_l2_to_gradients_equals_l2_in_the_loss(sess):
    w0 = np.array([[1.0, -2.0], [0.5, 4.0]])
    w = v1.get_variable("w", initializer=w0)
    train_op = tf1norm.create_train_op(
        tf.reduce_sum(w),
        v1.train.MomentumOptimizer(0.1, 0.9),
        transforms=[tf1norm.add_l2_to_gradients({w: 0.3})],
    )
    run_initialized(sess, train_op)
    np.testing.assert_allclose(sess.run(w), w0 - 0.1 * (1 + 0.3 * w0))


def test_sgd_decay_step_with_l1(sess):
    w0, w, b, train_op = _gd_one_step(
        tf1norm.sgd_decay_step(learning_rate=0.5), regularizer=tf1norm.l1_regularizer(0.2)
    )
    run_initialized(sess, train_op)
    np.testing.assert_allclose(sess.run(w), w0 - 0.1 - 0.5 * 0.2 * np.sign(w0))
    np.testing.assert_allclose(sess.run(b), [0.9, 0.9])  # no penalty on b


def test_learning_rate_is_found_through_wrappers(graph):
    inner = v1.train.MomentumOptimizer(0.25, 0.9)
    wrapped = v1.train.SyncReplicasOptimizer(inner, replicas_to_aggregate=1)
    rate = tf1norm.training.transforms.optimizer_learning_rate(wrapped)
    assert tf.get_static_value(rate) == pytest.approx(0.25)
    assert tf.get_static_value(
        tf1norm.training.transforms.optimizer_learning_rate(v1.train.AdamOptimizer(0.125))
    ) == pytest.approx(0.125)


def test_adamw_unpacked_into_global_step_names_the_fix(graph):
    """`create_train_op(loss, *adamw())` puts the transforms list in `global_step`."""
    _, loss = _mlp()
    with pytest.raises(TypeError, match=r"`global_step`.*got \[.*pass them as `transforms=`"):
        tf1norm.create_train_op(loss, *tf1norm.adamw(1e-3, 1e-2))
    optimizer, transforms = tf1norm.adamw(1e-3, 1e-2)
    tf1norm.create_train_op(loss, optimizer, transforms=transforms)  # the documented call


def test_non_transform_global_step_gets_no_transforms_hint(graph):
    _, loss = _mlp()
    with pytest.raises(TypeError, match="`global_step` must be") as info:
        tf1norm.create_train_op(loss, v1.train.AdamOptimizer(1e-3), [1, 2])
    assert "transforms=" not in str(info.value)
