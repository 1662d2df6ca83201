"""Output-range analysis of a network over an input box.

Example::

    from tf1norm import bounds
    net = bounds.Network.from_numpy([W1, W2], [b1, b2], ["relu", "linear"])
    low, high = bounds.output_bounds(net, lower=[0, 0], upper=[1, 1], method="crown")
    spec = bounds.top_class_spec(net.output_size, 0)      # rows e_0 − e_j
    margin_low, margin_high = bounds.output_bounds(net, [0, 0], [1, 1], "alpha-crown", spec=spec)
    verdict = bounds.verify(net, [0, 0], [1, 1], spec)    # proved / falsified / unknown

=============  ===========================================================
method         what it returns
=============  ===========================================================
``interval``   IBP: sound, cheapest, loosest
``crown``      backward linear relaxation (CROWN/DeepPoly style): sound, tighter
``alpha-crown`` CROWN with the (leaky) ReLU lower slopes of every layer's bounds
               optimized by projected Adam; never looser than ``crown``
``exact``      the true range (labelled per row; ``time_limit=``): closed form for
               linear nets, else branch and bound on the input box (<= 16
               inputs) or MILP; returns an ``ExactRange``
``milp``       ``exact`` with one big-M MILP per bound (SciPy's HiGHS)
``sample``     an empirical *inner* range (random points and box vertices);
               the true range contains it; for comparison only
=============  ===========================================================
"""

import functools
import inspect

import numpy as np

from tf1norm.bounds.alpha_crown import alpha_crown, optimized_pre_activation_bounds
from tf1norm.bounds.conv import Conv2D
from tf1norm.bounds.crown import crown
from tf1norm.bounds.exact import exact, milp
from tf1norm.bounds.exact_result import ExactRange
from tf1norm.bounds.formats import from_nnet, from_onnx, write_nnet
from tf1norm.bounds.interval import apply_spec, interval, sample
from tf1norm.bounds.network import (
    Activation,
    Add,
    Dense,
    Diagonal,
    Linear,
    Network,
    Permute,
    check_box,
    check_network,
)
from tf1norm.bounds.sources import from_graph, from_keras, graph_value_reader
from tf1norm.bounds.property_verify import verify_property
from tf1norm.bounds.verdict import Verdict
from tf1norm.bounds.verification import verify
from tf1norm.bounds.vnnlib import Case, Polytope, VnnLibProperty, from_vnnlib

METHODS = {
    "interval": interval,
    "crown": crown,
    "alpha-crown": alpha_crown,
    "exact": exact,
    "milp": milp,
    "sample": sample,
}


def check_spec(network, spec, caller="output_bounds"):
    """``spec`` as a finite float64 matrix ``[k, output_size]`` (``None`` stays ``None``).

    Raises:
      ValueError: not a 2-D ``[k, output_size]`` array with k >= 1, or not finite.
    """
    if spec is None:
        return None
    try:
        matrix = np.asarray(spec, np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{caller}: `spec` must be a numeric matrix [k, "
            f"{network.output_size}]; got {type(spec).__name__}."
        ) from None
    if matrix.ndim == 1 and matrix.size == network.output_size:
        matrix = matrix[None]
    if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] != network.output_size:
        raise ValueError(
            f"{caller}: `spec` must be a matrix [k, {network.output_size}] (one "
            f"column per network output, k >= 1 rows); got shape {matrix.shape}."
        )
    if not np.all(np.isfinite(matrix)):
        raise ValueError(
            f"{caller}: `spec` must be finite; got non-finite entries at "
            f"{np.argwhere(~np.isfinite(matrix))[:3].tolist()}."
        )
    return matrix


def top_class_spec(num_outputs, label):
    """Spec "output ``label`` stays on top": rows ``e_label − e_j`` for every ``j != label``.

    ``spec · y > 0`` holds exactly when ``y[label]`` is strictly larger than
    every other output. Use with ``verify`` or ``output_bounds(..., spec=)``.

    Returns:
      A float64 matrix ``[num_outputs − 1, num_outputs]``.

    Raises:
      ValueError: ``num_outputs < 2`` or ``label`` not in ``range(num_outputs)``.
    """
    if not isinstance(num_outputs, (int, np.integer)) or num_outputs < 2:
        raise ValueError(f"top_class_spec: `num_outputs` must be an int >= 2; got {num_outputs!r}.")
    if not isinstance(label, (int, np.integer)) or not 0 <= label < num_outputs:
        raise ValueError(
            f"top_class_spec: `label` must be an int in [0, {num_outputs}); got {label!r}."
        )
    others = [j for j in range(num_outputs) if j != label]
    spec = -np.eye(num_outputs)[others]
    spec[:, label] = 1.0
    return spec


