"""The TF2 routes under ``tf.distribute.MirroredStrategy`` (2 logical CPUs) equal one device.

TensorFlow splits a CPU into logical devices only before its first op, so
every case runs in one child process (``distributed_runs.py``), started once
for this module; each test reads its case's figures.
"""

import json
import os
import subprocess
import sys

import pytest

RUNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_runs.py")
TIMEOUT_S = 900
# float32 round-off after 10 steps of an MLP: single-device vs 2 replicas
# differ only in the order of the gradient sums (measured ≤ 1.2e-7).
EQUAL_ATOL = 2e-6


@pytest.fixture(scope="module")
def results():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, RUNS], capture_output=True, text=True, timeout=TIMEOUT_S, env=env
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    assert lines, f"distributed_runs.py printed no results:\n{done.stderr[-4000:]}"
    return json.loads(lines[-1][len("RESULTS ") :])


def _case(results, name):
    case = results[name]
    assert "error" not in case, f"{case.get('error')}\n{case.get('traceback', '')}"
    return case


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras", "v1"])
def test_custom_loop_equals_one_device(results, flavour):
    """make_train_step in strategy.run: clipping sees the summed gradient, as on one device."""
    case = _case(results, f"custom_loop_{flavour}")
    assert case["max_abs_diff"] <= EQUAL_ATOL
    assert case["replica_spread"] == 0.0  # every replica holds the same weights and u
    assert case["max_unit_norm"] <= 1.0 + 1e-6
    assert case["global_step"] == case["reference_global_step"] == 10
    assert any(name.endswith("sn_u:0") for name in case["names"])  # u is compared too


def test_shim_layer_with_max_norm_builds_in_strategy_scope(results):
    assert _case(results, "shim_built_in_scope")["variables"] == 7


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras"])
def test_fit_equals_one_device(results, flavour):
    """attach_transforms + model.fit with Keras MaxNorm kernels, clipping and decoupled decay."""
    case = _case(results, f"fit_{flavour}")
    assert case["max_abs_diff"] <= EQUAL_ATOL
    assert case["replica_spread"] == 0.0
    assert case["global_step"] == case["reference_global_step"] == 10
    assert len(case["norms_per_step"]) == 10
    assert max(case["norms_per_step"]) <= 1.0 + 1e-6  # on every replica, after every step
    # the projection is the step's last write: the first step (norms ~4 before) ends at 1
    assert case["norms_per_step"][0] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras", "v1"])
def test_skipped_custom_step_changes_nothing(results, flavour):
    """A NaN in one replica's half: every replica skips; weights, u, slots, counter unchanged."""
    case = _case(results, f"skip_custom_loop_{flavour}")
    assert case["changed_by_nan_step"] == 0.0
    assert case["skipped_steps"] == 1
    assert case["global_step"] == 2  # the finite steps before and after
    assert case["changed_by_next_step"] > 0.0


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras"])
def test_skipped_fit_step_changes_nothing(results, flavour):
    """model.fit with batch norm: moving statistics are restored on every replica too."""
    case = _case(results, f"skip_fit_{flavour}")
    assert case["changed_by_nan_step"] == 0.0
    assert case["global_step"] == 1


@pytest.mark.parametrize("flavour", ["keras3", "v1"])
def test_shim_max_norm_holds_in_a_plain_optimizer_loop(results, flavour):
    """optimizer.apply_gradients in strategy.run, no tf1norm step: every replica projects."""
    norms = _case(results, f"plain_loop_{flavour}")["norms_per_step"]
    assert len(norms) == 10
    assert max(norms) <= 1.0 + 1e-6
    assert norms[0] == pytest.approx(1.0, abs=1e-6)  # ~4 before the first step
