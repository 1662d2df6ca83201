"""Verdicts for VNN-LIB properties: is any part of the unsafe set reachable?

A property (``vnnlib.VnnLibProperty``) is a list of *parts*: an input box
and a polytope ``{y : A·y <= b}`` of unsafe outputs. It holds (**proved**,
VNN-COMP's ``unsat``) when no part is reachable, and is violated
(**falsified**, ``sat``) by any input of a part's box whose output lies in
the part's polytope. ``verify_property`` decides the parts cheapest step
first and stops as soon as the verdict is known:

1. *attack*: projected sign-gradient descent on ``max_i (A·y − b)_i`` from
   the best of ~16k uniform samples, the box centre and (few inputs) its
   vertices, on every part (``property_attack``); a point with every row
   ``<= 0`` is re-run through the network and returned at once;
2. *bounds*: alpha-CROWN bounds of the part's own rows ``A·y``: a part is
   empty when some row's lower bound exceeds its ``b_i`` (that row alone is
   violated on the whole box);
3. *branch and bound* on the parts still open: input splitting
   (``property_search.PolytopeSearch``, joint reasoning over the rows) for at
   most ``INPUT_SPLIT_MAX_INPUTS`` inputs; above, ReLU splitting
   (``relu_search.ReluSearch``, joint over the rows) for a quarter of the
   part's time share, then one MILP per row (a part is empty when one row's
   exact minimum exceeds ``b_i``).

One deadline (``time_limit``) covers the whole call; at the deadline, or on
Ctrl-C, the verdict is **unknown** (``method`` says ``"time limit"`` or
``"interrupted"``).
"""

import time

import numpy as np

from tf1norm.bounds.property_attack import attack_part
from tf1norm.bounds.verdict import Verdict

INPUT_SPLIT_MAX_INPUTS = 16


def parts_of(prop):
    """``[(lower, upper, polytope)]``: every input box with each of its polytopes."""
    return [
        (case.lower, case.upper, polytope) for case in prop.cases for polytope in case.polytopes
    ]


def row_bounds(network, lower, upper, polytopes, method):
    """Per polytope, a sound lower bound of ``max_i (A·y − b)_i`` over the box.

    One bound computation covers the rows of every polytope (they share the box).
    """
    from tf1norm.bounds import output_bounds

    rows = [p.A for p in polytopes if len(p.b)]
    if not rows:
        return np.full(len(polytopes), -np.inf)
    low, _ = output_bounds(network, lower, upper, method, spec=np.concatenate(rows))
    margins, start = [], 0
    for polytope in polytopes:
        count = len(polytope.b)
        margins.append(np.max(low[start : start + count] - polytope.b) if count else -np.inf)
        start += count
    return np.array(margins, np.float64)


class _Run:
    """One call's state: the parts, their margins, the deadline and the progress callback."""

    def __init__(self, network, prop, time_limit, progress):
        self.network, self.start, self.progress = network, time.monotonic(), progress
        self.deadline = None if time_limit is None else self.start + time_limit
        self.parts = parts_of(prop)
        self.margins = np.full(len(self.parts), -np.inf)
        self.crown_seconds = 0.0

    def expired(self):
        return self.deadline is not None and time.monotonic() >= self.deadline

    def remaining(self):
        return None if self.deadline is None else max(self.deadline - time.monotonic(), 0.0)

    def affords(self, crown_passes):
        """Whether ``crown_passes`` times the last CROWN pass fits before the deadline."""
        remaining = self.remaining()
        return remaining is None or crown_passes * self.crown_seconds < remaining

    def report(self, text):
        if self.progress is not None:
            self.progress(text)

    def open_parts(self):
        return [k for k in range(len(self.parts)) if self.margins[k] <= 0]

    def verdict(self, status, method, x=None, part=None):
        verdict = Verdict(status, self.margins.copy(), method, time.monotonic() - self.start)
        if x is not None:
            x = np.clip(np.asarray(x, np.float64), self.parts[part][0], self.parts[part][1])
            y = self.network(x[None])[0]
            verdict.counterexample, verdict.counterexample_output = x, y
            verdict.counterexample_margins = self.parts[part][2].slack(y)
            verdict.part = part
        return verdict


