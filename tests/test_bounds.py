"""Output-range analysis: seed 001's examples, soundness, exact vs enumeration."""

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

from tf1norm import bounds

SEED_EXAMPLES = [  # (weights, expected range) over inputs in [0, 1]^2
    ([np.array([[1.0], [1.0]])], (0.0, 2.0)),
    ([np.array([[-0.5], [1.0]])], (-0.5, 1.0)),
    ([np.ones((2, 2)), np.ones((2, 1))], (0.0, 4.0)),
]


@pytest.mark.parametrize("weights,expected", SEED_EXAMPLES)
@pytest.mark.parametrize("method", ["interval", "crown", "exact", "sample"])
def test_seed_001_examples(weights, expected, method):
    net = bounds.Network.from_numpy(weights, activations=["linear"] * len(weights))
    low, high = bounds.output_bounds(net, [0, 0], [1, 1], method)
    np.testing.assert_allclose([low[0], high[0]], expected, atol=1e-12)


def _random_net(rng, depth, activation, width=6, inputs=3, outputs=2):
    sizes = [inputs] + [width] * depth + [outputs]
    weights = [rng.standard_normal((a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(b) * 0.5 for b in sizes[1:]]
    return bounds.Network.from_numpy(weights, biases, [activation] * depth + ["linear"])


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid", "tanh", "linear"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_interval_and_crown_contain_10000_samples(rng, activation, depth):
    net = _random_net(rng, depth, activation)
    lower, upper = rng.uniform(-1, 0, 3), rng.uniform(0, 1, 3)
    x = lower + (upper - lower) * rng.random((10000, 3))
    y = net(x)
    for method in ("interval", "crown"):
        low, high = bounds.output_bounds(net, lower, upper, method)
        assert np.all(y >= low - 1e-9) and np.all(y <= high + 1e-9), method


def test_crown_is_tighter_than_interval_on_a_deep_relu_net(rng):
    net = _random_net(rng, 3, "relu", width=16)
    ibp = bounds.output_bounds(net, -np.ones(3), np.ones(3), "interval")
    crown = bounds.output_bounds(net, -np.ones(3), np.ones(3), "crown")
    assert np.mean(crown[1] - crown[0]) < 0.8 * np.mean(ibp[1] - ibp[0])


def _enumerate(net, lower, upper):
    """Exact range by enumerating ReLU activation patterns: one LP per pattern and bound."""
    first, second = net.layers[0], net.layers[2]
    hidden = first.kernel.shape[1]
    low, high = np.full(net.output_size, np.inf), np.full(net.output_size, -np.inf)
    for pattern in itertools.product((0.0, 1.0), repeat=hidden):
        on = np.array(pattern)
        # region: z_j = x W_j + b_j >= 0 where on, <= 0 where off  ->  A_ub x <= b_ub
        sign = np.where(on > 0, -1.0, 1.0)
        a_ub, b_ub = (first.kernel * sign).T, -first.bias * sign
        kernel = (first.kernel * on) @ second.kernel
        bias = (first.bias * on) @ second.kernel + second.bias
        for j in range(net.output_size):
            for direction in (1.0, -1.0):
                result = linprog(
                    direction * kernel[:, j],
                    a_ub,
                    b_ub,
                    bounds=list(zip(lower, upper)),
                    method="highs",
                )
                if result.status == 0:
                    value = direction * result.fun + bias[j]
                    low[j], high[j] = min(low[j], value), max(high[j], value)
    return low, high


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_equals_activation_pattern_enumeration(seed):
    rng = np.random.default_rng(seed)
    net = _random_net(rng, 1, "relu", width=5, inputs=2, outputs=2)
    lower, upper = np.array([-1.0, -0.5]), np.array([0.5, 1.0])
    expected = _enumerate(net, lower, upper)
    got = bounds.output_bounds(net, lower, upper, "exact")
    np.testing.assert_allclose(got, expected, atol=1e-6)
    crown = bounds.output_bounds(net, lower, upper, "crown")
    assert np.all(crown[0] <= got[0] + 1e-9) and np.all(crown[1] >= got[1] - 1e-9)


def test_exact_when_the_solver_reports_no_dual_bound(monkeypatch):
    """SciPy may return mip_dual_bound=None (HiGHS without branching): it used to crash."""
    import scipy.optimize

    solve = scipy.optimize.milp

    def without_dual_bound(*args, **kwargs):
        result = solve(*args, **kwargs)
        result.mip_dual_bound = None
        return result

    monkeypatch.setattr(scipy.optimize, "milp", without_dual_bound)
    rng = np.random.default_rng(0)
    net = _random_net(rng, 1, "relu", width=5, inputs=2, outputs=2)
    lower, upper = np.array([-1.0, -0.5]), np.array([0.5, 1.0])
    np.testing.assert_allclose(
        bounds.output_bounds(net, lower, upper, "exact"), _enumerate(net, lower, upper), atol=1e-6
    )


def test_exact_on_a_deeper_relu_net_lies_between_crown_and_samples(rng):
    net = _random_net(rng, 2, "relu", width=8, inputs=4, outputs=3)
    lower, upper = -0.5 * np.ones(4), 0.5 * np.ones(4)
    exact = bounds.output_bounds(net, lower, upper, "exact")
    crown = bounds.output_bounds(net, lower, upper, "crown")
    inner = bounds.output_bounds(net, lower, upper, "sample")
    assert np.all(crown[0] <= exact[0] + 1e-7) and np.all(exact[0] <= inner[0] + 1e-7)
    assert np.all(inner[1] <= exact[1] + 1e-7) and np.all(exact[1] <= crown[1] + 1e-7)


def test_lipschitz_bound_is_the_product_of_spectral_norms_and_holds(rng):
    net = _random_net(rng, 2, "sigmoid", inputs=3)
    kernels = [layer.kernel for layer in net.layers if isinstance(layer, bounds.Dense)]
    expected = np.prod([np.linalg.svd(k, compute_uv=False)[0] for k in kernels]) * 0.25**2
    assert bounds.lipschitz_bound(net) == pytest.approx(expected)
    x, y = rng.standard_normal((2000, 3)), rng.standard_normal((2000, 3))
    ratio = np.linalg.norm(net(x) - net(y), axis=1) / np.linalg.norm(x - y, axis=1)
    assert ratio.max() <= expected


@pytest.mark.parametrize(
    "call,error,fragment",
    [
        (lambda n: bounds.output_bounds(n, [0, 0, 0], [1, 1, 1]), ValueError, "need 2 values"),
        (lambda n: bounds.output_bounds(n, [0, 2], [1, 1]), ValueError, "feature 1"),
        (lambda n: bounds.output_bounds(n, [0, 0], [1, 1], "magic"), ValueError, "unknown method"),
        (
            lambda n: bounds.output_bounds([np.ones((2, 1))], [0, 0], [1, 1]),
            TypeError,
            "Network.from_numpy",
        ),
        (
            lambda n: bounds.output_bounds(
                bounds.Network.from_numpy(
                    [np.ones((2, 2)), np.ones((2, 1))], activations=["sigmoid", "linear"]
                ),
                [0, 0],
                [1, 1],
                "exact",
            ),
            ValueError,
            "ReLU and linear layers only",
        ),
        (
            lambda n: bounds.Network.from_numpy([np.ones((2, 2))], activations=["swish"]),
            ValueError,
            "unsupported activation 'swish'",
        ),
        (
            lambda n: bounds.Network.from_numpy([np.ones((2, 2)), np.ones((3, 1))]),
            ValueError,
            "expects 3 inputs",
        ),
        (lambda n: bounds.Dense(np.ones(3)), ValueError, "matrix"),
    ],
)
def test_bad_input(call, error, fragment):
    net = bounds.Network.from_numpy([np.ones((2, 1))], activations=["linear"])
    with pytest.raises(error) as info:
        call(net)
    assert fragment in str(info.value)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_alpha_crown_is_within_crown_and_sound(rng, activation, depth):
    net = _random_net(rng, depth, activation, width=8)
    lower, upper = -np.ones(3), np.ones(3)
    crown = bounds.output_bounds(net, lower, upper, "crown")
    alpha = bounds.output_bounds(net, lower, upper, "alpha-crown")
    assert np.all(alpha[0] >= crown[0] - 1e-12) and np.all(alpha[1] <= crown[1] + 1e-12)
    y = net(lower + (upper - lower) * rng.random((10000, 3)))
    assert np.all(y >= alpha[0] - 1e-9) and np.all(y <= alpha[1] + 1e-9)


def test_alpha_crown_tightens_a_relu_net(rng):
    net = _random_net(rng, 2, "relu", width=16)
    crown = bounds.output_bounds(net, -np.ones(3), np.ones(3), "crown")
    alpha = bounds.output_bounds(net, -np.ones(3), np.ones(3), "alpha-crown")
    assert np.mean(alpha[1] - alpha[0]) < np.mean(crown[1] - crown[0]) - 1e-3


def test_alpha_crown_works_while_a_graph_is_the_default(rng):
    from tf1norm._src.compat import tf

    net = _random_net(rng, 2, "relu", width=8)
    eager = bounds.output_bounds(net, -np.ones(3), np.ones(3), "alpha-crown")
    with tf.Graph().as_default():
        in_graph = bounds.output_bounds(net, -np.ones(3), np.ones(3), "alpha-crown")
    np.testing.assert_allclose(in_graph, eager)
