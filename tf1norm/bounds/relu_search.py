"""Is a polytope of outputs reachable from an input box? ReLU-splitting branch and bound.

The question is the one of ``property_search``: does some ``x`` in
``[lower, upper]`` have ``A·f(x) <= b`` (every row)? Input splitting needs
few inputs (ACAS Xu's 5); with hundreds (MNIST's 784) the search splits
**ReLUs** instead. A *subdomain* is the box together with a set of split
decisions, each fixing one unstable ReLU ``j`` of layer ``k`` on
(``z_kj >= 0``) or off (``z_kj <= 0``); the two children of a split cover
their parent, so the whole box is covered by the leaves.

On a subdomain every bound used is sound:

1. *Pre-activation bounds*: those of the root (alpha-CROWN, or CROWN ∩ IBP,
   valid on the whole box, hence on every subset), with each split neuron's
   bounds clamped — on: ``l ← max(l, 0)``; off: ``u ← min(u, 0)``. The
   relaxation of a clamped neuron is then exact (identity or zero). IBP
   through the clamped layers is intersected in, and with ``refine`` the
   open neurons of every layer are re-bounded by batched CROWN
   (``box_crown.BoxBounds``) under the clamps.
2. *Rows*: batched CROWN of ``z = A·y − b`` from below, a linear bound
   ``z_i(x) >= g_i·x + h_i`` over the box (the split half-spaces are dropped
   there, which only loosens it); the subdomain is **closed** when the best
   simplex combination of the rows (``property_search.combined_bound``;
   for one row just that row) is positive.
3. *Candidates*: the network is run at every row's minimizing box corner
   and at the combination's minimizer; a point with every row ``<= 0`` is a
   **counterexample** (checked by running the network in NumPy).
4. *Leaves*: a subdomain with at most ``LEAF_UNSTABLE`` unstable ReLUs is
   given to an LP (``box_lp.deepest_point`` with ``bounded=True``: the
   triangle relaxation of the unstable ReLUs plus every stable neuron's
   sign, which encodes the splits), exact when none is unstable.
5. Otherwise the subdomain is split at the unstable neuron with the largest
   relaxation gap weighted by its coefficient in the bound (BaBSR-like,
   Bunel et al. 2020): ``max(a, 0)·(−l·u/(u − l)) + max(−a, 0)·gap_low``,
   where ``a`` is the neuron's coefficient in the closest row's upper bound
   of ``b − A·y`` and ``gap_low`` is ``−l`` or ``u`` for the lower line
   ``z`` or ``0``.

Subdomains are bounded ``batch`` at a time, most violated first (best-first:
counterexamples surface early, and the search stops once decided). A
subdomain is stored as its split list only; its bounds are rebuilt from the
root's when it is taken.
"""

import heapq
import itertools
import time

import numpy as np

from tf1norm.bounds.box_crown import BoxBounds
from tf1norm.bounds.box_lp import LP_TOLERANCE, deepest_point
from tf1norm.bounds.milp import check_supported
from tf1norm.bounds.network import Activation, Dense, Network
from tf1norm.bounds.property_search import combined_bound

LEAF_UNSTABLE = 12  # default: subdomains with at most this many unstable ReLUs go to the LP


class _Domain:
    __slots__ = ("priority", "order", "splits", "branch", "unstable", "pre")

    def __init__(self, priority, order, splits, branch, unstable, pre=None):
        self.priority, self.order, self.splits = priority, order, splits
        self.branch, self.unstable, self.pre = branch, unstable, pre

    def __lt__(self, other):
        return (self.priority, self.order) < (other.priority, other.order)


class _RecordingBounds(BoxBounds):
    """``BoxBounds`` that keeps the coefficients reaching every activation's output.

    The last back-substitution of ``BoxBounds.__init__`` is the one of the
    outputs and it passes every activation, so after construction
    ``coefficients[k]`` (``[B, outputs, size]``) belongs to the output bound.
    """

    def _step(self, k, a, c, pending, upper_side):
        if isinstance(self.network.layers[k], Activation):
            if not hasattr(self, "coefficients"):
                self.coefficients = {}
            self.coefficients[k] = a
        return super()._step(k, a, c, pending, upper_side)


def clamp(pre, splits):
    """Pre-activation bounds with each split's sign imposed: ``(k, j, +1)`` on, ``−1`` off.

    Args:
      pre: ``{activation index: (l [size], u [size])}``, sound on the box.
      splits: iterable of ``(layer index, unit, sign)``.

    Returns:
      A new dict; on units get ``l ← max(l, 0)``, off units ``u ← min(u, 0)``.
    """
    result = {k: (l.copy(), u.copy()) for k, (l, u) in pre.items()}
    for k, unit, sign in splits:
        low, high = result[k]
        if sign > 0:
            low[unit] = max(low[unit], 0.0)
        else:
            high[unit] = min(high[unit], 0.0)
    return result


