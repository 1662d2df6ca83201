"""Is a polytope of outputs reachable from an input box? Input-splitting branch and bound.

The question is whether some ``x`` in ``[lower, upper]`` has ``A·f(x) <= b``
(every row), i.e. whether ``v(x) = max_i (A·f(x) − b)_i <= 0`` somewhere.
The search splits the input box and, on each sub-box:

1. *Bounds*: batched CROWN (``box_crown.BoxBounds``) gives, for every row, a
   linear lower bound ``z_i(x) >= g_i·x + h_i`` valid on the box. The box is
   **closed** when some row's bound is positive over the whole box (that row
   is violated everywhere, so the conjunction is never met).
2. *Joint reasoning*: rows that are each satisfiable on the box can still
   exclude each other. For any ``λ`` in the simplex, ``Σ λ_i z_i(x) > 0`` on
   the box rules out all ``z_i <= 0`` at once; ``λ`` is improved by a few
   steps of exponentiated supergradient ascent on
   ``min over the box of Σ λ_i (g_i·x + h_i)`` (every ``λ`` is sound).
3. *Candidates*: the network is run at each box's centre, at the corners
   minimizing each row's linear bound and at the minimizer of the ``λ``
   combination; a point with every row ``<= 0`` is a **counterexample**.
4. A box whose ReLUs are all stable is affine on the box, so the linear
   bounds are exact: one small LP decides it (empty, or a counterexample).
5. Otherwise the box is split in halves along the side with the largest
   ``|g_i|·width`` for the row ``i`` closest to closing the box (plus a
   share of its width, so no side starves). On the ACAS Xu benchmark this
   row's slope needed 4k boxes where the ``λ``-combined slope needed 30k
   (network 1_1, property 3), and no fewer elsewhere.

Boxes are explored best-first, the most violated bound first (so
counterexamples surface early); the search stops as soon as it is decided.
"""

import heapq
import itertools
import time

import numpy as np

from tf1norm.bounds.box_crown import BoxBounds
from tf1norm.bounds.network import Activation, Add, Dense, Network
from tf1norm.bounds.property_attack import attack_part
from tf1norm.bounds.vnnlib import Polytope

LAMBDA_STEPS = 12
LP_TOLERANCE = 1e-6  # depth below which the leaf LP's infeasibility is trusted


class _Box:
    __slots__ = ("priority", "order", "lower", "upper", "pre", "direction", "unstable")

    def __init__(self, priority, order, lower, upper, pre, direction, unstable):
        self.priority, self.order, self.lower, self.upper = priority, order, lower, upper
        self.pre, self.direction, self.unstable = pre, direction, unstable

    def __lt__(self, other):
        return (self.priority, self.order) < (other.priority, other.order)


def _row_minima(slope, intercept, lower, upper):
    """``[B, m]``: each row's linear bound ``g_i·x + h_i`` minimized over its box."""
    corner = np.where(slope > 0, lower[:, None], upper[:, None])
    return np.einsum("bmn,bmn->bm", slope, corner) + intercept


def combined_bound(slope, intercept, lower, upper, steps=LAMBDA_STEPS):
    """Best ``λ`` (simplex) for ``min over the box of Σ λ_i (g_i·x + h_i)``, batched.

    Args:
      slope: ``[B, m, n]`` rows ``g_i``; intercept: ``[B, m]`` ``h_i``;
      lower, upper: ``[B, n]`` boxes.

    Returns:
      ``(value [B], lam [B, m], x [B, n])``: the best sound lower bound found,
      its weights and the box point minimizing that combination.
    """
    rows = slope.shape[1]
    own = _row_minima(slope, intercept, lower, upper)
    lam = np.full(intercept.shape, 1.0 / rows)
    lam[np.arange(len(lam)), np.argmax(own, axis=1)] += 1.0
    lam /= lam.sum(axis=1, keepdims=True)
    best = np.full(len(lam), -np.inf)
    best_lam, best_x = lam.copy(), (lower + upper) / 2
    scale = np.maximum(np.abs(own).max(axis=1, keepdims=True), 1e-12)
    for step in range(steps if rows > 1 else 1):
        direction = np.einsum("bm,bmn->bn", lam, slope)
        x = np.where(direction > 0, lower, upper)
        per_row = np.einsum("bmn,bn->bm", slope, x) + intercept
        value = np.sum(lam * per_row, axis=1)
        better = value > best
        best[better], best_lam[better], best_x[better] = value[better], lam[better], x[better]
        lam = lam * np.exp(np.clip(2.0 * (0.7**step) * per_row / scale, -30, 30))
        lam /= lam.sum(axis=1, keepdims=True)
    return best, best_lam, best_x


