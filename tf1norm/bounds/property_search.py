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
4. A box with at most ``LEAF_UNSTABLE`` unstable ReLUs first tries one LP
   (``box_lp``: the triangle relaxation of those ReLUs; exact when none is
   unstable): it closes the box or gives a candidate to re-run. A box with
   at most ``MILP_UNSTABLE`` unstable ReLUs and a bound within ``MILP_GAP``
   of 0 that is still open is decided exactly by one MILP feasibility
   problem over the whole conjunction
   (``milp.MilpProblem.find_input``, big-M constants from the box's own
   pre-activation bounds, at most ``MILP_SECONDS``). Near the margin CROWN
   converges slowly: on ACAS Xu property 2, nets 3_3 and 4_2, thousands of
   boxes stayed open at -0.002 after 116 s, yet each of 26 sampled ones was
   infeasible for a MILP in 1-16 ms (exact margins 0.001-0.017); with the MILP both are proved in
   23 s and 27 s (2-core AMD EPYC, shared).
5. Otherwise the box is split in halves. With ``lookahead`` (default) both
   halves along every side are bounded in the same batched call and the cut
   leaving the least violation is kept (``_best_pairs``); without, or when
   no cut gains, the side with the largest ``|g_i|·width`` for the row ``i``
   closest to closing the box (plus a share of its width, so no side
   starves). On ACAS Xu (2-core AMD EPYC) the lookahead and the leaf LP took
   net 2_7 property 1 from 22.9 s to 1.5 s and proved net 4_9 property 1 in
   6 s (unknown after 30 s before).

