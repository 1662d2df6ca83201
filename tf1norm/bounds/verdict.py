"""Verdicts of ``bounds.verify`` and the gradient attack both of its routes use.

``Verdict`` is what ``verify`` returns for a box and a spec matrix
(``tf1norm.bounds.verification``) and for a VNN-LIB property
(``tf1norm.bounds.property_verify``); ``run_attack`` is the cheap falsifier
both run before any bound: projected sign-gradient descent on the NumPy
network from random starts, the box centre and, for few inputs, its vertices.
"""

import numpy as np

from tf1norm.bounds.network import Activation, Add, Linear, evaluate


STATUSES = ("proved", "falsified", "unknown")


class Verdict:
    """The answer of ``verify``.

    Attributes:
      status: ``"proved"``, ``"falsified"`` or ``"unknown"``.
      margins: ``[k]`` sound lower bounds of ``spec·y − threshold`` over the box
        (all > 0 when proved).
      counterexample: an input in the box with some ``spec_i·y <= threshold_i``
        (``None`` unless falsified); ``counterexample_margins`` is
        ``spec·network(x) − threshold`` there, computed by running the network.
      method: which step decided (``"alpha-crown"``, ``"attack"``, ``"exact"``...).
      seconds: wall time of the call.
    """

    def __init__(
        self, status, margins, method, seconds, counterexample=None, counterexample_margins=None
    ):
        self.status, self.margins, self.method, self.seconds = status, margins, method, seconds
        self.counterexample, self.counterexample_margins = counterexample, counterexample_margins

    proved = property(lambda self: self.status == "proved")

    def __repr__(self):
        return (
            f"Verdict(status={self.status!r}, method={self.method!r}, "
            f"min margin={np.min(self.margins):.6g})"
        )


def _derivative(layer, z):
    if layer.kind == "relu":
        return (z > 0).astype(np.float64)
    if layer.kind == "leaky_relu":
        return np.where(z >= 0, 1.0, layer.alpha)
    if layer.kind in ("sigmoid", "tanh"):
        f = evaluate(layer.kind, z)
        return f * (1 - f) if layer.kind == "sigmoid" else 1 - f * f
    return np.ones_like(z)


def margins_and_gradients(network, x, coefficients, threshold):
    """``coefficients_b · y(x_b) − threshold_b`` and its gradient w.r.t. ``x_b``, per point b."""
    outputs, slopes = {-1: x}, {}
    for k, layer in enumerate(network.layers):
        if isinstance(layer, Activation):
            slopes[k] = _derivative(layer, outputs[k - 1])
        outputs[k] = (
            outputs[k - 1] + outputs[layer.source]
            if isinstance(layer, Add)
            else layer(outputs[k - 1])
        )
    g, pending = coefficients, {}
    for k in range(len(network.layers) - 1, -1, -1):
        layer = network.layers[k]
        g = g + pending.pop(k) if k in pending else g
        if isinstance(layer, Add):
            pending[layer.source] = pending.get(layer.source, 0) + g
        elif isinstance(layer, Linear):
            g = layer.backward(g)
        else:
            g = g * slopes[k]
    g = g + pending.pop(-1, 0)
    return np.sum(outputs[len(network.layers) - 1] * coefficients, axis=1) - threshold, g


def _starts(lower, upper, count, rng):
    """Random points, the centre and (up to 64) box vertices."""
    points = [lower + (upper - lower) * rng.random((count, lower.size)), (lower + upper)[None] / 2]
    if lower.size <= 6:
        bits = (np.arange(2**lower.size)[:, None] >> np.arange(lower.size)) & 1
        points.append(np.where(bits == 1, upper, lower))
    return np.concatenate(points)


def run_attack(network, lower, upper, spec, threshold, rows, steps=40, starts=32, seed=0):
    """Smallest margin found per attacked row: ``(margins [k], inputs [k, n])``.

    Projected sign-gradient descent on ``spec_i·y − threshold_i`` for each row
    ``i`` in ``rows``, from the same start points; rows not attacked get +inf.
    """
    rng = np.random.default_rng(seed)
    x0 = _starts(lower, upper, starts, rng)
    x = np.repeat(x0, len(rows), axis=0)
    row_of = np.tile(np.asarray(rows), len(x0))
    best = np.full(len(spec), np.inf)
    best_x = np.repeat(((lower + upper) / 2)[None], len(spec), axis=0)
    step = (upper - lower) / 4
    for i in range(steps + 1):
        values, grads = margins_and_gradients(network, x, spec[row_of], threshold[row_of])
        table = values.reshape(len(x0), len(rows))
        winner = np.argmin(table, axis=0)
        found = table[winner, np.arange(len(rows))]
        better = found < best[rows]
        best[rows] = np.where(better, found, best[rows])
        best_x[rows] = np.where(
            better[:, None], x[winner * len(rows) + np.arange(len(rows))], best_x[rows]
        )
        x = np.clip(x - step * (0.9**i) * np.sign(grads), lower, upper)
    return best, best_x