class PolytopeSearch:
    """Decide whether ``{x in [lower, upper] : A·network(x) <= b}`` is empty.

    Args:
      network: a ReLU/linear ``Network``.
      lower, upper: float64 input box.
      A, b: the polytope ``[m, outputs]``, ``[m]`` (``m >= 1``).
      batch: boxes bounded per batched-CROWN call.

    Attributes after ``run``: ``boxes`` (bounded), ``lps`` (leaf LPs solved),
    ``margin`` (a sound lower bound of ``max_i (A·y − b)_i`` over every box
    closed so far: positive once the whole box is closed).
    """

    def __init__(self, network, lower, upper, A, b, batch=1024):
        self.network, self.A, self.b = network, np.asarray(A, np.float64), np.asarray(b)
        self.lower, self.upper, self.batch = lower, upper, batch
        # w = b − A·y: BoxBounds bounds w from above, i.e. z = A·y − b from below
        self.objective = Network(list(network.layers) + [Dense(-self.A.T, self.b)])
        self.width = np.where(upper > lower, upper - lower, 1.0)
        self.heap, self.order = [], itertools.count()
        self.boxes = self.lps = 0
        self.margin = np.inf
        self.stuck = False

    def run(self, deadline=None, progress=None):
        """``("proved", None)``, ``("falsified", x)`` or ``("unknown", None)`` at the deadline."""
        found = self._bound(self.lower[None], self.upper[None], None)
        while found is None and self.heap:
            if deadline is not None and time.monotonic() >= deadline:
                return "unknown", None
            found = self._step()
            if progress is not None:
                progress(f"{self.boxes} boxes, {len(self.heap)} open")
        if found is not None:
            return "falsified", found
        return ("unknown", None) if self.stuck else ("proved", None)

    def _step(self):
        taken = []
        for _ in range(min(self.batch, len(self.heap))):
            box = heapq.heappop(self.heap)
            if box.unstable == 0:
                found = self._solve_affine(box)
                if found is not None:
                    return found
            else:
                taken.append(box)
        if not taken:
            return None
        lowers, uppers, pre = self._split(taken)
        return self._bound(lowers, uppers, pre)

    def _bound(self, lowers, uppers, parent_pre):
        """Bound a batch of boxes; close, queue, or return a counterexample found on them."""
        bounds = BoxBounds(self.objective, lowers, uppers, parent_pre)
        self.boxes += len(lowers)
        slope, intercept = -bounds.slope, -bounds.intercept
        value, _, x_lam = combined_bound(slope, intercept, lowers, uppers)
        candidates = np.concatenate(
            [bounds.argmax.reshape(-1, lowers.shape[1]), (lowers + uppers) / 2, x_lam]
        )
        found = self._counterexample(candidates)
        if found is None:
            found = self._attack_best(lowers, uppers, value)
        if found is not None:
            return found
        unstable = bounds.unstable_counts()
        direction = slope[
            np.arange(len(slope)), np.argmax(_row_minima(slope, intercept, lowers, uppers), axis=1)
        ]
        for i in range(len(lowers)):
            if value[i] > 0:
                self.margin = min(self.margin, value[i])
                continue
            pre = {k: (l[i], u[i]) for k, (l, u) in bounds.pre.items()}
            heapq.heappush(
                self.heap,
                _Box(
                    value[i], next(self.order), lowers[i], uppers[i], pre, direction[i], unstable[i]
                ),
            )
        return None

    def _attack_best(self, lowers, uppers, value, boxes=8):
        """A short attack inside the ``boxes`` sub-boxes with the most violated bounds."""
        polytope = Polytope(self.A, self.b)
        for i in np.argsort(value)[:boxes]:
            if value[i] > 0:
                break
            x = attack_part(
                self.network,
                lowers[i],
                uppers[i],
                polytope,
                steps=10,
                starts=4,
                seed=self.boxes + int(i),
                samples=256,
                walks=0,
            )
            if x is not None:
                return x
        return None

    def _counterexample(self, points):
        """A point with every row ``<= 0`` (checked by running the network), or None."""
        slack = self.network(points) @ self.A.T - self.b
        inside = np.flatnonzero(np.all(slack <= 0, axis=1))
        return points[inside[0]] if inside.size else None

    def _split(self, boxes):
        """Both halves of every box, cut along the side where its bound changes most.

        The score of side ``d`` is ``|g_d|·width_d`` for the box's splitting
        direction ``g`` (see ``_bound``) plus a tenth of the largest such term
        over the original box scaled by how much of side ``d`` is left, so a
        side the linear bound ignores is still split once the others shrink.
        Returns ``(lowers, uppers, parent pre-activation bounds)`` of the halves.
        """
        lower, upper = np.stack([b.lower for b in boxes]), np.stack([b.upper for b in boxes])
        direction = np.abs(np.stack([b.direction for b in boxes]))
        width = upper - lower
        floor = 0.1 * np.max(direction * self.width, axis=1, keepdims=True)
        score = direction * width + (floor + 1e-300) * width / self.width
        tiny = np.all(width <= 1e-12 * self.width, axis=1)
        if np.any(tiny):
            self.stuck = True  # rounding-level boxes still open: give up on them, soundly
        keep = np.flatnonzero(~tiny)
        side = np.argmax(score[keep], axis=1)
        middle = (lower[keep, side] + upper[keep, side]) / 2
        rows = np.repeat(keep, 2)
        child_lower, child_upper = lower[rows], upper[rows]
        halves = np.arange(0, 2 * keep.size, 2)
        child_upper[halves, side] = middle
        child_lower[halves + 1, side] = middle
        parent = {
            k: tuple(np.stack([boxes[r].pre[k][s] for r in rows]) for s in (0, 1))
            for k in boxes[0].pre
        }
        return child_lower, child_upper, parent

    def _solve_affine(self, box):
        """Every ReLU stable: ``A·y − b`` is affine on the box; one LP decides the box.

        The LP maximizes the depth ``t`` of a point inside the polytope
        (``A_i·y + t·|A_i| <= b_i``): a negative optimum (beyond the solver's
        tolerance) closes the box, with margin ``-t·min_i |A_i|``; a
        non-negative one gives a point strictly inside unless ``t`` is ~0, so
        running the network there confirms it despite rounding.
        """
        from scipy.optimize import linprog

        self.lps += 1
        kernel, bias = _affine_map(self.network, box.pre)
        rows, rhs = self.A @ kernel, self.b - self.A @ bias  # kernel is [outputs, n]
        norms = np.linalg.norm(rows, axis=1)
        n = box.lower.size
        result = linprog(
            np.concatenate([np.zeros(n), [-1.0]]),
            A_ub=np.hstack([rows, norms[:, None]]),
            b_ub=rhs,
            bounds=list(zip(box.lower, box.upper)) + [(None, 1.0)],
            method="highs",
        )
        if result.status == 2:  # a row constant on the box is violated
            return None
        if result.status == 0:
            depth = result.x[-1]
            if depth < -LP_TOLERANCE:  # no point of the box reaches the polytope
                smallest = norms[norms > 0].min()
                self.margin = min(self.margin, -(depth + LP_TOLERANCE) * smallest)
                return None
            found = self._counterexample(np.clip(result.x[:n], box.lower, box.upper)[None])
            if found is not None:
                return found
        self.stuck = True
        return None


def _affine_map(network, pre):
    """``(kernel [outputs, n], bias)``: the network with every ReLU fixed on or off.

    ``pre`` holds each activation's pre-activation bounds on a box where none
    changes sign, so the network is this affine map on the whole box. It is
    read off by running the masked network on the origin and the unit
    vectors (exact up to rounding, no small differences).
    """
    points = np.vstack([np.zeros(network.input_size), np.eye(network.input_size)])
    outputs = {-1: points}
    for k, layer in enumerate(network.layers):
        below = outputs[k - 1]
        if isinstance(layer, Add):
            outputs[k] = below + outputs[layer.source]
        elif isinstance(layer, Activation):
            outputs[k] = below * (pre[k][0] >= 0) if k in pre else layer(below)
        else:
            outputs[k] = layer(below)
    values = outputs[len(network.layers) - 1]
    return (values[1:] - values[0]).T, values[0]
