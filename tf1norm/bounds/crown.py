"""CROWN: backward linear bound propagation (Zhang et al., NeurIPS 2018).

Every bound is a *lower* bound of rows ``A·h`` (``h`` the output of some
layer); an upper bound of ``A·h`` is minus the lower bound of ``−A·h``, so the
two sides of every quantity are stacked as rows ``[A; −A]`` and computed in
one pass. Back-substitution carries ``A·h + c`` towards the input:

* ``Linear`` layer (``h = x·W + b``): ``c ← c + A·b``, ``A ← A·Wᵀ``, through
  ``layer.backward`` and ``layer.bias_vector`` only (no dense matrix needed).
* activation: the positive part of ``A`` takes the lower relaxation
  ``sl·z + il``, the negative part the upper one ``su·z + iu``.
* ``Add(source)``: ``A`` passes unchanged to the previous layer and is also
  held as pending coefficients for layer ``source``'s output, added in when
  the loop reaches that layer (``source=−1``: at the input).
* at the input the box is used exactly: ``A·center − |A|·radius``.

Pre-activation bounds of every activation are computed the same way, front to
back, and intersected with interval (IBP) bounds. With a specification matrix
``C`` the final pass starts from ``[C; −C]``, which bounds ``C·y`` directly and
is never looser than combining the per-output boxes.
"""

import numpy as np

from tf1norm.bounds import relaxations
from tf1norm.bounds.network import Activation, Add, Linear


def concretize(a, lower, upper):
    """``min over the box of a·x``, row by row."""
    center, radius = (upper + lower) / 2.0, (upper - lower) / 2.0
    return a @ center - np.abs(a) @ radius


def relax(network, pre_bounds):
    """``{activation index: (sl, il, su, iu)}``: the CROWN relaxation of each activation."""
    return {k: relaxations.for_layer(network.layers[k], l, u) for k, (l, u) in pre_bounds.items()}


def _through_activation(a, c, relaxation, slope=None):
    """Carry the lower bound of ``a·h + c`` through an activation; ``slope`` overrides ``sl``."""
    sl, il, su, iu = relaxation
    positive, negative = np.maximum(a, 0.0), np.minimum(a, 0.0)
    c = c + positive @ il + negative @ iu
    return positive * (sl if slope is None else slope) + negative * su, c


def backsubstitute(network, start, index, relaxed, lower, upper, slopes=None, record=None):
    """Lower bound of each row of ``start · h_index`` over the input box.

    Args:
      network: the ``Network``.
      start: ``[rows, size of layer index's output]`` coefficients.
      index: the layer whose output is bounded.
      relaxed: ``relax(network, pre_bounds)`` for every activation up to ``index``.
      lower, upper: the input box.
      slopes: optional ``{activation index: [rows, size]}`` lower slopes replacing
        ``sl`` (alpha-CROWN); each must be a sound lower slope for its neuron.
      record: optional dict filled with the coefficient matrix reaching each
        layer's output (key ``k``) and the input (key ``-1``), for gradients.

    Returns:
      ``[rows]`` lower bounds.
    """
    a, c, pending = start, np.zeros(len(start)), {}
    for k in range(index, -1, -1):
        layer = network.layers[k]
        if k in pending:
            a = a + pending.pop(k)
        if record is not None:
            record[k] = a
        if isinstance(layer, Add):
            pending[layer.source] = pending[layer.source] + a if layer.source in pending else a
        elif isinstance(layer, Linear):
            c = c + a @ layer.bias_vector
            a = layer.backward(a)
        else:
            a, c = _through_activation(a, c, relaxed[k], None if slopes is None else slopes.get(k))
    if -1 in pending:
        a = a + pending.pop(-1)
    if record is not None:
        record[-1] = a
    return concretize(a, lower, upper) + c


def both_sides(rows):
    """``[rows; −rows]``: lower bounds of the first half, negated upper bounds of the second."""
    return np.concatenate([rows, -rows])


def split_sides(values):
    """``(low, high)`` from the lower bounds of ``[rows; −rows]``."""
    half = len(values) // 2
    return values[:half] + 0.0, 0.0 - values[half:]  # + 0.0: no -0.0 in printed bounds


class _Intervals:
    """Interval bounds of every layer output, front to back, through the Linear interface."""

    def __init__(self, lower, upper):
        self.bounds = {-1: (lower, upper)}

    def advance(self, index, layer):
        lower, upper = self.bounds[index - 1]
        if isinstance(layer, Add):
            source_lower, source_upper = self.bounds[layer.source]
            lower, upper = lower + source_lower, upper + source_upper
        elif isinstance(layer, Linear):
            center, radius = layer((lower + upper)[None] / 2.0)[0], (upper - lower) / 2.0
            spread = layer.forward_abs(radius[None])[0]
            lower, upper = center - spread, center + spread
        else:  # every supported activation is monotone non-decreasing
            lower, upper = layer(lower), layer(upper)
        self.bounds[index] = (lower, upper)


def pre_activation_bounds(network, lower, upper):
    """``{activation index: (l, u)}``: CROWN ∩ IBP bounds of each activation's input."""
    pre_bounds, relaxed, intervals = {}, {}, _Intervals(lower, upper)
    for index, layer in enumerate(network.layers):
        if isinstance(layer, Activation):
            rows = both_sides(np.eye(network.sizes[index - 1]))
            low, high = split_sides(backsubstitute(network, rows, index - 1, relaxed, lower, upper))
            ibp_low, ibp_high = intervals.bounds[index - 1]
            pre_bounds[index] = (np.maximum(low, ibp_low), np.minimum(high, ibp_high))
            intervals.bounds[index - 1] = pre_bounds[index]
            relaxed[index] = relaxations.for_layer(layer, *pre_bounds[index])
        intervals.advance(index, layer)
    return pre_bounds


def spec_rows(network, spec):
    """The specification matrix, or the identity when ``spec`` is None."""
    return np.eye(network.output_size) if spec is None else spec


def crown(network, lower, upper, spec=None):
    """CROWN bounds of ``spec · y`` (every output when ``spec`` is None) over the box.

    Args:
      network: a ``Network``.
      lower, upper: the input box (checked float64 vectors).
      spec: optional ``[k, output_size]`` float64 matrix ``C``; bounds ``C·y``.

    Returns:
      ``(low, high)`` arrays with one entry per row of ``spec`` (or per output).
    """
    pre_bounds = pre_activation_bounds(network, lower, upper)
    values = backsubstitute(
        network,
        both_sides(spec_rows(network, spec)),
        len(network.layers) - 1,
        relax(network, pre_bounds),
        lower,
        upper,
    )
    return split_sides(values)
