"""Worker task of ``local_cluster.py``: the model, the train op, a loop that survives restarts.

Imported only in task processes (it imports TensorFlow).

The graph. Variables live on the ps tasks (``replica_device_setter``); one
train op per step, built by ``tf1norm.create_train_op`` with the chain
``add_decoupled_weight_decay → project_constraints(max_norm) → ExclusiveUpdate``.
``ExclusiveUpdate`` holds a mutex on ps task 0 from after the gradients are
ready (with ``SyncReplicasOptimizer``: aggregated) until the max-norm
projection is done, and every read this module makes (the per-step norms, the
chief's final snapshot) takes the same mutex. In asynchronous training a plain
read can land between another worker's update and its projection and see a
unit above the threshold (a few reads in a thousand here): that is how
parameter-server training works, not a tf1norm bug, and the mutex is how a
reader that must never see half a step gets consistent values. The
``Saver`` takes no mutex, so a checkpoint can hold such a half step; the
first update after a restore projects every kernel again. A worker killed
during its update leaves one too: the ps aborts the dead worker's step,
which releases the mutex after some of its writes and before their
projection, and the next update (any worker's) projects every kernel again.

The loop. ``train`` keeps one ``MonitoredTrainingSession`` while it works
(it recovers from a ps restart by itself); when an error ends it (a session
that was not ready in time, an error TensorFlow does not retry) it builds a
new graph and a new session, a bounded number of times and within
``--timeout`` seconds. The chief's new session restores the last
checkpoint; the other workers wait for the chief. With ``--events FILE``
each worker appends one JSON line per event, which the fault test reads:
``session`` (global step the new session starts from; for the chief also
``restored_from``, the step in the name of the checkpoint it restored),
``step`` (global step and largest unit norm of each max-norm kernel, read
under the mutex after the step), ``checkpoint`` (chief: one was written),
``error`` and ``snapshot`` (chief: the final model was written).
"""

import collections
import json
import os
import threading
import time
import warnings

import numpy as np

import tf1norm  # before TensorFlow
import data
from local_cluster import SNAPSHOT  # the launcher, TensorFlow-free
from exclusive_update import ExclusiveUpdate, read_exclusively, updates_mutex
import tensorflow as tf  # after tf1norm

v1 = tf.compat.v1

warnings.filterwarnings("ignore", message=r".*is deprecated", category=UserWarning)
tf.get_logger().setLevel("ERROR")  # deprecation notices of the v1 training API

SAVE_EVERY = 10  # steps between checkpoints
MAX_SESSIONS = 200  # sessions one worker process builds before it gives up
RETRY_SECS = 0.5  # pause before building a new session after an error
RECOVERABLE = (tf.errors.OpError, RuntimeError)

Model = collections.namedtuple(
    "Model", "x y loss train_op optimizer global_step norms read_done snapshot snapshot_done"
)


# ---- the graph ----------------------------------------------------------------------------


def build_model(cluster, args, n_features, n_classes=10):
    """The MLP, its train op and the exclusive reads, variables on the ps tasks."""
    with v1.device(v1.train.replica_device_setter(cluster=cluster)):
        x = v1.placeholder(tf.float32, (None, n_features), name="x")
        y = v1.placeholder(tf.int64, (None,), name="y")
        logits = mlp(x, n_classes, tf1norm.max_norm_regularizer(args.threshold))
        loss = v1.losses.sparse_softmax_cross_entropy(y, logits)
        global_step = v1.train.get_or_create_global_step()
        optimizer = make_optimizer(len(cluster.job_tasks("worker")), args.sync)
        mutex = updates_mutex()
        chain = [
            tf1norm.add_decoupled_weight_decay(1e-2),
            tf1norm.project_constraints(tf1norm.keys.MAX_NORM),
            ExclusiveUpdate(mutex),
        ]
        train_op = tf1norm.create_train_op(
            loss, optimizer, global_step=global_step, transforms=chain
        )
        mark_readiness_op_used(optimizer)
    records = tf1norm.registry.group_partitions(
        tf1norm.registry.get_projections(tf1norm.keys.MAX_NORM)
    )
    parts = [v for record in records for v in record.variables]
    (step, *part_values), read_done = read_exclusively(mutex, [global_step] + parts)
    kernel_values = whole_kernels(records, part_values)
    snapshot, snapshot_done = read_exclusively(mutex, [global_step] + v1.trainable_variables())
    names = [v.op.name for v in [global_step] + v1.trainable_variables()]
    return Model(
        x,
        y,
        loss,
        train_op,
        optimizer,
        step,
        largest_unit_norms(kernel_values),
        read_done,
        dict(zip(names, snapshot)),
        snapshot_done,
    )