Boxes are explored best-first, the most violated bound first (so
counterexamples surface early); the search stops as soon as it is decided.
"""

import heapq
import itertools
import time

import numpy as np

from tf1norm.bounds.box_crown import BoxBounds
from tf1norm.bounds.box_lp import LP_TOLERANCE, deepest_point
from tf1norm.bounds.network import Dense, Network
from tf1norm.bounds.property_attack import attack_part
from tf1norm.bounds.vnnlib import Polytope

LAMBDA_STEPS = 12
LOOKAHEAD_SIDES = 8  # sides per box the lookahead bounds at most (the best by slope score)
LEAF_UNSTABLE = 12  # boxes with at most this many unstable ReLUs try the leaf LP first
MILP_UNSTABLE = 32  # boxes with at most this many unstable ReLUs are decided by a MILP
MILP_GAP = 0.02  # ... and whose bound is within this of 0 (the MILP is slow far from it)
MILP_SECONDS = 1.0  # time cap of one leaf MILP (the box is split when it is reached)


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


def _wants_milp(box):
    """Whether a box goes to the MILP: few unstable ReLUs and a bound within ``MILP_GAP`` of 0.

    The MILP's time grows with the gap as well as with the unstable count:
    on ACAS Xu (3_3 property 2, 1_1 property 5) boxes with bounds below
    -0.05 took 140-220 ms each, those within 0.003 of 0 took 5 ms.
    """
    return box.unstable <= MILP_UNSTABLE and box.priority >= -MILP_GAP


class PolytopeSearch:
    """Decide whether ``{x in [lower, upper] : A·network(x) <= b}`` is empty.

    Args:
      network: a ReLU/linear ``Network``.
      lower, upper: float64 input box.
      A, b: the polytope ``[m, outputs]``, ``[m]`` (``m >= 1``).
      batch: boxes bounded per batched-CROWN call.

    Attributes after ``run``: ``boxes`` (bounded), ``lps`` (leaf LPs solved),
    ``milps`` (leaf MILPs solved),
    ``margin`` (a sound lower bound of ``max_i (A·y − b)_i`` over every box
    closed so far: positive once the whole box is closed).
    """

    def __init__(self, network, lower, upper, A, b, batch=1024, lookahead=True):
        self.network, self.A, self.b = network, np.asarray(A, np.float64), np.asarray(b)
        self.lower, self.upper, self.batch = lower, upper, batch
        self.lookahead = lookahead
        # w = b − A·y: BoxBounds bounds w from above, i.e. z = A·y − b from below
        self.objective = Network(list(network.layers) + [Dense(-self.A.T, self.b)])
        self.width = np.where(upper > lower, upper - lower, 1.0)
        self.heap, self.order = [], itertools.count()
        self.boxes = self.lps = self.milps = 0
        self.margin = np.inf
        self.stuck = False
        self.deadline = None

    def run(self, deadline=None, progress=None):
        """``("proved", None)``, ``("falsified", x)`` or ``("unknown", None)`` at the deadline."""
        self.deadline = deadline
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
        count = self.batch // (2 * self._sides()) if self.lookahead else self.batch
        for _ in range(min(max(count, 1), len(self.heap))):
            box = heapq.heappop(self.heap)
            if box.unstable <= LEAF_UNSTABLE or _wants_milp(box):
                found, open_ = self._solve_leaf(box)
                if found is not None:
                    return found
                if not open_:
                    continue
            taken.append(box)
        if not taken:
            return None
        if self.lookahead:
            fallback = self._slope_scores(taken)
            sides = np.argsort(-fallback, axis=1, kind="stable")[:, : self._sides()]
            lowers, uppers, pre = self._every_split(taken, sides)
            inherited = np.repeat([b.priority for b in taken], 2 * sides.shape[1])
            fallback = np.take_along_axis(fallback, sides, axis=1)
            return self._bound(lowers, uppers, pre, (inherited, fallback, sides))
        lowers, uppers, pre = self._split(taken)
        return self._bound(lowers, uppers, pre)

    def _bound(self, lowers, uppers, parent_pre, lookahead=None):
        """Bound a batch of boxes; close, queue, or return a counterexample found on them.

        With ``lookahead = (inherited, fallback, sides)`` (each box's parent
        bound, valid on it too, the parents' ``_slope_scores`` and the sides
        tried), the batch holds both halves of every box along each of its
        sides (``_every_split``); only the best cut's pair is kept
        (``_best_pairs``).
        """
        bounds = BoxBounds(self.objective, lowers, uppers, parent_pre)
        self.boxes += len(lowers)
        slope, intercept = -bounds.slope, -bounds.intercept
        value, _, x_lam = combined_bound(slope, intercept, lowers, uppers)
        if lookahead is not None:
            value = np.maximum(value, lookahead[0])
            keep = self._best_pairs(value, lowers, uppers, *lookahead)
            lowers, uppers, value, x_lam = lowers[keep], uppers[keep], value[keep], x_lam[keep]
            slope, intercept = slope[keep], intercept[keep]
            bounds.argmax = bounds.argmax[keep]
            bounds.lower = bounds.lower[keep]
            bounds.pre = {k: (l[keep], u[keep]) for k, (l, u) in bounds.pre.items()}
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
        score = self._slope_scores(boxes)
        tiny = np.all(upper - lower <= 1e-12 * self.width, axis=1)
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

    def _slope_scores(self, boxes):
        """``[B, n]``: ``|g_d|·width_d`` plus the width share (see ``_split``)."""
        direction = np.abs(np.stack([b.direction for b in boxes]))
        width = np.stack([b.upper - b.lower for b in boxes])
        floor = 0.1 * np.max(direction * self.width, axis=1, keepdims=True)
        return direction * width + (floor + 1e-300) * width / self.width

    def _sides(self):
        """How many sides the lookahead tries per box (the best by slope score)."""
        return min(LOOKAHEAD_SIDES, self.lower.size)

    def _every_split(self, boxes, sides):
        """Both halves of every box along each of its ``sides`` (``[B, k]``), side-major.

        Child ``2·(r·k + j) + h`` is half ``h`` of box ``r`` cut along ``sides[r, j]``.
        """
        k = sides.shape[1]
        lower, upper = np.stack([b.lower for b in boxes]), np.stack([b.upper for b in boxes])
        rows = np.repeat(np.arange(len(boxes)), 2 * k)
        child_lower, child_upper = lower[rows], upper[rows]
        side = np.repeat(sides.reshape(-1), 2)
        half = np.tile([0, 1], k * len(boxes))
        middle = (lower[rows, side] + upper[rows, side]) / 2
        index = np.arange(len(rows))
        child_upper[index[half == 0], side[half == 0]] = middle[half == 0]
        child_lower[index[half == 1], side[half == 1]] = middle[half == 1]
        parent = {
            k: tuple(np.stack([b.pre[k][s] for b in boxes])[rows] for s in (0, 1))
            for k in boxes[0].pre
        }
        return child_lower, child_upper, parent

    def _best_pairs(self, value, lowers, uppers, inherited, fallback, sides):
        """Indices of the two halves of each box's best cut (``_every_split`` order).

        The best cut leaves the least violation: it maximizes the sum of its
        halves' bounds, each capped at 0 (a closed half counts 0, so a cut that
        closes one half beats one that leaves both as they were). Where no cut
        gains more than 1% of the parent's bound, the gains are noise (CROWN is
        not monotone in the box) and the parent's slope score (``fallback``)
        picks the side instead: on ACAS Xu net 3_3, property 2 the gains alone
        cut one side to 1e-7 of its width and left others uncut. Sides already
        at rounding width are never cut (with all of them there, the search
        gives up on the box, soundly).
        """
        n, k = self.lower.size, sides.shape[1]
        pairs = value.reshape(-1, k, 2)
        width = np.take_along_axis((uppers - lowers)[::2].reshape(-1, k, n), sides[..., None], 2)
        width = width[..., 0]
        parent = np.minimum(inherited.reshape(-1, k, 2)[:, 0, 0], 0.0)
        score = np.minimum(pairs, 0.0).sum(axis=2) - 2 * parent[:, None]
        noise = score.max(axis=1) <= 0.01 * np.abs(parent) + 1e-12
        score[noise] = fallback[noise]
        tiny = width <= 1e-12 * self.width[sides]
        score[tiny] = -np.inf
        if np.any(np.all(tiny, axis=1)):
            self.stuck = True
        boxes = np.flatnonzero(~np.all(tiny, axis=1))
        side = np.argmax(score[boxes], axis=1)
        first = 2 * (boxes * k + side)
        return np.stack([first, first + 1], axis=1).reshape(-1)

    def _solve_leaf(self, box):
        """Decide a box with few unstable ReLUs: the LP, then the MILP if the LP leaves it open.

        Returns ``(counterexample or None, open)``.
        """
        if box.unstable <= LEAF_UNSTABLE:
            found, open_ = self._leaf_lp(box)
            if found is not None or not open_ or not _wants_milp(box):
                return found, open_
        return self._leaf_milp(box)

    def _leaf_milp(self, box):
        """The box's MILP (``milp.MilpProblem.find_input``): exact on the box, capped in time.

        Feasibility of ``A_i·y − b_i <= LP_TOLERANCE·|A_i|`` for every row
        at once, the ReLUs encoded with big-M constants from the box's own
        pre-activation bounds. Infeasible closes the box (every input has
        some row above ``LP_TOLERANCE·|A_i|``); a feasible point is re-run
        through the network. The solver returns points at the edge of that
        slack, so when the network rejects one, a second MILP asks for a
        point ``LP_TOLERANCE·|A_i|`` *inside* every row; if the network
        rejects that too (or there is none), the polytope is reachable only
        within the tolerance and the box is given up (``stuck``). At
        ``MILP_SECONDS`` the box stays open and is split.

        Returns ``(counterexample or None, open)``.
        """
        from tf1norm.bounds.milp import MilpProblem

        self.milps += 1
        norms = np.linalg.norm(self.A, axis=1)
        seconds = MILP_SECONDS
        if self.deadline is not None:
            seconds = min(seconds, max(self.deadline - time.monotonic(), 0.0))
        problem = MilpProblem(self.objective, box.lower, box.upper, box.pre)
        status, x = problem.find_input(-LP_TOLERANCE * norms, seconds)
        if status == "infeasible":
            self.margin = min(self.margin, LP_TOLERANCE * norms.min())
            return None, False
        if status == "feasible":
            found = self._counterexample(np.clip(x, box.lower, box.upper)[None])
            if found is None:  # a point at the slack's edge: ask for one as deep inside
                status, x = problem.find_input(LP_TOLERANCE * norms, seconds)
                if x is not None:
                    found = self._counterexample(np.clip(x, box.lower, box.upper)[None])
            if found is None:
                self.stuck = True
            return found, False
        return None, True

    def _leaf_lp(self, box):
        """The box's triangle-relaxation LP (``box_lp``); True if the box stays open.

        Returns ``(counterexample or None, open)``. The LP closes the box when
        no relaxed point reaches the polytope, and its point is re-run as a
        candidate; with no unstable ReLU it is exact, so a candidate that the
        network rejects (rounding) leaves the box undecided (``stuck``).
        """
        self.lps += 1
        depth, x = deepest_point(self.network, box.pre, box.lower, box.upper, self.A, self.b)
        if depth < -LP_TOLERANCE:
            if np.isfinite(depth):
                norms = np.linalg.norm(self.A, axis=1)
                self.margin = min(self.margin, -(depth + LP_TOLERANCE) * norms.min())
            return None, False
        if x is not None:
            found = self._counterexample(x[None])
            if found is not None:
                return found, False
        if box.unstable == 0:
            self.stuck = True
            return None, False
        return None, True
