"""``make_train_step`` under MultiWorkerMirroredStrategy: 2 worker processes on 127.0.0.1.

The cluster is started once for the module (free ports, every process
bounded by a timeout); each worker trains the issue-22 MLP on its half of
each global batch (``distributed_cluster.multi_worker``). The one-device run
with the same global batches is computed in this process.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import distributed_cluster  # noqa: E402
import distributed_runs  # noqa: E402
import portpicker_free_ports as free_ports  # noqa: E402

TIMEOUT_S = 600


@pytest.fixture(scope="module")
def workers():
    ports = [str(free_ports.pick()), str(free_ports.pick())]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    processes = [
        subprocess.Popen(
            [sys.executable, distributed_cluster.__file__, "--worker", str(index)] + ports,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for index in range(2)
    ]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=TIMEOUT_S))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    results = []
    for stdout, stderr in outputs:
        lines = [line for line in stdout.splitlines() if line.startswith("RESULTS ")]
        assert lines, f"a worker printed no results:\n{stderr[-4000:]}"
        results.append(json.loads(lines[-1][len("RESULTS ") :]))
    return results


def test_workers_equal_one_device(workers):
    reference = distributed_cluster.reference_values()
    for worker in workers:
        assert len(worker["values"]) == len(reference) == 7  # u included
        for value, expected in zip(worker["values"], reference):
            np.testing.assert_allclose(np.asarray(value), expected, rtol=0, atol=2e-6)
    for a, b in zip(workers[0]["values"], workers[1]["values"]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # workers in sync


def test_max_norm_holds_on_every_worker(workers):
    for worker in workers:
        for index in (1, 3):  # h1/weights, h2/weights
            norms = np.linalg.norm(np.asarray(worker["values"][index]), axis=0)
            assert norms.max() <= distributed_runs.MAX_NORM + 1e-6


def test_nan_in_one_worker_skips_the_step_on_both(workers):
    for worker in workers:
        assert worker["changed_by_nan_step"] == 0.0
        assert worker["skipped_steps"] == 1
        assert worker["global_step"] == distributed_runs.STEPS


def test_tf_keras_fit_equals_one_device(workers):
    """attach_transforms + tf-keras model.fit on the same cluster (each worker its half)."""
    reference = distributed_cluster.fit_reference_values()
    for worker in workers:
        assert worker["fit_global_step"] == distributed_runs.STEPS
        assert max(worker["fit_norms_per_step"]) <= distributed_runs.MAX_NORM + 1e-6
        assert len(worker["fit_values"]) == len(reference)
        for value, expected in zip(worker["fit_values"], reference):
            np.testing.assert_allclose(np.asarray(value), expected, rtol=0, atol=2e-6)


def test_keras3_fit_canary(workers):
    """Keras 3's own ``fit`` (no tf1norm) fails under MultiWorkerMirroredStrategy: its
    train function receives the distributed batch (a PerReplica) as a tensor. When this
    test fails, Keras 3 trains there: test attach_transforms on that route and update
    docs/distributed.md."""
    for worker in workers:
        canary = worker["keras3_canary"]
        assert "error" in canary, "Keras 3 fit now trains under MWMS: test the tf1norm route"
        assert "PerReplica" in canary["error"] and "to a Tensor" in canary["error"]
