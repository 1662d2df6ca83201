"""Branch and bound on the input box: exact maxima of several objectives at once.

For low input dimension (the 5-input control nets of issue 10) splitting the
*input* box is the fastest exact strategy: on a small sub-box most ReLUs are
stable, CROWN is nearly tight, and the few boxes CROWN cannot settle are
solved exactly by a small MILP whose big-M constants are that box's own
(tight) pre-activation bounds.

The search maximizes every output ``y_j`` of the network it is given (the
caller appends ``±spec`` as a last linear layer, so minima are maxima too),
sharing each box's bound computation between all objectives:

1. *Bound* a batch of boxes with batched CROWN (``BoxBounds``), inheriting
   the parent's pre-activation bounds.
2. *Incumbents*: evaluate the network at each box centre and at each corner
   that maximizes a linear upper bound; the best value of each objective is
   attained by a concrete input (kept as a witness).
3. *Prune* objective ``j`` of a box when its bound is ``<= best_j + tol_j``
   (``tol_j = tolerance·(1 + |best_j|)``).
4. A box with at most ``leaf_unstable`` unstable ReLUs is a *leaf*: one MILP
   per objective still open on it gives its exact maximum.
5. Otherwise *split* the box in halves along its widest side (relative to the
   original box). Boxes are explored best-first by their largest open gap.

The answer for objective ``j`` is ``max(best_j, every closed box's bound,
every open box's bound)``: sound at any moment, so a time limit or Ctrl-C
returns sound bounds, and exact (within ``tol_j`` of an attained value) when
the search finished.
"""

import heapq
import itertools
import time

import numpy as np

from tf1norm.bounds.box_crown import BoxBounds
from tf1norm.bounds.milp import MilpProblem


class _Box:
    """One open sub-box with its bounds (a heap entry, ordered by ``priority``)."""

    __slots__ = ("priority", "order", "lower", "upper", "pre", "bound", "unstable", "slope")

    def __init__(self, priority, order, lower, upper, pre, bound, unstable, slope):
        self.priority, self.order = priority, order
        self.lower, self.upper, self.pre = lower, upper, pre
        self.bound, self.unstable, self.slope = bound, unstable, slope

    def __lt__(self, other):
        return (self.priority, self.order) < (other.priority, other.order)


