"""Exclusive updates and reads for ``cluster_worker.py``: one mutex on ps task 0.

``ExclusiveUpdate`` (the last transform of the worker's chain) holds the mutex
from after the gradients until the max-norm projection is done;
``read_exclusively`` reads variables under the same mutex, so a reader never
sees an update before its projection. Imported only in task processes (it
imports TensorFlow).
"""

import tf1norm  # before TensorFlow
import tensorflow as tf  # after tf1norm

v1 = tf.compat.v1


def updates_mutex():
    """The mutex every update and every read of this example shares (on ps task 0)."""
    with v1.device("/job:ps/task:0"):
        return tf.raw_ops.MutexV2(shared_name="local_cluster_updates")


class ExclusiveUpdate(tf1norm.Transform):
    """Hold ``mutex`` from after the gradients until after the previous post stages.

    Put it last in the chain, after ``project_constraints``: a read under the
    same mutex then never sees an update before its projection. The lock
    waits for the gradients so that it is not held during the backward pass
    or, with ``SyncReplicasOptimizer``, while the aggregation waits for the
    other workers (the workers' reads would then wait for their own next
    gradients: a deadlock).
    """

    post_apply_per_variable = False

    def __init__(self, mutex):
        self.mutex = mutex

    def pre_apply(self, grads_and_vars, context):
        grads = [getattr(g, "values", g) for g, _ in grads_and_vars if g is not None]
        with tf.control_dependencies(grads), v1.device(self.mutex.device):
            lock = tf.raw_ops.MutexLock(mutex=self.mutex)
        context.state[self] = lock
        with tf.control_dependencies([lock.op]):  # the update reads gradients made after it
            return [(None if g is None else tf.identity(g), v) for g, v in grads_and_vars]

    def post_apply(self, variables, context):
        lock = context.state[self]
        with v1.device(lock.device):
            return [tf.raw_ops.ConsumeMutexLock(mutex_lock=lock)]


def read_exclusively(mutex, variables):
    """``(values, done)``: reads of ``variables`` under ``mutex``; fetch ``done`` with them.

    ``done`` releases the lock after the reads (an unfetched lock would be
    released as soon as it was taken).
    """
    with v1.device(mutex.device):
        lock = tf.raw_ops.MutexLock(mutex=mutex)
    with tf.control_dependencies([lock]):
        values = [v.read_value() for v in variables]
    with tf.control_dependencies(values), v1.device(lock.device):
        done = tf.raw_ops.ConsumeMutexLock(mutex_lock=lock)
    return values, done
