"""Interval bound propagation (IBP) and an empirical inner range by sampling."""

import itertools

import numpy as np

from tf1norm.bounds.network import Activation, Add, Linear, evaluate


class IntervalBounds:
    """Elementwise lower/upper bounds, propagated layer by layer (sound, loose).

    Linear layers are used only through ``__call__`` and ``forward_abs``, so a
    convolution costs one convolution of the center and one of the radius.
    """

    def __init__(self, lower, upper):
        self.lower, self.upper = lower, upper

    def apply(self, layer, history=None):
        """Bounds after ``layer``; ``history``: layer index -> bounds (-1: the input), for Add."""
        if isinstance(layer, Linear):
            return self.apply_linear(layer)
        if isinstance(layer, Activation):
            return self.apply_activation(layer)
        if isinstance(layer, Add):
            if history is None or layer.source not in history:
                raise ValueError(
                    f"IntervalBounds: Add needs the bounds of layer {layer.source}; pass `history`."
                )
            return self.apply_add(history[layer.source])
        raise TypeError(f"IntervalBounds: no rule for layer {type(layer).__name__}.")

    def apply_linear(self, layer):
        center, radius = (self.upper + self.lower) / 2, (self.upper - self.lower) / 2
        mid, spread = layer(center), layer.forward_abs(radius)
        return IntervalBounds(mid - spread, mid + spread)

    apply_dense = apply_linear

    def apply_add(self, other):
        return IntervalBounds(self.lower + other.lower, self.upper + other.upper)

    def apply_activation(self, layer):
        # Every supported activation is monotone non-decreasing.
        return IntervalBounds(
            evaluate(layer.kind, self.lower, layer.alpha),
            evaluate(layer.kind, self.upper, layer.alpha),
        )


def layer_bounds(network, lower, upper):
    """IBP bounds of every layer's output: a list, one ``IntervalBounds`` per layer."""
    history = {-1: IntervalBounds(lower, upper)}
    bounds = history[-1]
    for index, layer in enumerate(network.layers):
        bounds = bounds.apply(layer, history)
        history[index] = bounds
    return [history[index] for index in range(len(network.layers))]


def apply_spec(spec, low, high):
    """Bounds of ``spec @ y`` for ``y`` in the box ``[low, high]`` (``spec=None``: identity)."""
    if spec is None:
        return low, high
    spec = np.asarray(spec, np.float64)
    if spec.ndim != 2 or spec.shape[1] != low.size:
        raise ValueError(
            f"bounds: `spec` must be a matrix [k, {low.size}] (one column per "
            f"output); got shape {spec.shape}."
        )
    positive, negative = np.maximum(spec, 0), np.minimum(spec, 0)
    return positive @ low + negative @ high, positive @ high + negative @ low


def interval(network, lower, upper, spec=None):
    """IBP bounds of every output (or of ``spec @ y``) over the box."""
    last = layer_bounds(network, lower, upper)[-1]
    return apply_spec(spec, last.lower, last.upper)


def sample(network, lower, upper, spec=None, samples=10000, seed=0, max_vertices=4096):
    """Empirical *inner* range of every output (or of ``spec @ y``): random points and vertices.

    Not a bound: the true range contains it. Uses every vertex when there are
    at most ``max_vertices``, else as many random vertices.
    """
    rng = np.random.default_rng(seed)
    points = [lower + (upper - lower) * rng.random((samples, lower.size))]
    if 2**lower.size <= max_vertices:
        corners = np.array(list(itertools.product((0.0, 1.0), repeat=lower.size)))
    else:
        corners = rng.integers(0, 2, (max_vertices, lower.size)).astype(np.float64)
    points.append(lower + (upper - lower) * corners)
    outputs = network(np.concatenate(points))
    if spec is not None:
        apply_spec(spec, outputs[0], outputs[0])  # validates the shape
        outputs = outputs @ np.asarray(spec, np.float64).T
    return outputs.min(axis=0), outputs.max(axis=0)
