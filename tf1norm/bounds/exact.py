"""Exact output ranges that finish: branch and bound, MILP, a time limit and progress.

``exact(network, lower, upper)`` returns the true range of every output (or of
every row of ``spec @ y``) of a ReLU/linear network over an input box:

* linear networks: the composed affine map at its best box corners;
* ``algorithm="bab"`` (default when the input has at most 16 features):
  branch and bound on the input box with batched CROWN bounds and MILP leaves
  (see ``tf1norm.bounds.bab``);
* ``algorithm="milp"``: one big-M MILP per bound (SciPy's HiGHS ``milp``)
  whose M come from CROWN ∩ IBP pre-activation bounds (∩ alpha-CROWN's
  ``optimized_pre_activation_bounds`` with ``alpha_crown_big_m=True``);
  stable ReLUs are substituted away (see ``tf1norm.bounds.milp``).

Each bound is labelled *exact* when it is within ``tolerance·(1 + |v|)`` of a
value ``v`` the network attains at a concrete input (a witness, checked by
running the network). After ``time_limit`` seconds, or on Ctrl-C
(KeyboardInterrupt is caught; the function returns), the bounds found so far
are returned: always sound, labelled ``"time limit"`` or ``"interrupted"``
where they are not exact. The call never hangs past the limit by more than
one MILP's time-limit rounding.
"""

import time

import numpy as np

from tf1norm.bounds.exact_result import ExactRange, bound_spec
from tf1norm.bounds.milp import MilpProblem, check_supported
from tf1norm.bounds.network import Activation, Dense, Network

ALGORITHMS = ("auto", "bab", "milp")
BAB_MAX_INPUTS = 16
# The largest |lower|, |upper| the exact methods accept. HiGHS treats any bound or
# coefficient of magnitude >= 1e20 as infinite (its `infinite_bound` option) and its
# feasibility tolerances (1e-7 primal, 1e-6 integrality) are absolute, so a big-M of
# size B lets a relaxed ReLU leak ~1e-6·B. A box within ±1e15 keeps the big-M
# constants of a network with weights up to ~1e5 below HiGHS's infinity; a ±1e30 box
# gave "HiGHS Status 2: Model error".
SOLVER_BOX_LIMIT = 1e15


def solver_box_problem(lower, upper, names=("`lower`", "`upper`")):
    """None, or why the exact methods refuse the box (a corner beyond ``SOLVER_BOX_LIMIT``)."""
    for name, corner in zip(names, (lower, upper)):
        huge = np.abs(np.asarray(corner, np.float64)) > SOLVER_BOX_LIMIT
        if np.any(huge):
            feature = int(np.argmax(huge))
            return (
                f"{name} must lie within ±{SOLVER_BOX_LIMIT:g} for the exact methods; got "
                f"{corner[feature]:g} for feature {feature}. The MILP solver (HiGHS) "
                "treats magnitudes of 1e20 as infinite and its tolerances are absolute. "
                "Rescale the inputs (e.g. normalize the data), or use the crown or "
                "interval method, which have no such limit"
            )
    return None


def _with_objectives(network, spec):
    """``network`` followed by a linear layer computing ``[spec·y; −spec·y]``."""
    objectives = np.concatenate([spec, -spec])
    return Network(list(network.layers) + [Dense(objectives.T)])


def _affine_map(network):
    """``(kernel, bias)`` of the network if it has no nonlinear activation, else ``None``."""
    if any(isinstance(layer, Activation) and layer.kind != "linear" for layer in network.layers):
        return None
    bias = network(np.zeros((1, network.input_size)))[0]
    kernel = network(np.eye(network.input_size)) - bias
    return kernel, bias


def _closed_form(objective_net, lower, upper, kernel, bias):
    corners = np.where(kernel.T > 0, upper, lower)  # the maximizing corner per objective
    values = np.einsum("jn,nj->j", corners, kernel) + bias
    return values, values.copy(), corners, "exact"


def _milp_maxima(
    objective_net, lower, upper, deadline, progress, should_stop, use_alpha_crown=False
):
    """Each objective's maximum by one MILP; sound bounds when stopped early."""
    pre = _big_m_bounds(objective_net, lower, upper, use_alpha_crown)
    problem = MilpProblem(objective_net, lower, upper, pre)
    count = objective_net.output_size
    from tf1norm.bounds.box_crown import BoxBounds

    crown = BoxBounds(
        objective_net,
        lower[None],
        upper[None],
        {k: (l[None], u[None]) for k, (l, u) in pre.items()},
    )
    bound, best = crown.upper_bound[0].copy(), np.full(count, -np.inf)
    witness, status = np.tile((lower + upper) / 2, (count, 1)), "exact"
    try:
        for j in range(count):
            if (deadline is not None and time.monotonic() >= deadline) or (
                should_stop is not None and should_stop()
            ):
                status = "interrupted" if should_stop and should_stop() else "time limit"
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            value, x, finished = problem.maximize(np.eye(count)[j], remaining)
            bound[j] = min(bound[j], value)
            if x is not None:
                witness[j] = np.clip(x, lower, upper)
                best[j] = objective_net(witness[j][None])[0, j]
            status = status if finished else "time limit"
            _tick(progress, j + 1, count)
    except KeyboardInterrupt:
        status = "interrupted"
    return bound, best, witness, status


