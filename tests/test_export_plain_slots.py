"""export_plain_checkpoint leaves out the optimizer slots of reparameterized kernels.

A slot such as ``<kernel>/Momentum`` of a weight-normalized ``v`` or of a
spectrally normalized ``W`` holds the optimizer state of the raw variable, not
of the plain kernel ``g·v/‖v‖`` or ``W/σ`` the export writes: a plain model
that restored it would resume its optimizer from a meaningless state. Slots of
the other variables (a plain layer's kernel, every bias) stay in the export.
"""

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

REPARAMETERIZED = ("wn/hidden1/kernel", "sn/hidden2/kernel")
OPTIMIZERS = {
    "Momentum": lambda: v1.train.MomentumOptimizer(0.1, 0.9),
    "Adam": lambda: v1.train.AdamOptimizer(0.01),
}


def _model(x, partitioner=None):
    layers = tf1norm.require_v1_layers()
    getter = tf1norm.weight_norm_getter()
    with v1.variable_scope("wn", custom_getter=getter, partitioner=partitioner):
        h = layers.dense(x, 8, tf.nn.relu, name="hidden1")
    with v1.variable_scope("sn", custom_getter=tf1norm.spectral_norm_getter()):
        h = layers.dense(h, 6, tf.nn.relu, name="hidden2")
    return layers.dense(h, 3, name="output")


def _train_and_export(path, optimizer, partitioner=None):
    """Two steps, then export; ``(checkpoint names, the model's output)``."""
    x = np.random.default_rng(2).normal(size=(5, 10)).astype(np.float32)
    with tf.Graph().as_default(), v1.Session() as sess:
        out = _model(tf.constant(x), partitioner)
        train_op = tf1norm.create_train_op(tf.reduce_mean(tf.square(out)), optimizer())
        sess.run(v1.global_variables_initializer())
        for _ in range(2):
            sess.run(train_op)
        tf1norm.export_plain_checkpoint(sess, path)
        return dict(tf.train.list_variables(path))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_no_slot_of_a_reparameterized_kernel_is_exported(tmp_path, name):
    names = _train_and_export(str(tmp_path / "plain"), OPTIMIZERS[name])
    leaked = [n for n in names if any(n.startswith(k + "/") for k in REPARAMETERIZED)]
    assert not leaked, f"slots or extras of reparameterized kernels exported: {leaked}"
    for kernel in REPARAMETERIZED:
        assert kernel in names  # the plain kernel itself is there
    assert f"output/kernel/{name}" in names  # a plain layer's slot stays
    assert f"wn/hidden1/bias/{name}" in names  # and so do the biases'


def test_partitioned_kernel_is_kept_and_its_slots_dropped(tmp_path):
    names = _train_and_export(
        str(tmp_path / "plain"), OPTIMIZERS["Adam"], v1.fixed_size_partitioner(2)
    )
    assert names["wn/hidden1/kernel"] == [10, 8]  # the parts, written as one kernel
    assert not [n for n in names if n.startswith("wn/hidden1/kernel/")]
    assert "output/kernel/Adam_1" in names and "beta1_power" in names