def verify_property(network, prop, time_limit=None, method="alpha-crown", seed=0, progress=None):
    """Prove a VNN-LIB property of ``network`` or find a counterexample, within ``time_limit``.

    Args:
      network: a ``Network`` whose inputs/outputs are the property's ``X``/``Y``.
      prop: a ``VnnLibProperty`` (``from_vnnlib``).
      time_limit: seconds for the whole call (``None``: no limit).
      method: the bound method of step 2 (``"alpha-crown"``, ``"crown"``, ``"interval"``).
      seed: seed of the attack's random starts.
      progress: optional callable receiving a short text per step (the CLI's bar).

    Returns:
      A ``Verdict``: ``status`` ``"proved"`` / ``"falsified"`` / ``"unknown"``;
      ``margins`` one per part (sound lower bounds of ``max_i (A·y − b)_i``
      over its box, > 0 once the part is shown empty); when falsified,
      ``counterexample`` (x in the part's box), ``counterexample_output``
      (the network run on it in NumPy), ``counterexample_margins``
      (``A·y − b``, all <= 0) and ``part`` (its index in ``parts_of(prop)``).

    Raises:
      ValueError: the property's input or output count differs from the network's.
    """
    _check_sizes(network, prop)
    run = _Run(network, prop, time_limit, progress)
    try:
        with _one_blas_thread():
            for stage in (_attack_stage, _bound_stage, _search_stage):
                verdict = stage(run, method, seed)
                if verdict is not None:
                    return verdict
    except KeyboardInterrupt:
        return run.verdict("unknown", "interrupted")
    return run.verdict("unknown", "time limit")


def _one_blas_thread():
    """A context limiting BLAS to one thread (when ``threadpoolctl`` is installed).

    The search multiplies many small matrices; OpenBLAS's threads cost more
    than they save there, and on a busy 2-core machine a 500×50 by 50×50
    product took 2.6 ms with two threads against 0.14 ms with one.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _check_sizes(network, prop):
    """The property fits the network; every box is finite and inside its input domain."""
    from tf1norm.bounds.network import check_box

    if (prop.num_inputs, prop.num_outputs) != (network.input_size, network.output_size):
        raise ValueError(
            f"verify: the property {prop.path!r} declares {prop.num_inputs} inputs "
            f"and {prop.num_outputs} outputs but the network has "
            f"{network.input_size} and {network.output_size}; use the network "
            "the property was written for."
        )
    for case in prop.cases:
        check_box(network, case.lower, case.upper)


def _attack_stage(run, method, seed):
    run.report("attack")
    for k, (lower, upper, polytope) in enumerate(run.parts):
        x = attack_part(run.network, lower, upper, polytope, seed=seed + k)
        if x is not None:
            return run.verdict("falsified", "attack", x, k)
        if run.expired():
            return run.verdict("unknown", "time limit")
    return None


def _bound_stage(run, method, seed):
    """Bounds of every open part's rows, one computation per input box."""
    by_box = {}
    for k in run.open_parts():
        by_box.setdefault(id(run.parts[k][0]), []).append(k)
    for parts in by_box.values():
        lower, upper, _ = run.parts[parts[0]]
        polytopes = [run.parts[k][2] for k in parts]
        for step in _bound_methods(method):
            if step == method and method != "crown" and not run.affords(ALPHA_CROWN_COST):
                break  # alpha-CROWN cannot be interrupted; it would overrun the deadline
            run.report(f"{step} on {len(parts)} parts")
            started = time.monotonic()
            run.margins[parts] = np.maximum(
                run.margins[parts], row_bounds(run.network, lower, upper, polytopes, step)
            )
            run.crown_seconds = time.monotonic() - started
            if np.all(run.margins[parts] > 0) or run.expired():
                break
        if run.expired():
            return run.verdict("unknown", "time limit")
    return None if run.open_parts() else run.verdict("proved", method)


ALPHA_CROWN_COST = 40  # alpha-CROWN's time in units of one CROWN pass (20 steps, both sides)


def _bound_methods(method):
    """CROWN first (cheap, and it times the network), then ``method`` if different."""
    return (
        ["crown"] + ([method] if method not in ("crown", "interval") else [])
        if method != "interval"
        else ["interval"]
    )