def branching_scores(coefficients, pre, row):
    """``{k: [B, size]}``: each unstable neuron's relaxation gap weighted by ``|a|``.

    Args:
      coefficients: ``{k: [B, rows, size]}``, the coefficients of the upper
        bound of ``b − A·y`` at the output of activation ``k``.
      pre: ``{k: (l [B, size], u [B, size])}``.
      row: ``[B]``, the row whose coefficients score each subdomain.

    Returns:
      Scores, 0 for stable neurons and ``> 0`` for every unstable one (a tiny
      share of the gap keeps a neuron with ``a = 0`` splittable).
    """
    scores = {}
    for k, (l, u) in pre.items():
        a = coefficients[k][np.arange(len(row)), row]
        unstable = (l < 0) & (u > 0)
        width = np.where(unstable, u - l, 1.0)
        chord_gap = np.where(unstable, -l * u / width, 0.0)
        low_gap = np.where(u > -l, -l, u) * unstable
        score = np.maximum(a, 0) * chord_gap + np.maximum(-a, 0) * low_gap
        scores[k] = np.where(unstable, score + 1e-9 * chord_gap + 1e-300, 0.0)
    return scores


def _unstable_units(pre):
    """``[(layer, unit)]`` of the unstable units, in ``box_lp``'s variable order."""
    return [(k, int(j)) for k, (l, u) in pre.items() for j in np.flatnonzero((l < 0) & (u > 0))]


def _passed(deadline):
    return deadline is not None and time.monotonic() >= deadline


