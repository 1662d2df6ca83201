"""bounds.verify: proved / falsified / unknown verdicts, counterexamples re-run."""

import importlib

import numpy as np
import pytest

import reference_nets
from tf1norm import bounds
from tf1norm.bounds.network import Activation, Add, Dense, Network

verify_module = importlib.import_module("tf1norm.bounds.verdict")


@pytest.fixture(scope="module")
def small():
    """The 10-20-20-3 reference net, its box centre and the class it predicts there."""
    net, lower, upper = reference_nets.network(reference_nets.CASES[0])
    center = (lower + upper) / 2
    return net, center, int(np.argmax(net(center[None])[0]))


def test_small_box_is_proved_with_the_alpha_crown_margins(small):
    net, center, label = small
    spec = bounds.top_class_spec(3, label)
    verdict = bounds.verify(net, center - 0.01, center + 0.01, spec, threshold=0.1)
    assert verdict.status == "proved" and verdict.counterexample is None
    low, _ = bounds.output_bounds(net, center - 0.01, center + 0.01, "alpha-crown", spec=spec)
    np.testing.assert_allclose(verdict.margins, low - 0.1)
    assert np.all(verdict.margins > 0)


def test_large_box_is_falsified_by_a_rerun_counterexample(small):
    net, center, label = small
    spec = bounds.top_class_spec(3, label)
    verdict = bounds.verify(net, center - 0.5, center + 0.5, spec)
    assert verdict.status == "falsified" and verdict.method == "attack"
    x = verdict.counterexample
    assert np.all(x >= center - 0.5) and np.all(x <= center + 0.5)
    y = net(x[None])[0]
    np.testing.assert_allclose(verdict.counterexample_margins, spec @ y)
    assert np.min(spec @ y) <= 0  # some other class reaches class `label` there


@pytest.fixture(scope="module")
def tiny():
    """A 2-12-12-1 ReLU net on [-1, 1]², where alpha-CROWN's lower bound is 2 below the truth."""
    rng = np.random.default_rng(0)
    sizes = (2, 12, 12, 1)
    net = bounds.Network.from_numpy(
        [rng.standard_normal((a, b)) for a, b in zip(sizes, sizes[1:])],
        [rng.standard_normal(b) * 0.5 for b in sizes[1:]],
    )
    lower, upper = -np.ones(2), np.ones(2)
    return net, lower, upper, bounds.output_bounds(net, lower, upper, "exact")[0][0]


def test_exact_step_proves_what_bounds_and_attack_leave_open(tiny):
    net, lower, upper, true_low = tiny
    spec = np.eye(1)
    loose = bounds.output_bounds(net, lower, upper, "alpha-crown", spec=spec)[0][0]
    assert loose < true_low - 0.05  # the bound alone cannot decide the threshold below
    threshold = true_low - 0.01
    open_verdict = bounds.verify(net, lower, upper, spec, threshold=threshold)
    assert open_verdict.status == "unknown"
    closed = bounds.verify(net, lower, upper, spec, threshold=threshold, time_limit=60)
    assert closed.status == "proved" and closed.method == "exact"
    np.testing.assert_allclose(closed.margins, [0.01], atol=1e-5)


def test_exact_step_falsifies_with_a_witness_when_the_attack_is_too_weak(tiny):
    net, lower, upper, true_low = tiny
    spec = np.eye(1)
    verdict = bounds.verify(
        net, lower, upper, spec, threshold=true_low + 1e-3, attack=False, time_limit=60
    )
    assert verdict.status == "falsified" and verdict.method == "exact"
    assert net(verdict.counterexample[None])[0][0] <= true_low + 1e-3


def test_time_limit_is_skipped_for_activations_the_exact_method_cannot_encode(rng):
    net = Network(
        [
            Dense(rng.standard_normal((2, 8)) * 2),
            Activation("tanh"),
            Dense(rng.standard_normal((8, 1))),
        ]
    )
    lower, upper = -np.ones(2), np.ones(2)
    inner, _ = bounds.output_bounds(net, lower, upper, "sample", samples=20000)
    bound, _ = bounds.output_bounds(net, lower, upper, "alpha-crown")
    assert inner[0] - bound[0] > 0.1  # a threshold in between is true but not provable
    verdict = bounds.verify(
        net, lower, upper, np.eye(1), threshold=(inner[0] + bound[0]) / 2, time_limit=5
    )
    assert verdict.status == "unknown" and verdict.method == "alpha-crown"
    assert verdict.counterexample is None


def test_margins_and_gradients_match_finite_differences(rng):
    net = Network(
        [
            Dense(rng.standard_normal((4, 6))),
            Activation("tanh"),
            Dense(rng.standard_normal((6, 4))),
            Add(-1),
            Activation("leaky_relu"),
            Dense(rng.standard_normal((4, 3))),
        ]
    )
    x, coefficients = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    values, grads = verify_module.margins_and_gradients(net, x, coefficients, np.zeros(5))
    np.testing.assert_allclose(values, np.sum(net(x) * coefficients, axis=1))
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-7
        moved, _ = verify_module.margins_and_gradients(net, x + step, coefficients, np.zeros(5))
        np.testing.assert_allclose((moved - values) / 1e-7, grads[:, i], atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"threshold": [0.0, 1.0, 2.0]}, "threshold"),
        ({"threshold": np.nan}, "threshold"),
        ({"method": "sample"}, "sound bound method"),
        ({"spec": np.ones((1, 4))}, r"\[k, 3\]"),
    ],
)
def test_verify_rejects_bad_arguments(small, kwargs, message):
    net, center, label = small
    arguments = {"spec": bounds.top_class_spec(3, label)}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        bounds.verify(net, center - 0.1, center + 0.1, **arguments)


@pytest.fixture(scope="module")
def npz_model(tmp_path_factory):
    kernels, biases, lower, upper = reference_nets.weights_and_box(reference_nets.CASES[0])
    path = tmp_path_factory.mktemp("verify") / "net.npz"
    np.savez(
        path,
        **{f"kernel_{i}": k for i, k in enumerate(kernels)},
        **{f"bias_{i}": b for i, b in enumerate(biases)},
        activations=np.array(["relu", "relu", "linear"]),
    )
    return str(path), (lower + upper) / 2


def _box_flags(center, radius):
    return (
        ["--lower"]
        + [str(v - radius) for v in center]
        + ["--upper"]
        + [str(v + radius) for v in center]
    )


@pytest.mark.parametrize("radius,label,status", [(0.01, 1, 0), (0.01, 0, 3), (0.01, 7, 2)])
def test_cli_verify_exit_status_encodes_the_verdict(npz_model, capsys, radius, label, status):
    from tf1norm.cli import app as cli

    path, center = npz_model
    code = cli.main(["verify", path, *_box_flags(center, radius), "--top-class", str(label)])
    assert code == status
    printed = capsys.readouterr().out
    assert {0: "proved", 3: "falsified", 2: ""}[status] in printed
    if status == 3:
        assert "counterexample x:" in printed


def test_cli_verify_reads_a_csv_spec_and_threshold(npz_model, tmp_path, capsys):
    from tf1norm.cli import app as cli

    path, center = npz_model
    np.savetxt(tmp_path / "spec.csv", [[1.0, -1.0, 0.0]], delimiter=",")
    argv = ["verify", path, *_box_flags(center, 1.0), "--spec", str(tmp_path / "spec.csv")]
    assert cli.main(argv + ["--threshold", "-100"]) == 0
    assert cli.main(argv + ["--threshold", "100"]) == 3
