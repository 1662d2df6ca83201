"""Interval bound propagation (IBP) and an empirical inner range by sampling."""

import itertools

import numpy as np

from tf1norm.bounds.network import Activation, Dense, evaluate


class IntervalBounds:
    """Elementwise lower/upper bounds, propagated layer by layer (sound, loose)."""

    def __init__(self, lower, upper):
        self.lower, self.upper = lower, upper

    def apply(self, layer):
        if isinstance(layer, Dense):
            return self.apply_dense(layer)
        if isinstance(layer, Activation):
            return self.apply_activation(layer)
        raise TypeError(f"IntervalBounds: no rule for layer {type(layer).__name__}.")

    def apply_dense(self, layer):
        center, radius = (self.upper + self.lower) / 2, (self.upper - self.lower) / 2
        mid = center @ layer.kernel + layer.bias
        spread = radius @ np.abs(layer.kernel)
        return IntervalBounds(mid - spread, mid + spread)

    def apply_activation(self, layer):
        # Every supported activation is monotone non-decreasing.
        return IntervalBounds(evaluate(layer.kind, self.lower, layer.alpha),
                              evaluate(layer.kind, self.upper, layer.alpha))


def interval(network, lower, upper):
    """IBP bounds of every output over the box."""
    bounds = IntervalBounds(lower, upper)
    for layer in network.layers:
        bounds = bounds.apply(layer)
    return bounds.lower, bounds.upper


def sample(network, lower, upper, samples=10000, seed=0, max_vertices=4096):
    """Empirical *inner* range: min/max over random points and box vertices.

    Not a bound: the true range contains it. Uses every vertex when there are
    at most ``max_vertices``, else as many random vertices.
    """
    rng = np.random.default_rng(seed)
    points = [lower + (upper - lower) * rng.random((samples, lower.size))]
    if 2 ** lower.size <= max_vertices:
        corners = np.array(list(itertools.product((0.0, 1.0), repeat=lower.size)))
    else:
        corners = rng.integers(0, 2, (max_vertices, lower.size)).astype(np.float64)
    points.append(lower + (upper - lower) * corners)
    outputs = network(np.concatenate(points))
    return outputs.min(axis=0), outputs.max(axis=0)