class ReluSearch:
    """Decide whether ``{x in [lower, upper] : A·network(x) <= b}`` is empty, splitting ReLUs.

    Args:
      network: a ReLU/linear ``Network``.
      lower, upper: float64 input box.
      A, b: the polytope ``[m, outputs]``, ``[m]`` (``m >= 1``).
      root_pre: optional ``{activation index: (l, u)}`` sound on the box
        (e.g. ``alpha_crown.optimized_pre_activation_bounds``); the root's
        CROWN bounds are intersected with it.
      batch: subdomains bounded per batched-CROWN call.
      refine: re-bound the open neurons of every layer by CROWN under the
        splits (tighter, ~30× slower per subdomain on MNIST-FC); without it
        the root's bounds, clamped and intersected with IBP, are used.
      leaf_unstable: subdomains with at most this many unstable ReLUs go to
        the LP (which sees the splits, unlike CROWN's box concretization, and
        picks the next split). On a 20-input net with 30 ReLUs, LPs at every
        node (``leaf_unstable >= 30``) proved a 1e-3 margin in 0.2-1 s where 12
        left the search unknown after 20 s; an LP on MNIST-FC 256x2 takes
        ~0.25 s against ~0.5 ms per subdomain for batched CROWN.

    Attributes after ``run``: ``domains`` (bounded), ``lps`` (leaf LPs),
    ``margin`` (a sound lower bound of ``max_i (A·y − b)_i`` over every
    subdomain closed so far: positive and finite once the search proved the
    box; a search whose every closure was an infeasible LP answers unknown).
    """

    def __init__(
        self,
        network,
        lower,
        upper,
        A,
        b,
        root_pre=None,
        batch=256,
        refine=False,
        leaf_unstable=LEAF_UNSTABLE,
    ):
        check_supported(network, "ReluSearch")  # the LP and the splits encode ReLUs only
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 2:
            raise ValueError(
                f"ReluSearch: batch must be an integer >= 2 (a step splits batch // 2 "
                f"subdomains into two children each); got {batch!r}."
            )
        if isinstance(leaf_unstable, bool) or not isinstance(leaf_unstable, (int, np.integer)):
            raise ValueError(
                f"ReluSearch: leaf_unstable must be an integer >= 0; got {leaf_unstable!r}."
            )
        if leaf_unstable < 0:
            raise ValueError(
                f"ReluSearch: leaf_unstable must be >= 0 (0: LPs only where every ReLU "
                f"is fixed); got {leaf_unstable}."
            )
        self.network, self.A, self.b = network, np.asarray(A, np.float64), np.asarray(b)
        self.leaf_unstable = leaf_unstable
        self.lower, self.upper, self.batch, self.refine = lower, upper, batch, refine
        # w = b − A·y: BoxBounds bounds w from above, i.e. z = A·y − b from below
        self.objective = Network(list(network.layers) + [Dense(-self.A.T, self.b)])
        self.root_pre = root_pre
        self.heap, self.order = [], itertools.count()
        self.domains = self.lps = 0
        self.margin = np.inf
        self.stuck = False

    def run(self, deadline=None, progress=None):
        """``("proved", None)``, ``("falsified", x)`` or ``("unknown", None)`` at the deadline."""
        found = self._root()
        while found is None and self.heap:
            if _passed(deadline):
                return "unknown", None
            found = self._step(deadline)
            if progress is not None:
                progress(f"{self.domains} subdomains, {len(self.heap)} open")
        if found is not None:
            return "falsified", found
        if not np.isfinite(self.margin):
            # every closure was an infeasible LP: impossible on a non-empty
            # box in exact arithmetic, so a numerical artifact; claim nothing
            self.stuck = True
        return ("unknown", None) if self.stuck else ("proved", None)

    def _root(self):
        parent = None
        if self.root_pre is not None:
            parent = {k: (l[None], u[None]) for k, (l, u) in self.root_pre.items()}
        bounds = _RecordingBounds(self.objective, self.lower[None], self.upper[None], parent)
        self.root_pre = {k: (l[0], u[0]) for k, (l, u) in bounds.pre.items()}
        return self._settle(bounds, [()])

    def _step(self, deadline=None):
        """Take the ``batch`` most violated subdomains, split each, bound the children.

        Leaf LPs are solved on the way while ``deadline`` allows; a subdomain
        taken at the deadline goes back to the queue.
        """
        children = []
        for _ in range(min(self.batch // 2, len(self.heap))):
            domain = heapq.heappop(self.heap)
            if domain.unstable <= self.leaf_unstable and _passed(deadline):
                heapq.heappush(self.heap, domain)
                break
            if domain.unstable <= self.leaf_unstable:
                found, open_ = self._solve_leaf(domain, deadline)
                if found is not None:
                    return found
                if not open_:
                    continue
            k, unit = domain.branch
            children += [domain.splits + ((k, unit, 1),), domain.splits + ((k, unit, -1),)]
        if not children:
            return None
        return self._bound(children)

    def _bound(self, splits):
        """Bound the subdomains ``splits`` (one split list each) in one batched call."""
        count = len(splits)
        pres = [clamp(self.root_pre, s) for s in splits]
        parent = {k: tuple(np.stack([p[k][s] for p in pres]) for s in (0, 1)) for k in pres[0]}
        lowers = np.broadcast_to(self.lower, (count, self.lower.size))
        uppers = np.broadcast_to(self.upper, (count, self.upper.size))
        bounds = _RecordingBounds(self.objective, lowers, uppers, parent, refine=self.refine)
        return self._settle(bounds, splits)

    def _settle(self, bounds, splits):
        """Close, queue, or return a counterexample found on a bounded batch."""
        self.domains += len(splits)
        lowers, uppers = bounds.lower, bounds.upper
        slope, intercept = -bounds.slope, -bounds.intercept
        value, _, x_lam = combined_bound(slope, intercept, lowers, uppers)
        found = self._counterexample(
            np.concatenate([bounds.argmax.reshape(-1, lowers.shape[1]), x_lam])
        )
        if found is not None:
            return found
        corner = np.where(slope > 0, lowers[:, None], uppers[:, None])
        row = np.argmax(np.einsum("bmn,bmn->bm", slope, corner) + intercept, axis=1)
        scores = branching_scores(getattr(bounds, "coefficients", {}), bounds.pre, row)
        layers = sorted(scores)
        unstable = bounds.unstable_counts()
        if layers:
            best = np.stack([scores[k].max(axis=1) for k in layers], axis=1)
        for i, s in enumerate(splits):
            if value[i] > 0:
                self.margin = min(self.margin, value[i])
                continue
            branch = None  # no ReLU: the subdomain is a leaf (unstable 0)
            if layers:
                layer = layers[int(np.argmax(best[i]))]
                branch = (layer, int(np.argmax(scores[layer][i])))
            pre = None  # kept only for leaves (a subdomain is otherwise its split list)
            if unstable[i] <= self.leaf_unstable:
                pre = {k: (l[i].copy(), u[i].copy()) for k, (l, u) in bounds.pre.items()}
            domain = _Domain(value[i], next(self.order), s, branch, unstable[i], pre)
            heapq.heappush(self.heap, domain)
        return None

    def _counterexample(self, points):
        """A point with every row ``<= 0`` (checked by running the network), or None."""
        slack = self.network(points) @ self.A.T - self.b
        inside = np.flatnonzero(np.all(slack <= 0, axis=1))
        return points[inside[0]] if inside.size else None

    def _solve_leaf(self, domain, deadline=None):
        """The subdomain's LP; returns ``(counterexample or None, still open)``.

        The LP (``box_lp.deepest_point(bounded=True)``) holds every split's
        sign, so with no unstable ReLU it is exact: infeasible means closed,
        and its point, re-run through the network, decides the rest (a point
        the network rejects by rounding leaves the search ``stuck``). An open
        subdomain is split next at the unit whose triangle is loosest at the
        LP's solution (``h − max(z, 0)`` largest), as a MILP solver branches.
        """
        self.lps += 1
        unstable, gaps = domain.unstable, []
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        depth, x = deepest_point(
            self.network, domain.pre, self.lower, self.upper, self.A, self.b, True, gaps, left
        )
        if depth < -LP_TOLERANCE:
            if np.isfinite(depth):
                norms = np.linalg.norm(self.A, axis=1)
                self.margin = min(self.margin, -(depth + LP_TOLERANCE) * norms.min())
            return None, False
        if x is not None:
            found = self._counterexample(x[None])
            if found is not None:
                return found, False
        if unstable == 0:
            self.stuck = True
            return None, False
        if gaps and max(gaps) > 0:
            domain.branch = _unstable_units(domain.pre)[int(np.argmax(gaps))]
        return None, True