def _big_m_bounds(network, lower, upper, use_alpha_crown):
    """Pre-activation bounds for big-M: CROWN ∩ IBP, ∩ alpha-CROWN's if ``use_alpha_crown``."""
    from tf1norm.bounds.box_crown import BoxBounds

    bounds = BoxBounds(network, lower[None], upper[None])
    pre = {k: (l[0], u[0]) for k, (l, u) in bounds.pre.items()}
    if not use_alpha_crown:
        return pre
    try:
        from tf1norm.bounds.alpha_crown import optimized_pre_activation_bounds
    except ImportError:
        return pre
    try:
        optimized = optimized_pre_activation_bounds(network, lower, upper)
    except Exception:  # noqa: BLE001  (a tighter M is an optimization; CROWN's are sound)
        return pre
    return {
        k: (
            np.maximum(l, optimized[k][0]),
            np.maximum(np.minimum(u, optimized[k][1]), np.maximum(l, optimized[k][0])),
        )
        if k in optimized
        else (l, u)
        for k, (l, u) in pre.items()
    }


def _tick(progress, done, total):
    if progress is None:
        return
    if hasattr(progress, "update") and hasattr(progress, "set_postfix"):
        progress.total, progress.n = total, done
        progress.refresh()
    else:
        progress(done, total)


def _choose(algorithm, network):
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"exact: `algorithm` must be one of {', '.join(ALGORITHMS)}; got {algorithm!r}."
        )
    if algorithm == "auto":
        return "bab" if network.input_size <= BAB_MAX_INPUTS else "milp"
    return algorithm


def _check_options(time_limit, tolerance):
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit >= 0):
        raise ValueError(
            f"exact: `time_limit` must be a number of seconds >= 0 or None (no "
            f"limit); got {time_limit!r}."
        )
    if not (isinstance(tolerance, (int, float)) and 0 < tolerance < 1):
        raise ValueError(f"exact: `tolerance` must be in (0, 1), e.g. 1e-6; got {tolerance!r}.")


def exact(
    network,
    lower,
    upper,
    spec=None,
    time_limit=None,
    progress=None,
    algorithm="auto",
    tolerance=1e-6,
    should_stop=None,
    alpha_crown_big_m=False,
    **search_options,
):
    """Exact range of ``spec @ y`` over the box, or the best sound bounds in the time given.

    Args:
      network: a ``Network`` of linear layers, ``Add`` layers and ReLU (or
        linear) activations.
      lower, upper: the input box (float64 vectors).
      spec: ``[k, outputs]`` matrix; bounds of ``spec @ y`` (default: identity).
      time_limit: seconds (``None``: no limit); on expiry the bounds so far are
        returned, sound, labelled ``"time limit"``.
      progress: ``progress(done, total)`` callable or a tqdm bar (its total
        and count follow the bounds settled; the postfix shows the open gap).
      algorithm: ``"auto"`` (``"bab"`` up to 16 inputs, else ``"milp"``),
        ``"bab"`` or ``"milp"``.
      tolerance: a bound is exact when within ``tolerance·(1 + |v|)`` of an
        attained value ``v`` (default 1e-6).
      should_stop: optional callable polled between steps (e.g. a
        ``threading.Event().is_set``); when true the search stops as on Ctrl-C.
      alpha_crown_big_m: MILP only: intersect the big-M bounds with
        alpha-CROWN's ``optimized_pre_activation_bounds`` (tighter M, a few
        seconds of TensorFlow first; off by default).
      **search_options: ``leaf_unstable``, ``batch`` for ``BranchAndBound``.

    Returns:
      An ``ExactRange``: unpacks as ``low, high``; ``.exact`` (bool per row),
      ``.status`` (``"exact"``, ``"time limit"`` or ``"interrupted"`` per row),
      ``.low_inputs``/``.high_inputs`` (witness inputs), ``.attained_low`` and
      ``.attained_high`` (the network's values there), ``.seconds``.

    Raises:
      ValueError: an activation other than ReLU/linear, a box corner beyond
        ``SOLVER_BOX_LIMIT`` (±1e15), a bad ``spec``, ``time_limit``,
        ``tolerance`` or ``algorithm``.
    """
    start = time.monotonic()
    _check_options(time_limit, tolerance)
    problem = solver_box_problem(lower, upper)
    if problem:
        raise ValueError(f"exact: {problem}.")
    spec = bound_spec(network, spec)
    check_supported(network)
    objective_net = _with_objectives(network, spec)
    deadline = None if time_limit is None else start + time_limit
    affine = _affine_map(objective_net)
    if affine is not None:
        found = _closed_form(objective_net, lower, upper, *affine)
    elif _choose(algorithm, network) == "bab":
        from tf1norm.bounds.bab import BranchAndBound

        search = BranchAndBound(objective_net, lower, upper, tolerance, **search_options)
        found = search.run(deadline, should_stop, progress)
    else:
        found = _milp_maxima(
            objective_net, lower, upper, deadline, progress, should_stop, alpha_crown_big_m
        )
    return ExactRange.from_maxima(*found, tolerance=tolerance, seconds=time.monotonic() - start)


def milp(network, lower, upper, spec=None, time_limit=None, progress=None, **options):
    """``exact(..., algorithm="milp")``: one big-M MILP per bound (see ``exact``)."""
    return exact(
        network,
        lower,
        upper,
        spec=spec,
        time_limit=time_limit,
        progress=progress,
        algorithm="milp",
        **options,
    )