class BranchAndBound:
    """Maximize every output of ``network`` over ``[lower, upper]`` by input splitting.

    Args:
      network: a ReLU/linear ``Network``; every output is one objective.
      lower, upper: float64 input box.
      tolerance: absolute-and-relative optimality tolerance.
      leaf_unstable: boxes with at most this many unstable ReLUs go to a MILP.
      batch: boxes bounded per batched-CROWN call.
    """

    def __init__(self, network, lower, upper, tolerance=1e-6, leaf_unstable=8, batch=128):
        self.network, self.lower, self.upper = network, lower, upper
        self.tolerance, self.leaf_unstable, self.batch = tolerance, leaf_unstable, batch
        count = network.output_size
        self.best = np.full(count, -np.inf)
        self.witness = np.tile((lower + upper) / 2, (count, 1))
        self.closed = np.full(count, -np.inf)
        self.in_flight = np.full(count, np.inf)  # boxes taken off the heap, not yet settled
        self.heap, self.order = [], itertools.count()
        self.boxes = self.milps = 0
        self.width = np.where(upper > lower, upper - lower, 1.0)
        self.split_width_share = 0.1

    def run(self, deadline=None, should_stop=None, progress=None):
        """Search until done, past ``deadline`` (``time.monotonic()``) or ``should_stop()``.

        Returns:
          ``(bound, best, witness, status)``: sound upper bounds ``[J]``, attained
          values ``[J]``, inputs attaining them ``[J, n]``, and ``"exact"``,
          ``"time limit"`` or ``"interrupted"`` for the search as a whole.
        """
        status = "exact"
        try:
            self._bound_children(self.lower[None], self.upper[None], None)
            self.in_flight[:] = -np.inf
            while self.heap:
                if deadline is not None and time.monotonic() >= deadline:
                    status = "time limit"
                    break
                if should_stop is not None and should_stop():
                    status = "interrupted"
                    break
                self._step(deadline)
                self._report(progress)
        except KeyboardInterrupt:
            status = "interrupted"
        return self.upper_bounds(), self.best.copy(), self.witness.copy(), status

    def upper_bounds(self):
        """Sound upper bound of every objective from everything searched so far."""
        bound = np.maximum(np.maximum(self.best, self.closed), self.in_flight)
        for box in self.heap:
            bound = np.maximum(bound, box.bound)
        return bound

    def gaps(self):
        """Per objective: sound bound minus the best attained value."""
        return self.upper_bounds() - self.best

    def _tol(self):
        return self.tolerance * (1.0 + np.abs(self.best))

    def _step(self, deadline):
        """Pop a batch of boxes; close, solve or split each; bound the children."""
        lowers, uppers, parents = [], [], []
        for _ in range(min(self.batch, len(self.heap))):
            box = heapq.heappop(self.heap)
            self.in_flight = np.maximum(self.in_flight, box.bound)
            active = box.bound > self.best + self._tol()
            if not active.any():
                self.closed = np.maximum(self.closed, box.bound)
            elif box.unstable <= self.leaf_unstable:
                self._solve_leaf(box, active, deadline)
            else:
                for low, high in self._split(box):
                    lowers.append(low)
                    uppers.append(high)
                    parents.append(box.pre)
        if lowers:
            pre = {
                k: tuple(np.stack([p[k][side] for p in parents]) for side in (0, 1))
                for k in parents[0]
            }
            self._bound_children(np.stack(lowers), np.stack(uppers), pre)
        self.in_flight[:] = -np.inf

    def _split(self, box):
        """Two halves of ``box`` along the side that moves its most open bound the most.

        The score of input ``d`` is ``|slope_jd|·width_d`` for the objective ``j``
        with the largest gap (the linear upper bound's sensitivity to ``d``
        across the box), plus a share of the largest such sensitivity over the
        *original* box, scaled by how much of side ``d`` is left. Both terms are
        in the objective's units, so a side the linear bound ignores (its
        slope can be exactly 0 while its width still loosens the ReLU
        relaxations) is split once the other sides have shrunk to a tenth of
        it, never starved while they are halved down to rounding error.
        """
        worst = int(np.argmax(box.bound - self.best))
        width = box.upper - box.lower
        sensitivity = np.abs(box.slope[worst])
        floor = self.split_width_share * np.max(sensitivity * self.width)
        score = sensitivity * width + floor * width / self.width
        side = int(np.argmax(score))
        middle = (box.lower[side] + box.upper[side]) / 2
        left_upper, right_lower = box.upper.copy(), box.lower.copy()
        left_upper[side] = right_lower[side] = middle
        return (box.lower, left_upper), (right_lower, box.upper)

    def _bound_children(self, lowers, uppers, parent_pre):
        bounds = BoxBounds(self.network, lowers, uppers, parent_pre)
        self.boxes += lowers.shape[0]
        points = np.concatenate([bounds.argmax.reshape(-1, lowers.shape[1]), (lowers + uppers) / 2])
        self._offer(points)
        unstable = bounds.unstable_counts()
        for b in range(lowers.shape[0]):
            pre = {k: (l[b], u[b]) for k, (l, u) in bounds.pre.items()}
            self._push(
                lowers[b], uppers[b], pre, bounds.upper_bound[b], unstable[b], bounds.slope[b]
            )

    def _push(self, lower, upper, pre, bound, unstable, slope):
        gap = np.max(bound - self.best)
        if gap <= 0 or np.all(bound <= self.best + self._tol()):
            self.closed = np.maximum(self.closed, bound)
            return
        heapq.heappush(
            self.heap, _Box(-gap, next(self.order), lower, upper, pre, bound, unstable, slope)
        )

    def _offer(self, points):
        """Make the best of ``points`` (``[P, n]`` inputs) the incumbents where they improve."""
        values = self.network(points)
        top = np.argmax(values, axis=0)
        value = values[top, np.arange(values.shape[1])]
        better = value > self.best
        self.best[better] = value[better]
        self.witness[better] = points[top[better]]

    def _solve_leaf(self, box, active, deadline):
        """Exact maximum of each open objective on a leaf box, by MILP."""
        problem = MilpProblem(self.network, box.lower, box.upper, box.pre)
        bound = box.bound.copy()
        for j in np.flatnonzero(active):
            remaining = None if deadline is None else deadline - time.monotonic()
            direction = np.zeros(self.network.output_size)
            direction[j] = 1.0
            value, x, _ = problem.maximize(direction, remaining)
            self.milps += 1
            bound[j] = min(bound[j], value)
            if x is not None:
                self._offer(np.clip(x, box.lower, box.upper)[None])
        self.closed = np.maximum(self.closed, bound)

    def _report(self, progress):
        if progress is None:
            return
        gaps = self.gaps()
        done = int(np.sum(gaps <= self._tol()))
        if hasattr(progress, "update") and hasattr(progress, "set_postfix"):
            progress.total = gaps.size
            progress.n = done
            progress.set_postfix(
                boxes=self.boxes, open=len(self.heap), gap=f"{gaps.max():.2g}", refresh=True
            )
        else:
            progress(done, gaps.size)
