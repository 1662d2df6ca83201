"""alpha-CROWN: CROWN with optimized (leaky) ReLU lower slopes (Xu et al., ICLR 2021).

Every slope ``α ∈ [leak, 1]`` of the lower relaxation ``α·z`` of an unstable
(leaky) ReLU gives a sound bound, so each bound can be maximized over α. Here
that is done for *every* bound CROWN computes, front to back:

1. the pre-activation bounds of each activation layer, all its neurons and
   both sides at once (rows ``[I; −I]``), with one α per row and per neuron of
   every earlier (leaky) ReLU layer, using the already optimized bounds of the
   earlier layers for their relaxations;
2. the output (or ``spec · y``) bounds, rows ``[C; −C]``, the same way.

Each row depends only on its own α, so the objective is the sum of all rows
and the whole batch is one vectorized NumPy computation: a back-substitution
pass (``crown.backsubstitute``) and its hand-written reverse pass for the
gradient, then one projected Adam ascent step (the α box is ``[leak, 1]`` for
unstable neurons and CROWN's fixed slope for stable ones). The best value seen
for each row is kept, starting from CROWN's own, and intersected with CROWN's
and the interval bounds, so no bound is ever looser than ``crown``'s.
"""

import numpy as np
from tqdm import tqdm

from tf1norm.bounds import relaxations
from tf1norm.bounds.crown import (
    backsubstitute,
    both_sides,
    crown,
    pre_activation_bounds,
    spec_rows,
    split_sides,
)
from tf1norm.bounds.network import Activation, Add, Linear

DEFAULTS = {"steps": 20, "learning_rate": 0.5, "decay": 0.98, "batch": 512}


def check_options(
    steps=DEFAULTS["steps"],
    learning_rate=DEFAULTS["learning_rate"],
    decay=DEFAULTS["decay"],
    batch=DEFAULTS["batch"],
    **unknown,
):
    """The validated optimizer options as a dict.

    Raises:
      ValueError: ``steps`` not a non-negative int, ``learning_rate`` not > 0,
        ``decay`` not in ``(0, 1]``, or ``batch`` not a positive int.
      TypeError: an unknown option.
    """
    if unknown:
        raise TypeError(
            f"alpha_crown: unknown option(s) {', '.join(map(repr, sorted(unknown)))}; "
            f"the options are {', '.join(DEFAULTS)}."
        )
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(
            f"alpha_crown: `steps` must be an int >= 0 (Adam steps per bound); got {steps!r}."
        )
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(
            f"alpha_crown: `learning_rate` must be a finite number > 0 "
            f"(e.g. 0.5); got {learning_rate!r}."
        )
    if not 0 < decay <= 1:
        raise ValueError(
            f"alpha_crown: `decay` (learning rate factor per step) must be in "
            f"(0, 1]; got {decay!r}."
        )
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise ValueError(
            f"alpha_crown: `batch` (neurons optimized together; memory grows with "
            f"it) must be an int >= 1; got {batch!r}."
        )
    return {
        "steps": int(steps),
        "learning_rate": float(learning_rate),
        "decay": float(decay),
        "batch": int(batch),
    }


def _slope_box(layer, relaxation, l, u):
    """``(lowest, highest)`` lower slope per neuron; equal for stable neurons."""
    sl = relaxation[0]
    unstable = (l < 0) & (u > 0)
    leak = layer.alpha if layer.kind == "leaky_relu" else 0.0
    return np.where(unstable, leak, sl), np.where(unstable, 1.0, sl)


def _free_layers(network, pre_bounds, relaxed, index):
    """``{activation index: slope box}``: (leaky) ReLUs before ``index`` with unstable units."""
    boxes = {}
    for k, (l, u) in pre_bounds.items():
        layer = network.layers[k]
        if k < index and layer.kind in ("relu", "leaky_relu") and np.any((l < 0) & (u > 0)):
            boxes[k] = _slope_box(layer, relaxed[k], l, u)
    return boxes


def slope_gradients(network, index, relaxed, slopes, record, lower, upper):
    """Gradient of the sum of ``backsubstitute``'s rows w.r.t. each slope matrix.

    Reverse pass of the back-substitution, from the input forwards: ``g[k]`` is
    the gradient w.r.t. the coefficients reaching layer ``k``'s output. A
    Linear layer maps it by ``layer(g)`` (``g·W + b``: the ``A·b`` term adds
    ``b``); an Add layer sums the gradients of both summands.
    """
    center, radius = (upper + lower) / 2.0, (upper - lower) / 2.0
    g = {-1: center - np.sign(record[-1]) * radius}
    grads = {}
    for k in range(index + 1):
        layer, below = network.layers[k], g[k - 1]
        if isinstance(layer, Add):
            g[k] = below + g[layer.source]
        elif isinstance(layer, Linear):
            g[k] = layer(below)
        else:
            sl, il, su, iu = relaxed[k]
            positive = record[k] > 0
            slope = slopes.get(k, sl)
            g[k] = np.where(positive, below * slope + il, below * su + iu)
            if k in slopes:
                grads[k] = np.where(positive, below * record[k], 0.0)
    return grads


