"""The cluster programs: MultiWorkerMirroredStrategy workers, and a ParameterServerStrategy
chief with its ps and worker servers, all on 127.0.0.1.

Started as processes by ``test_distribute_multiworker.py`` and
``test_distribute_ps.py``:

    python tests/distributed_cluster.py --worker INDEX PORT PORT
    python tests/distributed_cluster.py --ps-server JOB INDEX CHIEF_PORT PS_PORT W0_PORT W1_PORT
    python tests/distributed_cluster.py --ps-chief CHIEF_PORT PS_PORT W0_PORT W1_PORT

Each program prints one line ``RESULTS {json}`` (a server serves until killed).
The model, chain and one-device runs are ``distributed_runs``'s; the
one-device references (``reference_values``, ``fit_reference_values``) run in
the test's own process.
"""

import json
import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import tf1norm  # noqa: E402  (before TensorFlow)
from tf1norm._src.compat import tf  # noqa: E402
from distributed_runs import (  # noqa: E402
    GLOBAL_BATCH,
    STEPS,
    _digits,
    _largest_change,
    _trainer,
    _unit_norms,
    custom_loop,
    fit,
    fit_model,
)


def multi_worker(index, ports):
    """One worker of a MultiWorkerMirroredStrategy cluster on 127.0.0.1 (one CPU each).

    Trains the custom loop (Keras 3 optimizer, the chain and ``skip_nonfinite``)
    for ``STEPS`` global batches, the worker taking its half of each, then one
    global batch with a NaN in worker 1's half. Returns every variable's values
    after the finite steps, and what the NaN step changed.
    """
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    x, y = _digits()
    skip = tf1norm.skip_nonfinite()
    net, step, train = _trainer(strategy, "keras3", [skip])

    half = GLOBAL_BATCH // 2
    for s in range(STEPS):
        rows = slice(s * GLOBAL_BATCH + index * half, s * GLOBAL_BATCH + (index + 1) * half)
        train(tf.constant(x[rows]), tf.constant(y[rows]))
    trained = [np.asarray(v.numpy()) for v in net.variables]
    poisoned = x[:half].copy()
    if index == 1:
        poisoned[0, 0] = np.nan
    train(tf.constant(poisoned), tf.constant(y[:half]))
    result = {
        "values": [v.tolist() for v in trained],
        "changed_by_nan_step": _largest_change(trained, [v.numpy() for v in net.variables]),
        "skipped_steps": int(skip.skipped_steps.numpy()),
        "global_step": int(step.global_step.numpy()),
    }
    dataset = tf.data.Dataset.from_tensor_slices(_digits()).batch(GLOBAL_BATCH)
    model, fit_step, norms = fit(strategy, "tf_keras", dataset)
    result.update(
        fit_values=[np.asarray(v.numpy()).tolist() for v in model.weights],
        fit_norms_per_step=norms,
        fit_global_step=int(fit_step.global_step.numpy()),
    )
    result["keras3_canary"] = _reported(keras3_fit_without_tf1norm, strategy, dataset.repeat())
    return result


def fit_reference_values():
    """The one-device tf-keras ``fit`` run ``multi_worker`` is compared with
    (Keras 3's own ``fit`` fails under MultiWorkerMirroredStrategy here, before tf1norm runs)."""
    model, _, _ = fit(tf.distribute.get_strategy(), "tf_keras", _digits())
    return [np.asarray(v.numpy()) for v in model.weights]


def _cluster(ports):
    """ClusterSpec of a parameter-server cluster: chief, one ps, two workers on 127.0.0.1."""
    names = ("chief", "ps", "worker", "worker")
    spec = {}
    for name, port in zip(names, ports):
        spec.setdefault(name, []).append(f"127.0.0.1:{port}")
    return tf.train.ClusterSpec(spec)


def ps_server(job, index, ports):
    """A ps or worker server of ``_cluster(ports)``; serves until killed."""
    server = tf.distribute.Server(
        _cluster(ports), job_name=job, task_index=index, protocol="grpc", start=True
    )
    server.join()


