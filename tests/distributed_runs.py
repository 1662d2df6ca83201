"""Training runs under ``tf.distribute.MirroredStrategy`` and on one device.

A program run by ``test_distribute.py``; its model, chain and runs are also
used by the cluster programs (``distributed_cluster.py``).

Run as a program (``python tests/distributed_runs.py``): it splits the CPU
into two logical devices, which TensorFlow allows only before its first op,
so it runs in its own process. Every case runs the same model on the same
global batches on one device and on two replicas and prints one JSON object
``{case: {"error": ..., figures...}}``; a case that raises reports its error
and the others still run.

The model is the issue-22 MLP 64-32-16-10 on sklearn digits, written as TF1
model code in a ``track_tf1_style_variables`` layer: ``slim_scope(max_norm=1.0)``
on the hidden layers, ``spectral_norm_getter`` on the output kernel, trained
with ``clip_by_global_norm`` and decoupled decay.
"""

import json
import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import tf1norm  # noqa: E402  (before TensorFlow)
from tf1norm._src.compat import tf, v1  # noqa: E402

GLOBAL_BATCH, STEPS, MAX_NORM, LR = 64, 10, 1.0, 0.1


def _split_cpu():
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


_STRATEGY = []


def _mirrored():
    """One MirroredStrategy for the process: two strategies over the same devices reuse
    collective instance keys, and the runtime keeps the first one's shapes."""
    if not _STRATEGY:
        _STRATEGY.append(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    return _STRATEGY[0]


def _digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data[: GLOBAL_BATCH * STEPS] / 16.0).astype(np.float32)
    return x, data.target[: GLOBAL_BATCH * STEPS].astype(np.int32)


class Net(tf.keras.layers.Layer):
    """The MLP as TF1 model code run by the TF2 shim."""

    @v1.keras.utils.track_tf1_style_variables
    def call(self, x):
        import tf_slim as slim

        with tf1norm.slim_scope(max_norm=MAX_NORM):
            h = slim.fully_connected(x, 32, scope="h1")
            h = slim.fully_connected(h, 16, scope="h2")
        with v1.variable_scope("out", custom_getter=tf1norm.spectral_norm_getter()):
            return v1.layers.dense(h, 10, name="dense")


def _initialise(variables):
    """The same starting values in every run (norms well above the max-norm)."""
    for seed, variable in enumerate(variables):
        value = np.random.default_rng(seed).normal(0.0, 0.5, variable.shape)
        variable.assign(value.astype(np.float32))


def _optimizer(flavour):
    import keras

    return {
        "keras3": lambda: keras.optimizers.SGD(LR, momentum=0.9),
        "tf_keras": lambda: tf.keras.optimizers.SGD(LR, momentum=0.9),
        "v1": lambda: v1.train.MomentumOptimizer(LR, 0.9),
    }[flavour]()


def _chain(extra=()):
    return [
        tf1norm.clip_by_global_norm(1.0),
        tf1norm.add_decoupled_weight_decay(1e-2, scale_by_learning_rate=False),
    ] + list(extra)


def _loss(net, x, y):
    logits = net(x)
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    return tf.reduce_sum(per_example) / GLOBAL_BATCH


def _trainer(strategy, flavour, extra=()):
    """The shim net, its ``make_train_step`` and a ``tf.function`` running it in
    ``strategy.run``."""
    with strategy.scope():
        net = Net()
        net(tf.zeros([1, 64]))
        _initialise(net.variables)
        step = tf1norm.make_train_step(_optimizer(flavour), _chain(extra))

    @tf.function
    def train(x, y):
        return strategy.run(
            lambda x, y: step(
                lambda: _loss(net, x, y),
                lambda: net.trainable_variables,
                lambda: net.non_trainable_variables,
            ),
            args=(x, y),
        )

    return net, step, train


def custom_loop(strategy, flavour, batches, extra=()):
    """``make_train_step`` in ``strategy.run``; returns the net and the step."""
    net, step, train = _trainer(strategy, flavour, extra)
    dataset = tf.data.Dataset.from_tensor_slices(batches).batch(GLOBAL_BATCH)
    for x, y in strategy.experimental_distribute_dataset(dataset):
        train(x, y)
    return net, step


def _replica_values(strategy, variable):
    return [np.asarray(v.numpy()) for v in strategy.experimental_local_results(variable)]


def _variables(layer):
    return layer.weights if hasattr(layer, "layers") else layer.variables


def _constrained(variable):
    return getattr(variable, "constraint", None) is not None


