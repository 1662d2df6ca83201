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

from tf1norm.bounds.verdict import Verdict, run_attack


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
    upper=None,
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

    ``verify(network, prop, time_limit=S)`` with a ``VnnLibProperty`` (from
    ``from_vnnlib``) in place of ``lower`` decides that property instead: see
    ``property_verify.verify_property`` (one deadline for the whole call, a
    stop as soon as the verdict is known; ``progress=`` a callable).

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
    from tf1norm.bounds.vnnlib import VnnLibProperty

    if isinstance(lower, VnnLibProperty):
        from tf1norm.bounds.property_verify import verify_property

        return verify_property(
            network, lower, time_limit, method, seed, options.pop("progress", None)
        )
    if upper is None:
        raise TypeError(
            "verify: give `lower` and `upper` (an input box) or a VnnLibProperty "
            "as the second argument; got no `upper`."
        )
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
    from tf1norm.bounds.box_lp import LP_TOLERANCE
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
    # the exact step's minima come from HiGHS (tolerances ~1e-7): prove beyond them
    tolerance = LP_TOLERANCE * np.linalg.norm(spec[open_rows], axis=1)
    proved = np.all(margins > 0) and np.all(exact_margins > tolerance)
    return Verdict("proved" if proved else "unknown", margins, "exact", time.monotonic() - start)