class _Adam:
    """Projected Adam *ascent* on a dict of arrays, clipped to per-neuron boxes."""

    def __init__(self, boxes, learning_rate, decay):
        self.boxes, self.rate, self.decay, self.step = boxes, learning_rate, decay, 0
        self.moments = {}

    def update(self, params, grads):
        self.step += 1
        for k, grad in grads.items():
            m, v = self.moments.get(k, (0.0, 0.0))
            m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad * grad
            self.moments[k] = (m, v)
            ascent = (
                self.rate
                * (m / (1 - 0.9**self.step))
                / (np.sqrt(v / (1 - 0.999**self.step)) + 1e-8)
            )
            params[k] = np.clip(params[k] + ascent, *self.boxes[k])
        self.rate *= self.decay


def optimize_rows(network, start, index, pre_bounds, relaxed, lower, upper, options):
    """Best lower bound of each row of ``start · h_index`` over the slopes, per row.

    Starts from CROWN's slopes (the value at step 0 is CROWN's with these
    ``pre_bounds``); keeps the elementwise maximum over all steps.
    """
    boxes = _free_layers(network, pre_bounds, relaxed, index)
    slopes = {k: np.tile(relaxed[k][0], (len(start), 1)) for k in boxes}
    best = -np.inf
    adam = _Adam(boxes, options["learning_rate"], options["decay"])
    for step in range(options["steps"] + 1 if boxes else 1):
        record = {}
        best = np.maximum(
            best, backsubstitute(network, start, index, relaxed, lower, upper, slopes, record)
        )
        if step < options["steps"]:
            adam.update(
                slopes, slope_gradients(network, index, relaxed, slopes, record, lower, upper)
            )
    return best


def _rows_to_optimize(layer, low, high):
    """Neurons whose bounds matter: all, or only the unstable ones for a (leaky) ReLU.

    A (leaky) ReLU whose input is known to keep one sign is relaxed exactly
    whatever its bounds, so tightening them cannot help.
    """
    if layer.kind in ("relu", "leaky_relu"):
        return np.flatnonzero((low < 0) & (high > 0))
    return np.arange(low.size)


def _optimized_layers(network, lower, upper, options):
    """``(optimized pre-activation bounds, their relaxations)`` of every activation.

    A tqdm bar (one step per activation layer) appears on a terminal when the
    work takes over a second.
    """
    reference = pre_activation_bounds(network, lower, upper)
    pre_bounds, relaxed = {}, {}
    activations = [k for k, layer in enumerate(network.layers) if isinstance(layer, Activation)]
    for index in tqdm(
        activations, desc="alpha-crown layers", unit="layer", disable=None, delay=1.0, leave=False
    ):
        layer = network.layers[index]
        low, high = (bound.copy() for bound in reference[index])
        chosen = _rows_to_optimize(layer, low, high)
        for start in range(0, chosen.size, options["batch"]):
            part = chosen[start : start + options["batch"]]
            rows = both_sides(np.eye(network.sizes[index - 1])[part])
            new_low, new_high = split_sides(
                optimize_rows(network, rows, index - 1, pre_bounds, relaxed, lower, upper, options)
            )
            low[part], high[part] = np.maximum(low[part], new_low), np.minimum(high[part], new_high)
        pre_bounds[index] = (low, high)
        relaxed[index] = relaxations.for_layer(layer, low, high)
    return pre_bounds, relaxed


def optimized_pre_activation_bounds(network, lower, upper, **options):
    """``{activation index: (l, u)}`` like ``crown.pre_activation_bounds``, slopes optimized.

    Each bound is at least as tight as CROWN's (and the interval bound). Takes
    the ``alpha_crown`` options (``steps``, ``learning_rate``, ``decay``).

    Raises:
      ValueError: an invalid option (see ``check_options``).
    """
    return _optimized_layers(network, lower, upper, check_options(**options))[0]


def alpha_crown(network, lower, upper, spec=None, **options):
    """alpha-CROWN bounds of ``spec · y`` (every output if ``spec`` is None) over the box.

    Args:
      network: a ``Network``.
      lower, upper: the input box (checked float64 vectors).
      spec: optional ``[k, output_size]`` matrix ``C``; the bounds are of ``C·y``,
        by back-substitution starting from ``C``.
      **options: ``steps`` (default 20 Adam steps per bound), ``learning_rate``
        (0.5, on the slopes), ``decay`` (0.98, learning rate factor per step),
        ``batch`` (512: at most this many neurons of a layer are optimized
        together; memory is about ``2·batch·(sum of layer sizes)·8`` bytes).

    Returns:
      ``(low, high)``, one entry per row of ``spec``; never looser than ``crown``.

    Raises:
      ValueError: an invalid option.
    """
    options = check_options(**options)
    crown_low, crown_high = crown(network, lower, upper, spec)
    pre_bounds, relaxed = _optimized_layers(network, lower, upper, options)
    rows = both_sides(spec_rows(network, spec))
    low, high = split_sides(
        optimize_rows(
            network, rows, len(network.layers) - 1, pre_bounds, relaxed, lower, upper, options
        )
    )
    return np.maximum(low, crown_low), np.minimum(high, crown_high)