def ps_chief(ports):
    """ParameterServerStrategy + ClusterCoordinator: the custom loop, one step at a time."""
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        _cluster(ports), task_type="chief", task_id=0, rpc_layer="grpc"
    )
    strategy = tf.distribute.ParameterServerStrategy(resolver)
    coordinator = tf.distribute.experimental.coordinator.ClusterCoordinator(strategy)
    x, y = _digits()
    skip = tf1norm.skip_nonfinite()
    net, step, train = _trainer(strategy, "keras3", [skip])
    for s in range(STEPS):
        rows = slice(s * GLOBAL_BATCH, (s + 1) * GLOBAL_BATCH)
        coordinator.schedule(train, args=(tf.constant(x[rows]), tf.constant(y[rows])))
        coordinator.join()  # sequential steps: comparable with one device
    trained = [np.asarray(v.numpy()) for v in net.variables]
    poisoned = x[:GLOBAL_BATCH].copy()
    poisoned[0, 0] = np.nan
    coordinator.schedule(train, args=(tf.constant(poisoned), tf.constant(y[:GLOBAL_BATCH])))
    coordinator.join()
    result = {
        "values": [v.tolist() for v in trained],
        "changed_by_nan_step": _largest_change(trained, [v.numpy() for v in net.variables]),
        "skipped_steps": int(skip.skipped_steps.numpy()),
        "global_step": int(step.global_step.numpy()),
    }
    result.update(_reported(ps_fit, strategy))
    result["keras3_canary"] = _reported(keras3_fit_without_tf1norm, strategy, _repeated_batch())
    return result


def keras3_fit_without_tf1norm(strategy, dataset):
    """Keras 3's own ``fit`` (MaxNorm kernels, SGD, no tf1norm) under ``strategy``: the canary.

    Returns ``{"keras3_fit": "trained"}``, or the error Keras 3 raises.
    """
    model, _ = fit_model(strategy, "keras3", attach=False)
    model.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0)
    return {"keras3_fit": "trained"}


def _reported(case, *args):
    """``case(*args)``, or ``{"error": ..., "traceback": ...}``: one case failing
    leaves the others' results."""
    try:
        return case(*args)
    except Exception as error:  # noqa: BLE001  (reported to the test, which fails)
        return {
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc()[-3000:],
        }


def _repeated_batch():
    x, y = _digits()
    return tf.data.Dataset.from_tensors((x[:GLOBAL_BATCH], y[:GLOBAL_BATCH])).repeat()


def ps_fit(strategy):
    """tf-keras ``model.fit`` + ``attach_transforms`` under ParameterServerStrategy.

    Keras schedules the steps on the workers through the strategy's coordinator
    and joins it at the end of each epoch: one step per epoch makes the steps
    sequential, and one repeated global batch makes them independent of which
    worker runs which step, so the run is comparable with one device.
    """
    model, current = fit_model(strategy, "tf_keras")
    norms = []
    record = tf.keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: norms.append(_unit_norms(strategy, model))
    )
    creator = tf.keras.utils.experimental.DatasetCreator(lambda context: _repeated_batch())
    model.fit(creator, epochs=STEPS, steps_per_epoch=1, verbose=0, callbacks=[record])
    return {
        "fit_values": [np.asarray(v.numpy()).tolist() for v in model.weights],
        "fit_norms_per_step": norms,
        "fit_global_step": int(current().global_step.numpy()),
    }


def ps_fit_reference_values():
    """``ps_fit``'s one-device run: the same global batch, ``STEPS`` steps."""
    x, y = _digits()
    repeated = (np.tile(x[:GLOBAL_BATCH], (STEPS, 1)), np.tile(y[:GLOBAL_BATCH], STEPS))
    model, _, _ = fit(tf.distribute.get_strategy(), "tf_keras", repeated)
    return [np.asarray(v.numpy()) for v in model.weights]


def reference_values():
    """The one-device run ``multi_worker`` is compared with (run it in any process)."""
    net, _ = custom_loop(tf.distribute.get_strategy(), "keras3", _digits(), [])
    return [np.asarray(v.numpy()) for v in net.variables]


def main(args):
    if args[:1] == ["--ps-server"]:
        return ps_server(args[1], int(args[2]), [int(p) for p in args[3:]])
    if args[:1] == ["--ps-chief"]:
        result = ps_chief([int(p) for p in args[1:]])
    elif args[:1] == ["--worker"]:
        result = multi_worker(int(args[1]), [int(p) for p in args[2:]])
    else:
        raise SystemExit(__doc__)
    print("RESULTS " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
