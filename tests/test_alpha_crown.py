"""CROWN on the Linear interface, full alpha-CROWN, spec matrices, auto_LiRPA references."""

import importlib
import json
import pathlib

import numpy as np
import pytest

import reference_nets
from tf1norm import bounds
from tf1norm.bounds.network import Activation, Add, Dense, Network

alpha_module = importlib.import_module("tf1norm.bounds.alpha_crown")
crown_module = importlib.import_module("tf1norm.bounds.crown")
FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "auto_lirpa_bounds.json"
SOUND = ("interval", "crown", "alpha-crown")


@pytest.fixture(scope="module")
def recorded():
    with open(FIXTURE) as handle:
        return {case["name"]: case for case in json.load(handle)["cases"]}


def _mlp(rng, activation, sizes=(3, 8, 8, 2)):
    weights = [rng.standard_normal((a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(b) * 0.5 for b in sizes[1:]]
    return Network.from_numpy(weights, biases, [activation] * (len(sizes) - 2) + ["linear"])


def _residual(rng, activation="relu"):
    """Two residual branches: one from a hidden layer, one from the network input."""
    return Network(
        [
            Dense(rng.standard_normal((4, 8))),
            Activation("relu"),
            Dense(rng.standard_normal((8, 8)) * 0.5),
            Add(1),
            Activation(activation),
            Dense(rng.standard_normal((8, 4))),
            Add(-1),
            Activation("relu"),
            Dense(rng.standard_normal((4, 3))),
        ]
    )


def _conv_residual(rng):
    """Convolutions (never dense matrices) with a residual branch, then a dense head."""
    first = bounds.Conv2D(
        rng.standard_normal((3, 3, 1, 2)), (3, 3, 1), rng.standard_normal(2), padding="SAME"
    )
    second = bounds.Conv2D(rng.standard_normal((3, 3, 2, 2)) * 0.5, (3, 3, 2), padding="SAME")
    return Network(
        [
            first,
            Activation("relu"),
            second,
            Add(1),
            Activation("relu"),
            Dense(rng.standard_normal((18, 2))),
        ]
    )


def _nets(rng):
    nets = [_mlp(rng, kind) for kind in ("relu", "leaky_relu", "sigmoid", "tanh")]
    return nets + [_residual(rng), _residual(rng, "leaky_relu"), _conv_residual(rng)]


def _samples(net, rng, lower, upper, count=20000):
    return net(lower + (upper - lower) * rng.random((count, lower.size)))


@pytest.mark.parametrize("index", range(7))
def test_every_sound_method_contains_sampled_outputs_with_and_without_spec(rng, index):
    net = _nets(rng)[index]
    lower, upper = -np.ones(net.input_size), np.ones(net.input_size)
    y = _samples(net, rng, lower, upper)
    spec = rng.standard_normal((4, net.output_size))
    for method in SOUND:
        for matrix, values in ((None, y), (spec, y @ spec.T)):
            low, high = bounds.output_bounds(net, lower, upper, method, spec=matrix)
            assert np.all(values >= low - 1e-9) and np.all(values <= high + 1e-9), method


@pytest.mark.parametrize("index", range(7))
def test_alpha_crown_is_never_looser_than_crown_and_tighter_overall(rng, index):
    net = _nets(rng)[index]
    lower, upper = -np.ones(net.input_size), np.ones(net.input_size)
    spec = bounds.top_class_spec(net.output_size, 0)
    for matrix in (None, spec):
        c_low, c_high = bounds.output_bounds(net, lower, upper, "crown", spec=matrix)
        a_low, a_high = bounds.output_bounds(net, lower, upper, "alpha-crown", spec=matrix)
        assert np.all(a_low >= c_low - 1e-12) and np.all(a_high <= c_high + 1e-12)
    relu_like = any(getattr(layer, "kind", "") in ("relu", "leaky_relu") for layer in net.layers)
    if relu_like:
        assert np.sum(a_high - a_low) < np.sum(c_high - c_low) - 1e-6


@pytest.mark.parametrize("method", ["crown", "alpha-crown"])
def test_spec_bounds_are_tighter_than_post_hoc_products(rng, method):
    net = _mlp(rng, "relu", (4, 16, 16, 5))
    lower, upper = -np.ones(4), np.ones(4)
    spec = bounds.top_class_spec(5, 2)
    low, high = bounds.output_bounds(net, lower, upper, method, spec=spec)
    post_low, post_high = bounds.apply_spec(spec, *bounds.output_bounds(net, lower, upper, method))
    assert np.all(low >= post_low - 1e-9) and np.all(high <= post_high + 1e-9)
    assert np.mean(high - low) < 0.9 * np.mean(post_high - post_low)


def test_crown_through_add_layers_is_exact_on_a_linear_residual_network(rng):
    w1, w2 = rng.standard_normal((3, 3)), rng.standard_normal((3, 2))
    net = Network([Dense(w1), Add(-1), Dense(w2), Activation("linear")])
    folded = (w1 + np.eye(3)) @ w2
    lower, upper = -np.ones(3), np.array([1.0, 2.0, 0.5])
    low, high = bounds.output_bounds(net, lower, upper, "crown")
    center, radius = (upper + lower) / 2, (upper - lower) / 2
    np.testing.assert_allclose(low, center @ folded - radius @ np.abs(folded), atol=1e-12)
    np.testing.assert_allclose(high, center @ folded + radius @ np.abs(folded), atol=1e-12)


def test_slope_gradients_match_finite_differences(rng):
    net = _residual(rng, "leaky_relu")
    lower, upper = -np.ones(4), np.ones(4)
    pre = crown_module.pre_activation_bounds(net, lower, upper)
    relaxed = crown_module.relax(net, pre)
    index, start = len(net.layers) - 1, rng.standard_normal((6, 3))
    slopes = {
        k: np.clip(
            rng.random((6, len(relaxed[k][0]))),
            *alpha_module._slope_box(net.layers[k], relaxed[k], *pre[k]),
        )
        for k in pre
    }
    record = {}
    value = crown_module.backsubstitute(net, start, index, relaxed, lower, upper, slopes, record)
    grads = alpha_module.slope_gradients(net, index, relaxed, slopes, record, lower, upper)
    checked = 0
    for k, (l, u) in pre.items():
        for j in np.flatnonzero((l < 0) & (u > 0))[:3]:
            moved = {q: s.copy() for q, s in slopes.items()}
            moved[k][:, j] += 1e-7
            bumped = crown_module.backsubstitute(net, start, index, relaxed, lower, upper, moved)
            np.testing.assert_allclose((bumped - value) / 1e-7, grads[k][:, j], atol=1e-5)
            checked += 1
    assert checked >= 3


def test_optimized_pre_activation_bounds_are_sound_and_tighter_than_crown(rng):
    net, lower, upper = reference_nets.network(reference_nets.CASES[4])
    optimized = bounds.optimized_pre_activation_bounds(net, lower, upper, steps=10)
    crown_pre = crown_module.pre_activation_bounds(net, lower, upper)
    x = lower + (upper - lower) * rng.random((5000, lower.size))
    for k, (l, u) in optimized.items():
        z = Network(net.layers[:k])(x)
        assert np.all(z >= l - 1e-9) and np.all(z <= u + 1e-9)
        assert np.all(l >= crown_pre[k][0] - 1e-12) and np.all(u <= crown_pre[k][1] + 1e-12)
    last = max(optimized)
    assert np.sum(optimized[last][1] - optimized[last][0]) < 0.9 * np.sum(
        crown_pre[last][1] - crown_pre[last][0]
    )


@pytest.mark.parametrize(
    "options,message",
    [
        ({"steps": -1}, "steps"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"decay": 1.5}, "decay"),
        ({"batch": 0}, "batch"),
    ],
)
def test_alpha_crown_rejects_bad_options(rng, options, message):
    net = _mlp(rng, "relu")
    with pytest.raises(ValueError, match=message):
        bounds.output_bounds(net, -np.ones(3), np.ones(3), "alpha-crown", **options)


@pytest.mark.parametrize("method,options", [("alpha-crown", {"stepz": 3}), ("crown", {"steps": 3})])
def test_unknown_options_raise_type_errors_naming_the_option(rng, method, options):
    net = _mlp(rng, "relu")
    with pytest.raises(TypeError, match=next(iter(options))):
        bounds.output_bounds(net, -np.ones(3), np.ones(3), method, **options)


def test_batches_of_neurons_give_the_same_bounds(rng):
    net, lower, upper = reference_nets.network(reference_nets.CASES[4])
    whole = bounds.output_bounds(net, lower, upper, "alpha-crown", steps=5)
    parts = bounds.output_bounds(net, lower, upper, "alpha-crown", steps=5, batch=7)
    np.testing.assert_allclose(parts, whole, rtol=1e-12, atol=1e-12)


def test_zero_steps_gives_crown_and_more_steps_tighten(rng):
    net, lower, upper = reference_nets.network(reference_nets.CASES[4])
    crown_low, crown_high = bounds.output_bounds(net, lower, upper, "crown")
    low, high = bounds.output_bounds(net, lower, upper, "alpha-crown", steps=0)
    assert np.mean(high - low) <= np.mean(crown_high - crown_low) + 1e-9
    more_low, more_high = bounds.output_bounds(net, lower, upper, "alpha-crown", steps=20)
    assert np.mean(more_high - more_low) < 0.8 * np.mean(high - low)


@pytest.mark.parametrize(
    "spec,message",
    [
        (np.ones((2, 3)), r"\[k, 2\]"),
        (np.array([[1.0, np.nan]]), "finite"),
        (np.ones((0, 2)), "k >= 1"),
    ],
)
def test_output_bounds_rejects_bad_specs(rng, spec, message):
    net = _mlp(rng, "relu")
    with pytest.raises(ValueError, match=message):
        bounds.output_bounds(net, -np.ones(3), np.ones(3), "crown", spec=spec)


def test_top_class_spec_rows_and_errors():
    np.testing.assert_array_equal(bounds.top_class_spec(3, 1), [[-1.0, 1.0, 0.0], [0.0, 1.0, -1.0]])
    for args in ((1, 0), (3, 3), (3, -1)):
        with pytest.raises(ValueError, match="top_class_spec"):
            bounds.top_class_spec(*args)


@pytest.mark.parametrize("case", reference_nets.CASES, ids=lambda case: case["name"])
def test_crown_and_alpha_crown_at_least_as_tight_as_auto_lirpa(recorded, case):
    reference = recorded[case["name"]]
    assert reference["sizes"] == case["sizes"] and reference["seed"] == case["seed"]
    net, lower, upper = reference_nets.network(case)
    for method in ("crown", "alpha-crown"):
        low, high = bounds.output_bounds(net, lower, upper, method)
        theirs = np.subtract(reference[method]["high"], reference[method]["low"])
        assert np.mean(high - low) <= np.mean(theirs) * (1 + 1e-9), method
        if method == "crown":  # the same algorithm: every bound matches or is tighter
            assert np.all(low >= np.array(reference[method]["low"]) - 1e-7 * (1 + np.abs(low)))
            assert np.all(high <= np.array(reference[method]["high"]) + 1e-7 * (1 + np.abs(high)))