def mlp(x, n_classes, regularizer):
    """64-32-32-10 ReLU network; the hidden kernels carry the max-norm regularizer.

    ``hidden1``'s kernel is split in two along its input axis
    (``fixed_size_partitioner(2)``, as large tables on parameter servers are):
    each unit's norm spans both parts, and the train op projects them together.
    """
    layers = tf1norm.require_v1_layers()
    he_init = v1.variance_scaling_initializer(scale=2.0)
    for name in ("hidden1", "hidden2"):
        partitioner = v1.fixed_size_partitioner(2) if name == "hidden1" else None
        with (
            v1.variable_scope(v1.get_variable_scope(), partitioner=partitioner),
            warnings.catch_warnings(),
        ):
            warnings.filterwarnings("ignore", message=".*one partition of a partitioned")
            x = layers.dense(
                x,
                32,
                tf.nn.relu,
                kernel_initializer=he_init,
                kernel_regularizer=regularizer,
                name=name,
            )
    return layers.dense(x, n_classes, name="output")


def whole_kernels(records, part_values):
    """Each max-norm record's kernel value, its partitions concatenated."""
    kernels, start = [], 0
    for record in records:
        pieces = part_values[start : start + len(record.variables)]
        start += len(pieces)
        kernels.append(
            pieces[0] if len(pieces) == 1 else tf.concat(pieces, getattr(record, "axis", 0))
        )
    return kernels


def make_optimizer(n_workers, sync):
    """Momentum; with ``sync``, aggregated over every worker by ``SyncReplicasOptimizer``."""
    optimizer = v1.train.MomentumOptimizer(0.02, momentum=0.9)
    if sync:
        optimizer = v1.train.SyncReplicasOptimizer(
            optimizer, replicas_to_aggregate=n_workers, total_num_replicas=n_workers
        )
    return optimizer


def mark_readiness_op_used(optimizer):
    """Keep TensorFlow from logging "Object was never used" for a sync readiness op.

    ``SyncReplicasOptimizer.apply_gradients`` builds ``ready_for_local_init_op``
    for its session hook; a graph whose session never started (a worker that
    tried before the chief was ready) logs an ERROR when it is collected.
    """
    getattr(getattr(optimizer, "ready_for_local_init_op", None), "mark_used", lambda: None)()


def largest_unit_norms(kernels):
    """One number per kernel: its largest per-unit (column) L2 norm."""
    return tf.stack([tf.reduce_max(tf.norm(k, axis=0)) for k in kernels])


# ---- events and hooks ---------------------------------------------------------------------


class EventLog:
    """Prints progress (steps every 50); with ``--events FILE`` appends every event as JSON."""

    def __init__(self, args):
        self.task, self.path, self.last_print = int(args.task), args.events, -1

    def __call__(self, event, **fields):
        if self.path:
            with open(self.path, "a") as out:
                record = dict(fields, event=event, pid=os.getpid(), time=round(time.time(), 3))
                out.write(json.dumps(record) + "\n")
        if event == "checkpoint":
            return  # in the file only: one every SAVE_EVERY steps
        step = fields.get("step", 0)
        if event != "step" or step // 50 > self.last_print // 50:
            retrying = " (building a new session)" if event == "error" else ""
            print(f"worker {self.task}: {event} {fields}{retrying}", flush=True)
            self.last_print = step


class SessionLog(v1.train.SessionRunHook):
    """Logs the global step each new session starts from (after the chief's restore).

    With ``checkpoint_dir`` (the chief) it also logs ``restored_from``: the
    step in the name of the newest checkpoint, the one just restored. It can
    be smaller than the restored global step: the saver names a checkpoint
    after the step it read just before it read the variables, and in
    asynchronous training another worker can finish a step in between.
    """

    def __init__(self, global_step, log, checkpoint_dir=None):
        self.global_step, self.log, self.checkpoint_dir = global_step, log, checkpoint_dir

    def after_create_session(self, session, coord):
        del coord
        fields = {"step": int(session.run(self.global_step))}
        if self.checkpoint_dir:
            newest = v1.train.latest_checkpoint(self.checkpoint_dir)
            fields["restored_from"] = int(newest.rsplit("-", 1)[1]) if newest else None
        self.log("session", **fields)


class CheckpointLog(v1.train.CheckpointSaverListener):
    """Logs the global step of every checkpoint the chief writes."""

    def __init__(self, log):
        self.log = log

    def after_save(self, session, global_step_value):
        del session
        self.log("checkpoint", step=int(global_step_value))