def _search_stage(run, method, seed):
    from tf1norm.bounds.milp import check_supported

    try:
        check_supported(run.network)
    except ValueError:
        return run.verdict("unknown", method)  # only the bounds apply to these activations
    for k in run.open_parts():
        lower, upper, polytope = run.parts[k]
        search = _input_split if lower.size <= INPUT_SPLIT_MAX_INPUTS else _relu_split
        status, x, margin = search(run, k, lower, upper, polytope)
        if status == "falsified":
            return run.verdict("falsified", "branch and bound", x, k)
        if status != "proved":
            return run.verdict("unknown", "time limit" if run.expired() else "branch and bound")
        run.margins[k] = max(run.margins[k], margin)
    return run.verdict("proved", "branch and bound")


def _input_split(run, k, lower, upper, polytope):
    from tf1norm.bounds.property_search import PolytopeSearch

    search = PolytopeSearch(run.network, lower, upper, polytope.A, polytope.b)
    status, x = search.run(
        run.deadline, lambda text: run.report(f"part {k + 1}/{len(run.parts)}: {text}")
    )
    return status, x, search.margin


RELU_SPLIT_SHARE = 0.25  # of a part's time share for ReLU splitting; the MILP gets the rest


def _relu_split(run, k, lower, upper, polytope):
    """ReLU-splitting branch and bound for a share of the part's time, then one MILP per row.

    The part's share is the remaining time over the open parts from ``k``
    on. On MNIST-FC (2-core CPU) HiGHS's MILP closed parts that the CROWN-bounded
    ReLU search (no beta-CROWN) left open, so the search only gets a first share.
    """
    from tf1norm.bounds.relu_search import ReluSearch

    search = ReluSearch(
        run.network, lower, upper, polytope.A, polytope.b, root_pre=_root_bounds(run, lower, upper)
    )
    deadline = run.deadline
    if deadline is not None:
        open_parts = max(sum(1 for j in run.open_parts() if j >= k), 1)
        deadline = time.monotonic() + RELU_SPLIT_SHARE * run.remaining() / open_parts
    status, x = search.run(
        deadline, lambda text: run.report(f"part {k + 1}/{len(run.parts)}: {text}")
    )
    if status != "unknown" or run.expired():
        return status, x, search.margin
    return _milp_rows(run, k, lower, upper, polytope)


def _root_bounds(run, lower, upper):
    """alpha-CROWN pre-activation bounds of the box, once per box (None if unaffordable)."""
    from tf1norm.bounds.alpha_crown import optimized_pre_activation_bounds

    cache = run.__dict__.setdefault("root_bounds", {})
    if id(lower) not in cache:
        affordable = run.affords(ALPHA_CROWN_COST)
        cache[id(lower)] = (
            optimized_pre_activation_bounds(run.network, lower, upper) if affordable else None
        )
    return cache[id(lower)]


def _milp_rows(run, k, lower, upper, polytope):
    """One MILP per row: the part is empty if some row's minimum exceeds its ``b_i``."""
    from tf1norm.bounds.box_lp import LP_TOLERANCE
    from tf1norm.bounds.exact import _big_m_bounds
    from tf1norm.bounds.milp import MilpProblem
    from tf1norm.bounds.network import Dense, Network

    objective = Network(list(run.network.layers) + [Dense(-polytope.A.T, polytope.b)])
    problem = MilpProblem(objective, lower, upper, _big_m_bounds(objective, lower, upper, False))
    for row in range(len(polytope.b)):
        run.report(f"part {k + 1}/{len(run.parts)}: MILP row {row + 1}/{len(polytope.b)}")
        bound, x, finished = problem.maximize(np.eye(len(polytope.b))[row], run.remaining())
        if -bound > LP_TOLERANCE * np.linalg.norm(polytope.A[row]):  # HiGHS's tolerances ~1e-7
            return "proved", None, -bound
        if x is not None and polytope.contains(run.network(np.clip(x, lower, upper)[None])[0]):
            return "falsified", np.clip(x, lower, upper), None
        if run.expired():
            return "unknown", None, None
    return "unknown", None, None