def _figures(strategy, net, reference, step, reference_step):
    """Largest differences to the one-device run, replica spread, largest unit norm."""
    diff, spread, norms = 0.0, 0.0, 0.0
    for mine, theirs in zip(_variables(net), _variables(reference)):
        values = _replica_values(strategy, mine)
        spread = max(spread, max(float(np.max(np.abs(v - values[0]))) for v in values))
        diff = max(diff, float(np.max(np.abs(values[0] - theirs.numpy()))))
        if mine.name.startswith(("h1/weights", "h2/weights")) or _constrained(mine):
            norms = max(norms, max(float(np.max(np.linalg.norm(v, axis=0))) for v in values))
    return {
        "max_abs_diff": diff,
        "replica_spread": spread,
        "max_unit_norm": norms,
        "global_step": int(step.global_step.numpy()),
        "reference_global_step": int(reference_step.global_step.numpy()),
        "names": [v.name for v in _variables(net)],
    }


def case_custom_loop(flavour):
    batches = _digits()
    mirrored = _mirrored()
    reference, reference_step = custom_loop(tf.distribute.get_strategy(), flavour, batches)
    net, step = custom_loop(mirrored, flavour, batches)
    return _figures(mirrored, net, reference, step, reference_step)


def _keras(flavour):
    import keras

    return keras if flavour == "keras3" else tf.keras


def _unit_norms(strategy, model):
    """The largest column norm of the constrained kernels, over every replica."""
    kernels = [layer.kernel for layer in model.layers[:2]]
    return max(
        float(np.max(np.linalg.norm(np.asarray(v), axis=0)))
        for k in kernels
        for v in strategy.experimental_local_results(k)
    )


def fit_model(strategy, flavour, attach=True, extra=()):
    """The compiled Keras model (MaxNorm kernels) under ``strategy``, the chain attached
    unless ``attach`` is False; ``(model, current step or None)``."""
    k = _keras(flavour)
    with strategy.scope():
        dense = [
            k.layers.Dense(
                32, activation="relu", kernel_constraint=k.constraints.MaxNorm(MAX_NORM)
            ),
            k.layers.Dense(
                16, activation="relu", kernel_constraint=k.constraints.MaxNorm(MAX_NORM)
            ),
            k.layers.Dense(10),
        ]
        model = k.Sequential([k.Input((64,))] + dense)
        _initialise(model.weights)
        model.compile(
            optimizer=_optimizer(flavour),
            loss=k.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    return model, tf1norm.attach_transforms(model, _chain(extra)) if attach else None


def fit(strategy, flavour, batches, extra=()):
    """``attach_transforms`` + ``model.fit``: Keras MaxNorm kernels, the chain, one epoch."""
    k = _keras(flavour)
    model, current = fit_model(strategy, flavour, extra=extra)
    norms = []
    record = k.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: norms.append(_unit_norms(strategy, model))
    )
    if isinstance(batches, tf.data.Dataset):  # batched already (multi-worker)
        model.fit(batches, epochs=1, verbose=0, callbacks=[record])
    else:
        model.fit(
            *batches,
            batch_size=GLOBAL_BATCH,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[record],
        )
    return model, current(), norms


def case_fit(flavour):
    batches = _digits()
    mirrored = _mirrored()
    reference, reference_step, reference_norms = fit(tf.distribute.get_strategy(), flavour, batches)
    model, step, norms = fit(mirrored, flavour, batches)
    figures = _figures(mirrored, model, reference, step, reference_step)
    figures.update(norms_per_step=norms, reference_norms_per_step=reference_norms)
    return figures


def _all_values(strategy, variables):
    """Every replica's value of every variable, as NumPy."""
    return [
        np.asarray(v)
        for variable in variables
        for v in strategy.experimental_local_results(variable)
    ]


def _largest_change(before, after):
    return max(
        float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
        for a, b in zip(before, after)
    )