def quiet_queue_runner_shutdown():
    """Drop the ``CancelledError`` that ends SyncReplicasOptimizer's queue runner thread.

    When the chief's session closes, the thread's pending dequeue is
    cancelled: TensorFlow's normal shutdown, printed as a traceback otherwise.
    """
    default = threading.excepthook

    def hook(exc):
        if not (
            exc.exc_type is tf.errors.CancelledError
            and exc.thread.name.startswith("QueueRunnerThread")
        ):
            default(exc)

    threading.excepthook = hook


# ---- the session loop -------------------------------------------------------------------


def endless_batches(dataset, seed, batch_size=32):
    """Shuffled training batches, epoch after epoch."""
    rng = np.random.default_rng(seed)
    while True:
        yield from data.batches(dataset.x_train, dataset.y_train, batch_size, rng)


def train(server, cluster, args):
    """Train until the global step reaches ``args.steps``, rebuilding failed sessions.

    Raises:
      RuntimeError: no session finished the training within ``MAX_SESSIONS``
        attempts and ``args.timeout`` seconds.
    """
    dataset, task, log = data.load(), int(args.task), EventLog(args)
    quiet_queue_runner_shutdown()
    batches = endless_batches(dataset, seed=task)
    deadline = time.monotonic() + args.timeout
    for _ in range(MAX_SESSIONS):
        if time.monotonic() > deadline:
            break
        try:
            return train_in_new_graph(server, cluster, args, dataset, batches, log)
        except RECOVERABLE as error:
            log("error", kind=type(error).__name__, message=short_message(error))
            time.sleep(RETRY_SECS)
    raise RuntimeError(
        f"worker {task}: training did not reach step {args.steps} within "
        f"{MAX_SESSIONS} sessions and {args.timeout:g} s; see the errors above"
    )


def train_in_new_graph(server, cluster, args, dataset, batches, log):
    """Build the graph afresh, then train in one session.

    A fresh graph per session: ``SyncReplicasOptimizer``'s chief hook adds
    ops when a session starts, which a finalized graph refuses.
    """
    with tf.Graph().as_default():
        model = build_model(cluster, args, dataset.x_train.shape[1])
        run_session(server, model, args, batches, log)


def short_message(error):
    """The message lines of an error, without TensorFlow's traceback of the node."""
    lines = [line for line in str(error).splitlines() if line and not line.startswith(" ")]
    return " ".join(lines)[-300:]


def session_hooks(model, args, log):
    """Stop at ``args.steps``, log sessions; the chief also saves and logs checkpoints.

    The saver hook comes after ``SessionLog``, so a new session is logged
    before the checkpoint the saver writes when a session starts.
    """
    is_chief = int(args.task) == 0
    hooks = [
        v1.train.StopAtStepHook(last_step=args.steps),
        SessionLog(model.global_step, log, args.logdir if is_chief else None),
    ]
    if args.sync:
        hooks.append(model.optimizer.make_session_run_hook(is_chief=is_chief))
    if is_chief:
        hooks.append(
            v1.train.CheckpointSaverHook(
                args.logdir, save_steps=SAVE_EVERY, listeners=[CheckpointLog(log)]
            )
        )
    return hooks


def run_session(server, model, args, batches, log):
    """One ``MonitoredTrainingSession`` until the last step; the chief then writes a snapshot."""
    task = int(args.task)
    config = v1.ConfigProto(device_filters=["/job:ps", f"/job:worker/task:{task}"])
    with v1.train.MonitoredTrainingSession(
        master=server.target,
        is_chief=task == 0,
        checkpoint_dir=args.logdir,
        hooks=session_hooks(model, args, log),
        config=config,
        save_checkpoint_steps=None,
        save_checkpoint_secs=None,
        save_summaries_steps=None,
        save_summaries_secs=None,
        log_step_count_steps=None,
        max_wait_secs=5,
        stop_grace_period_secs=2,
    ) as sess:
        while not sess.should_stop():
            x, y = next(batches)
            _, loss = sess.run([model.train_op, model.loss], {model.x: x, model.y: y})
            if not sess.should_stop():  # no run may follow a stop request, but a step fn
                step, norms, _ = sess.run([model.global_step, model.norms, model.read_done])
                log("step", step=int(step), loss=round(float(loss), 4), norms=norms.tolist())
        if task == 0:
            sess.run_step_fn(lambda step_context: save_snapshot(step_context, model, args, log))


def save_snapshot(context, model, args, log):
    """Write every trained variable and the global step, read under the mutex, as ``.npz``."""
    values, _ = context.session.run([model.snapshot, model.snapshot_done])
    path = os.path.join(args.logdir, SNAPSHOT)
    with open(path + ".tmp", "wb") as out:
        np.savez(out, **values)
    os.replace(path + ".tmp", path)  # a reader never sees half a file
    log("snapshot", step=int(values["global_step"]), path=path)
