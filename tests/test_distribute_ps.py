"""``make_train_step`` under ParameterServerStrategy + ClusterCoordinator (1 ps, 2 workers).

The cluster (a chief, one ps and two worker processes on 127.0.0.1, free
ports, every process bounded by a timeout) is started once for the module;
the chief schedules the issue-22 MLP's steps one at a time
(``distributed_cluster.ps_chief``). The one-device run is computed here.
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


def _start(args, env):
    return subprocess.Popen(
        [sys.executable, distributed_cluster.__file__] + args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture(scope="module")
def chief():
    ports = [str(free_ports.pick()) for _ in range(4)]  # chief, ps, worker, worker
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    servers = [
        _start(["--ps-server", job, str(index)] + ports, env)
        for job, index in (("ps", 0), ("worker", 0), ("worker", 1))
    ]
    try:
        process = _start(["--ps-chief"] + ports, env)
        try:
            stdout, stderr = process.communicate(timeout=TIMEOUT_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    finally:
        for server in servers:  # they serve until killed
            server.kill()
            server.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("RESULTS ")]
    assert lines, f"the chief printed no results:\n{stderr[-4000:]}"
    return json.loads(lines[-1][len("RESULTS ") :])


def test_ps_training_equals_one_device(chief):
    reference = distributed_cluster.reference_values()
    assert len(chief["values"]) == len(reference) == 7  # u included
    for value, expected in zip(chief["values"], reference):
        np.testing.assert_allclose(np.asarray(value), expected, rtol=0, atol=2e-6)
    for index in (1, 3):  # h1/weights, h2/weights
        norms = np.linalg.norm(np.asarray(chief["values"][index]), axis=0)
        assert norms.max() <= distributed_runs.MAX_NORM + 1e-6


def test_nan_step_changes_nothing_on_the_ps(chief):
    assert chief["changed_by_nan_step"] == 0.0
    assert chief["skipped_steps"] == 1
    assert chief["global_step"] == distributed_runs.STEPS


def test_tf_keras_fit_equals_one_device(chief):
    """attach_transforms + tf-keras model.fit, steps scheduled by the coordinator."""
    assert "error" not in chief, f"{chief.get('error')}\n{chief.get('traceback', '')}"
    reference = distributed_cluster.ps_fit_reference_values()
    assert chief["fit_global_step"] == distributed_runs.STEPS
    norms = chief["fit_norms_per_step"]
    assert len(norms) == distributed_runs.STEPS
    assert max(norms) <= distributed_runs.MAX_NORM + 1e-6  # after every step
    assert norms[0] == pytest.approx(distributed_runs.MAX_NORM, abs=1e-6)  # ~4 before it
    assert len(chief["fit_values"]) == len(reference) == 6
    for value, expected in zip(chief["fit_values"], reference):
        np.testing.assert_allclose(np.asarray(value), expected, rtol=0, atol=2e-6)


def test_keras3_fit_canary(chief):
    """Keras 3's own ``fit`` (no tf1norm) cannot train under ParameterServerStrategy: it
    iterates the dataset itself, with no ClusterCoordinator. When this test fails, Keras 3
    trains there: test attach_transforms on that route and update docs/distributed.md."""
    canary = chief["keras3_canary"]
    assert "error" in canary, "Keras 3 fit now trains under PS: test the tf1norm route"
    assert "ClusterCoordinator.create_per_worker_dataset" in canary["error"]