@functools.lru_cache(maxsize=None)
def _parameters(function):
    """``(names of keyword parameters, takes **kwargs)`` of a method function."""
    parameters = inspect.signature(function).parameters.values()
    names = tuple(p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
    return names, any(p.kind == p.VAR_KEYWORD for p in parameters)


def _check_options(method, function, options):
    names, open_ended = _parameters(function)
    unknown = sorted(set(options) - set(names))
    if unknown and not open_ended:
        accepted = [n for n in names if n not in ("network", "lower", "upper", "spec")]
        raise TypeError(
            f"output_bounds: method {method!r} takes no option "
            f"{', '.join(map(repr, unknown))}; its options are: "
            f"{', '.join(accepted) or 'none'}."
        )


def output_bounds(network, lower, upper, method="crown", spec=None, **options):
    """Lower and upper bounds of every output of ``network`` (or of ``spec · y``) over a box.

    With ``spec`` (a matrix ``C`` of shape ``[k, outputs]``) the result bounds
    ``C·y``. ``crown`` and ``alpha-crown`` back-substitute from ``C`` itself,
    which is never looser (and usually much tighter) than combining the
    per-output bounds; ``interval`` and ``exact`` combine their per-output box
    with ``C`` afterwards (post-hoc interval arithmetic: sound but looser),
    and ``sample`` evaluates ``C·y`` on its sampled points (an inner range).

    Args:
      network: a ``tf1norm.bounds.Network``.
      lower, upper: one value per input feature, ``lower <= upper``.
      method: ``"interval"``, ``"crown"``, ``"alpha-crown"``, ``"exact"`` or ``"sample"``.
      spec: optional ``[k, outputs]`` matrix (a vector of ``outputs`` values is one row).
      **options: passed to the method, e.g. ``steps=``/``learning_rate=`` for
        ``alpha-crown``, ``samples=`` for ``sample``.

    Returns:
      ``(low, high)`` float64 arrays with one entry per output (per row of ``spec``).

    Raises:
      ValueError: unknown method, box of the wrong size or with lower > upper,
        a malformed ``spec``, an invalid option, or ``exact`` on a network with
        activations other than ReLU/linear.
      TypeError: ``network`` is not a ``Network``, an unknown option.
    """
    if method not in METHODS:
        raise ValueError(
            f"output_bounds: unknown method {method!r}; choose one of {', '.join(METHODS)}."
        )
    check_network(network, "output_bounds")
    lower, upper = check_box(network, lower, upper)
    spec, function = check_spec(network, spec), METHODS[method]
    _check_options(method, function, options)
    if "spec" in _parameters(function)[0]:
        return function(network, lower, upper, spec=spec, **options)
    return apply_spec(spec, *function(network, lower, upper, **options))


def lipschitz_bound(network):
    """Upper bound of the network's L2 Lipschitz constant: Π σ(W_k) · Π Lip(f_k).

    σ is the largest singular value of each linear layer (SVD for Dense, power
    iteration through the Linear interface for Conv2D and others); ReLU, leaky
    ReLU and tanh are 1-Lipschitz, sigmoid is 1/4-Lipschitz.

    Raises:
      TypeError: ``network`` is not a ``Network``.
      ValueError: the network has residual ``Add`` layers (the product does not apply).
    """
    check_network(network, "lipschitz_bound")
    constant = 1.0
    for layer in network.layers:
        if isinstance(layer, Linear):
            constant *= layer.largest_singular_value()
        elif isinstance(layer, Add):
            raise ValueError(
                "lipschitz_bound: the network has residual Add layers, for which "
                "the product of per-layer constants is not a bound; use a "
                "network without residual branches."
            )
        elif layer.kind == "sigmoid":
            constant *= 0.25
    return float(constant)


__all__ = [
    "Activation",
    "Add",
    "Case",
    "Conv2D",
    "Dense",
    "Diagonal",
    "ExactRange",
    "Network",
    "Permute",
    "Polytope",
    "Verdict",
    "VnnLibProperty",
    "from_graph",
    "from_keras",
    "from_nnet",
    "from_onnx",
    "from_vnnlib",
    "graph_value_reader",
    "lipschitz_bound",
    "optimized_pre_activation_bounds",
    "output_bounds",
    "top_class_spec",
    "verify",
    "verify_property",
    "write_nnet",
]
