"""Verdicts: does ``spec · y > threshold`` hold for every input in the box?

``verify`` combines three steps, cheapest first:

1. sound bounds of ``spec · y`` (``alpha-crown`` by default): if every row's
   lower bound exceeds the threshold the property is **proved**;
2. a cheap attack on the NumPy network (projected sign-gradient descent from
   random starts, the box centre and, for few inputs, its vertices) on every
   row not yet proved: an input with ``spec_i · y <= threshold_i`` is a
   **falsified** verdict, and that input is re-run through the network;
3. with ``time_limit`` set, the exact method (branch and bound / MILP) on the
   rows still open, within that time: it can prove them or return a witness.

Otherwise the verdict is **unknown**, with the best sound margins found.
"""

import time

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


def _check_threshold(threshold, rows):
    values = np.asarray(threshold, np.float64)
    if values.ndim > 1 or values.size not in (1, rows) or not np.all(np.isfinite(values)):
        raise ValueError(
            f"verify: `threshold` must be a finite number or {rows} finite values "
            f"(one per spec row); got {threshold!r}."
        )
    return np.broadcast_to(values, (rows,)).copy()


def _exact_step(network, lower, upper, spec, threshold, open_rows, time_limit):
    """The exact method on the open rows: ``(margins of those rows, witness or None)``."""
    from tf1norm.bounds.exact import exact

    result = exact(network, lower, upper, spec=spec[open_rows], time_limit=time_limit)
    margins = result.low - threshold[open_rows]
    attained = result.attained_low - threshold[open_rows]
    hit = np.flatnonzero(attained <= 0)
    return margins, (result.low_inputs[hit[0]] if hit.size else None)


def _falsified(network, spec, threshold, x, method, start, margins):
    """A falsified verdict after re-running the network on ``x``; None if ``x`` is no witness."""
    values = spec @ network(np.asarray(x, np.float64)[None])[0] - threshold
    if np.min(values) > 0:
        return None
    return Verdict("falsified", margins, method, time.monotonic() - start, np.array(x), values)


def verify(
    network,
    lower,
    upper,
    spec=None,
    threshold=0.0,
    method="alpha-crown",
    time_limit=None,
    attack=True,
    attack_steps=40,
    attack_starts=32,
    seed=0,
    **options,
):
    """Decide whether ``spec · y > threshold`` for every input ``x`` in ``[lower, upper]``.

    Args:
      network: a ``Network``.
      lower, upper: the input box.
      spec: ``[k, outputs]`` matrix ``C`` (``None``: the identity, i.e. every
        output above the threshold); see ``top_class_spec`` for "class i stays
        on top".
      threshold: a number, or one per row of ``spec``.
      method: bound method for step 1 (``"alpha-crown"``, ``"crown"``, ``"interval"``).
      time_limit: seconds for the exact method on rows left open by the
        bounds and the attack (``None``: skip it). ReLU/linear networks only;
        other activations skip this step.
      attack: run step 2 (the attack); ``False`` leaves falsification to the exact step.
      attack_steps, attack_starts: projected-gradient steps and random starts.
      seed: seed of the attack's random starts.
      **options: passed to the bound method (e.g. ``steps=`` for alpha-crown).

    Returns:
      A ``Verdict`` (``status``, ``margins``, ``counterexample``...).

    Raises:
      ValueError: bad box, spec, threshold, method or option.
    """
    from tf1norm.bounds import check_spec, output_bounds

    start = time.monotonic()
    spec = check_spec(network, np.eye(network.output_size) if spec is None else spec, "verify")
    threshold = _check_threshold(threshold, len(spec))
    if method in ("exact", "sample"):
        raise ValueError(
            f"verify: `method` must be a sound bound method (interval, crown, "
            f"alpha-crown); got {method!r}. Use time_limit= for the exact step."
        )
    low, _ = output_bounds(network, lower, upper, method, spec=spec, **options)
    margins = low - threshold
    open_rows = np.flatnonzero(margins <= 0)
    if not open_rows.size:
        return Verdict("proved", margins, method, time.monotonic() - start)
    lower, upper = (np.asarray(v, np.float64).reshape(-1) for v in (lower, upper))
    if attack:
        verdict = _attack_step(
            network,
            lower,
            upper,
            spec,
            threshold,
            open_rows,
            margins,
            start,
            (attack_steps, attack_starts, seed),
        )
        if verdict is not None:
            return verdict
    return _finish(
        network, lower, upper, spec, threshold, margins, open_rows, time_limit, method, start
    )


def _attack_step(network, lower, upper, spec, threshold, open_rows, margins, start, settings):
    """A falsified verdict if the attack finds a violating input, else None."""
    found, inputs = run_attack(network, lower, upper, spec, threshold, open_rows, *settings)
    if np.min(found) > 0:
        return None
    return _falsified(network, spec, threshold, inputs[np.argmin(found)], "attack", start, margins)


def _finish(network, lower, upper, spec, threshold, margins, open_rows, time_limit, method, start):
    """Step 3 (exact search within ``time_limit``) or an unknown verdict."""
    from tf1norm.bounds.milp import check_supported

    try:
        check_supported(network)
    except ValueError:
        time_limit = None
    if time_limit is None:
        return Verdict("unknown", margins, method, time.monotonic() - start)
    exact_margins, witness = _exact_step(
        network, lower, upper, spec, threshold, open_rows, time_limit
    )
    margins = margins.copy()
    margins[open_rows] = np.maximum(margins[open_rows], exact_margins)
    if witness is not None:
        verdict = _falsified(network, spec, threshold, witness, "exact", start, margins)
        if verdict is not None:
            return verdict
    status = "proved" if np.all(margins > 0) else "unknown"
    return Verdict(status, margins, "exact", time.monotonic() - start)
