"""Output-range analysis of a network over an input box.

Example::

    from tf1norm import bounds
    net = bounds.Network.from_numpy([W1, W2], [b1, b2], ["relu", "linear"])
    low, high = bounds.output_bounds(net, lower=[0, 0], upper=[1, 1], method="crown")

=============  ===========================================================
method         what it returns
=============  ===========================================================
``interval``   IBP: sound, cheapest, loosest
``crown``      backward linear relaxation (CROWN/DeepPoly style): sound, tighter
``alpha-crown`` CROWN with ReLU lower slopes optimized by projected gradient;
               never looser than ``crown``
``exact``      the true range: closed form for linear nets, MILP for ReLU nets
``sample``     an empirical *inner* range (random points and box vertices);
               the true range contains it; for comparison only
=============  ===========================================================
"""

import numpy as np

from tf1norm.bounds.alpha_crown import alpha_crown
from tf1norm.bounds.crown import crown
from tf1norm.bounds.exact import exact
from tf1norm.bounds.interval import interval, sample
from tf1norm.bounds.network import Activation, Dense, Network, check_box
from tf1norm.bounds.sources import from_graph, from_keras, graph_value_reader

METHODS = {"interval": interval, "crown": crown, "alpha-crown": alpha_crown, "exact": exact,
           "sample": sample}


def output_bounds(network, lower, upper, method="crown"):
    """Lower and upper bounds of every output of ``network`` for inputs in ``[lower, upper]``.

    Args:
      network: a ``tf1norm.bounds.Network``.
      lower, upper: one value per input feature, ``lower <= upper``.
      method: ``"interval"``, ``"crown"``, ``"alpha-crown"``, ``"exact"`` or ``"sample"``.

    Returns:
      ``(low, high)`` float64 arrays with one entry per output.

    Raises:
      ValueError: unknown method, box of the wrong size or with lower > upper,
        or ``exact`` on a network with activations other than ReLU/linear.
    """
    if method not in METHODS:
        raise ValueError(f"output_bounds: unknown method {method!r}; choose one of "
                         f"{', '.join(METHODS)}.")
    if not isinstance(network, Network):
        raise TypeError(f"output_bounds: `network` must be a tf1norm.bounds.Network; got "
                        f"{type(network).__name__}. Build one with Network.from_numpy.")
    lower, upper = check_box(network, lower, upper)
    return METHODS[method](network, lower, upper)


def lipschitz_bound(network):
    """Upper bound of the network's L2 Lipschitz constant: Π σ(W_k) · Π Lip(f_k).

    σ is the largest singular value of each Dense kernel; ReLU, leaky ReLU and
    tanh are 1-Lipschitz, sigmoid is 1/4-Lipschitz.
    """
    constant = 1.0
    for layer in network.layers:
        if isinstance(layer, Dense):
            constant *= np.linalg.svd(layer.kernel, compute_uv=False)[0]
        elif layer.kind == "sigmoid":
            constant *= 0.25
    return float(constant)


__all__ = ["Activation", "Dense", "Network", "from_graph", "from_keras", "graph_value_reader",
           "lipschitz_bound", "output_bounds"]
