"""check_train_op findings, ConstraintHook, and a parameter-server cluster."""

import numpy as np
import pytest

import tf1norm
from tf1norm import keys
from tf1norm._src.compat import tf, v1

import numpy_twins as twins


def _model():
    w = v1.get_variable(
        "w",
        initializer=np.full((3, 2), 2.0, np.float32),
        regularizer=tf1norm.max_norm_regularizer(1.0),
    )
    return w, -tf.reduce_sum(w)


def test_clean_train_op_has_no_findings(graph):
    _, loss = _model()
    v1.add_to_collection(
        keys.UPDATE_OPS, v1.get_variable("bn", initializer=0.0, trainable=False).assign_add(1.0).op
    )
    for i, chain in enumerate([[], [tf1norm.skip_nonfinite()]]):
        train_op = tf1norm.create_train_op(
            loss,
            v1.train.MomentumOptimizer(0.1, 0.9),
            transforms=chain,
            name=f"train{i}",
            global_step=None,
        )
        assert tf1norm.check_train_op(train_op) == []


def test_grouping_prebuilt_clip_ops_is_reported(graph):
    _, loss = _model()
    minimize = v1.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf.control_dependencies([minimize]):
        train_op = tf.group(*v1.get_collection(keys.MAX_NORM))  # the seed-002 "fix" users try
    (finding,) = tf1norm.check_train_op(train_op)
    assert finding.kind == "before update" and finding.subject == "w"
    assert "create_train_op" in finding.message


def test_clip_op_that_never_runs_is_reported(graph):
    _, loss = _model()
    v1.add_to_collection(
        keys.UPDATE_OPS, v1.get_variable("bn", initializer=0.0, trainable=False).assign_add(1.0).op
    )
    train_op = v1.train.GradientDescentOptimizer(0.1).minimize(loss)
    kinds = sorted((f.kind, f.subject) for f in tf1norm.check_train_op(train_op))
    assert kinds == [("never runs", "AssignAddVariableOp"), ("never runs", "w")]


def test_update_op_after_gradients_is_reported(graph):
    w, loss = _model()
    update = v1.get_variable("bn", initializer=0.0, trainable=False).assign_add(1.0).op
    v1.add_to_collection(keys.UPDATE_OPS, update)
    step = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(0.1), update_ops=[])
    train_op = tf.group(step, update)
    assert [f.kind for f in tf1norm.check_train_op(train_op)] == ["after gradients"]


def test_constraint_hook_projects_after_every_step(graph):
    w, loss = _model()
    train_op = v1.train.GradientDescentOptimizer(0.1).minimize(
        loss, global_step=v1.train.get_or_create_global_step()
    )
    with v1.train.MonitoredTrainingSession(
        hooks=[tf1norm.ConstraintHook()], save_checkpoint_secs=None, save_summaries_steps=None
    ) as sess:
        for _ in range(3):
            sess.run(train_op)
            np.testing.assert_allclose(twins.norms(sess.run(w)), 1.0, rtol=1e-6)


def test_constraint_hook_refuses_an_empty_collection(graph):
    v1.train.get_or_create_global_step()
    with pytest.raises(ValueError, match="collection 'max_norm' is empty"):
        with v1.train.MonitoredTrainingSession(hooks=[tf1norm.ConstraintHook()]):
            pass


@pytest.mark.slow
def test_parameter_server_cluster_with_replica_device_setter(graph):
    """Variables on a ps task, the step on a worker, over loopback, unchanged API."""
    import portpicker_free_ports as ports

    cluster = tf.train.ClusterSpec(
        {"ps": [f"localhost:{ports.pick()}"], "worker": [f"localhost:{ports.pick()}"]}
    )
    servers = [tf.distribute.Server(cluster, job, 0, start=True) for job in ("ps", "worker")]
    with v1.device(v1.train.replica_device_setter(cluster=cluster)):
        w, loss = _model()
        step = v1.train.get_or_create_global_step()
        train_op = tf1norm.create_train_op(
            loss,
            v1.train.MomentumOptimizer(0.1, 0.9),
            global_step=step,
            transforms=[tf1norm.add_decoupled_weight_decay(0.1)],
        )
    assert w.device.endswith("/job:ps/task:0")
    with v1.train.MonitoredTrainingSession(
        master=servers[1].target,
        is_chief=True,
        save_checkpoint_secs=None,
        save_summaries_steps=None,
    ) as sess:
        sess.run(train_op)
        value, global_step = sess.run([w, step])
    expected = twins.max_norm(np.full((3, 2), 2.0) + 0.1 - 0.1 * 0.1 * 2.0, 1.0)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    assert global_step == 1


def test_sync_replicas_runs_the_chain_on_the_aggregated_update(graph):
    w, loss = _model()
    step = v1.train.get_or_create_global_step()
    sync = v1.train.SyncReplicasOptimizer(
        v1.train.GradientDescentOptimizer(0.1), replicas_to_aggregate=1, total_num_replicas=1
    )
    clip = tf1norm.clip_by_global_norm(0.5)
    train_op = tf1norm.create_train_op(
        loss, sync, global_step=step, transforms=[clip, tf1norm.add_decoupled_weight_decay(0.1)]
    )
    assert sync._opt.__class__.__name__ == "GradientDescentOptimizer"  # restored
    with v1.train.MonitoredTrainingSession(
        hooks=[sync.make_session_run_hook(is_chief=True)],
        save_checkpoint_secs=None,
        save_summaries_steps=None,
        stop_grace_period_secs=1,
    ) as sess:
        sess.run(train_op)
        value, global_step = sess.run([w, step])
    g = np.full((3, 2), -1.0) * 0.5 / np.sqrt(6.0)  # clipped to global norm 0.5
    expected = twins.max_norm(np.full((3, 2), 2.0) - 0.1 * g - 0.1 * 0.1 * 2.0, 1.0)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    assert global_step == 1


def test_sync_replicas_needs_a_global_step(graph):
    _, loss = _model()
    sync = v1.train.SyncReplicasOptimizer(v1.train.GradientDescentOptimizer(0.1), 1)
    with pytest.raises(ValueError, match="SyncReplicasOptimizer needs a global step"):
        tf1norm.create_train_op(loss, sync, global_step=None)


def test_spectral_norm_collection_mode_is_understood(graph):
    getter = tf1norm.spectral_norm_getter(update="collection")
    with v1.variable_scope("d", custom_getter=getter):
        w = v1.get_variable("kernel", [3, 2], regularizer=tf1norm.max_norm_regularizer(1.0))
    loss = tf.reduce_sum(tf.matmul(tf.ones([1, 3]), w))
    train_op = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(0.1))
    assert tf1norm.check_train_op(train_op) == []
    # The refresh of u is checked too: a plain minimize never runs it.
    plain = v1.train.GradientDescentOptimizer(0.1).minimize(loss)
    subjects = sorted(f.subject for f in tf1norm.check_train_op(plain))
    assert subjects == ["d/kernel", "d/kernel/sn_u"]


def test_collections_given_as_a_string_are_refused(graph):
    _, loss = _model()
    train_op = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(0.1))
    with pytest.raises(TypeError, match=r"got the string 'max_norm'. Pass \['max_norm'\]"):
        tf1norm.check_train_op(train_op, collections_to_check="max_norm")