def case_skip_custom_loop(flavour):
    """A NaN global batch under MirroredStrategy: nothing of the step stays."""
    strategy = _mirrored()
    x, y = _digits()
    skip = tf1norm.skip_nonfinite()
    net, step, train = _trainer(strategy, flavour, [skip])

    def run(x, y):
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
        for batch in strategy.experimental_distribute_dataset(dataset):
            train(*batch)

    def state():
        return _all_values(strategy, list(net.variables) + list(step._written([])))

    run(x[:GLOBAL_BATCH], y[:GLOBAL_BATCH])
    before = state()
    poisoned = x[:GLOBAL_BATCH].copy()
    poisoned[3, 5] = np.nan  # one example of one replica's half
    run(poisoned, y[:GLOBAL_BATCH])
    after = state()
    run(x[GLOBAL_BATCH : 2 * GLOBAL_BATCH], y[GLOBAL_BATCH : 2 * GLOBAL_BATCH])
    return {
        "changed_by_nan_step": _largest_change(before, after),
        "skipped_steps": int(skip.skipped_steps.numpy()),
        "global_step": int(step.global_step.numpy()),
        "changed_by_next_step": _largest_change(after, state()),
        "values_compared": len(before),
    }


def case_skip_fit(flavour):
    """A NaN batch through ``model.fit`` under MirroredStrategy, with batch norm."""
    strategy = _mirrored()
    k = _keras(flavour)
    with strategy.scope():
        model = k.Sequential(
            [k.Input((64,)), k.layers.Dense(16), k.layers.BatchNormalization(), k.layers.Dense(10)]
        )
        model.compile(
            optimizer=_optimizer(flavour),
            loss=k.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    current = tf1norm.attach_transforms(model, _chain([tf1norm.skip_nonfinite()]))
    x, y = _digits()
    model.fit(x[:GLOBAL_BATCH], y[:GLOBAL_BATCH], batch_size=GLOBAL_BATCH, verbose=0)
    step = current()
    before = _all_values(strategy, list(model.weights) + step._written([]))
    poisoned = x[:GLOBAL_BATCH].copy()
    poisoned[40, 7] = np.inf
    model.fit(poisoned, y[:GLOBAL_BATCH], batch_size=GLOBAL_BATCH, verbose=0)
    after = _all_values(strategy, list(model.weights) + step._written([]))
    return {
        "changed_by_nan_step": _largest_change(before, after),
        "global_step": int(step.global_step.numpy()),
        "values_compared": len(before),
    }


def case_plain_loop(flavour):
    """No tf1norm step: the optimizer applies the shim's max-norm as the kernels' constraint."""
    strategy = _mirrored()
    x, y = _digits()
    with strategy.scope():
        net = Net()
        net(tf.zeros([1, 64]))
        _initialise(net.variables)
        optimizer = _optimizer(flavour)
        if hasattr(optimizer, "build"):  # Keras 3 builds lazily in a cond, which fails here
            optimizer.build(net.trainable_variables)

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            loss = _loss(net, x, y)
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))

    train = tf.function(lambda x, y: strategy.run(replica_step, args=(x, y)))
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    norms = []
    for batch in strategy.experimental_distribute_dataset(dataset):
        train(*batch)
        kernels = [v for v in net.variables if v.name.startswith(("h1/weights", "h2/weights"))]
        norms.append(
            max(
                float(np.max(np.linalg.norm(value, axis=0)))
                for value in _all_values(strategy, kernels)
            )
        )
    return {"norms_per_step": norms}


def case_shim_built_in_scope():
    """Building a max-norm shim layer in cross-replica context (issue 22's ValueError)."""
    with _mirrored().scope():
        net = Net()
        net(tf.zeros([2, 64]))
    return {"variables": len(net.variables)}


CASES = {
    "custom_loop_keras3": lambda: case_custom_loop("keras3"),
    "custom_loop_tf_keras": lambda: case_custom_loop("tf_keras"),
    "custom_loop_v1": lambda: case_custom_loop("v1"),
    "fit_keras3": lambda: case_fit("keras3"),
    "fit_tf_keras": lambda: case_fit("tf_keras"),
    "skip_custom_loop_keras3": lambda: case_skip_custom_loop("keras3"),
    "skip_custom_loop_tf_keras": lambda: case_skip_custom_loop("tf_keras"),
    "skip_custom_loop_v1": lambda: case_skip_custom_loop("v1"),
    "skip_fit_keras3": lambda: case_skip_fit("keras3"),
    "skip_fit_tf_keras": lambda: case_skip_fit("tf_keras"),
    "plain_loop_keras3": lambda: case_plain_loop("keras3"),
    "plain_loop_v1": lambda: case_plain_loop("v1"),
    "shim_built_in_scope": case_shim_built_in_scope,
}


def main(names):
    _split_cpu()
    results = {}
    for name in names or CASES:
        try:
            results[name] = CASES[name]()
        except Exception as error:  # noqa: BLE001  (reported to the test, which fails)
            results[name] = {
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc()[-3000:],
            }
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
