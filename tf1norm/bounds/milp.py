"""Big-M MILP of a ReLU network on a box (Tjeng et al., ICLR 2019), solved by SciPy's HiGHS.

Stable ReLUs (pre-activation bounds ``l >= 0`` or ``u <= 0``) are linear on
the box, so they are substituted away: every layer output is carried forward
as an affine function of the inputs and of the outputs ``a`` of the unstable
ReLUs (``l < 0 < u``), linear layers applied through the ``Linear`` interface
(``Add(source)`` sums two such functions). The MILP then has only
``inputs + 2·unstable`` variables (``a`` and a binary ``δ`` per unstable
ReLU) and three rows per unstable ReLU:
``a >= z``, ``a <= z − l(1 − δ)``, ``a <= u·δ``, with ``0 <= a <= u``.

The big-M constants are the pre-activation bounds given by the caller, so
the tighter those are, the smaller the search. The matrix is built once and
reused for every objective.
"""

import contextlib
import os
import sys

import numpy as np

from tf1norm.bounds.network import Activation, Add, Linear

# HiGHS drops matrix entries with |a| <= 1e-9 without a word (its
# ``small_matrix_value``), which can turn a feasible problem infeasible, and
# reports entries >= 1e15 as a model error with SciPy's "infeasible" status 2.
SMALL_COEFFICIENT = 1e-8


def fold_small_coefficients(matrix, row_low, row_high, low, high):
    """Remove the matrix entries HiGHS would drop, widening each row by what they can add.

    A row ``row_low <= a·v <= row_high`` with tiny entries ``t`` becomes
    ``row_low − s <= a'·v <= row_high + s`` (``a' = a − t``,
    ``s = Σ|t_j|·max(|low_j|, |high_j|)``): a relaxation, so an infeasibility
    or a bound proved on it holds for the original rows.

    Args:
      matrix: ``[rows, variables]``; row_low, row_high: ``[rows]`` (may be ±inf).
      low, high: ``[variables]`` variable bounds (may be ±inf).

    Returns:
      ``(matrix, row_low, row_high)`` (the inputs when nothing is tiny), or
      None when a tiny entry sits in an unbounded column (no sound folding).
    """
    tiny = (matrix != 0) & (np.abs(matrix) < SMALL_COEFFICIENT)
    if not tiny.any():
        return matrix, row_low, row_high
    columns = tiny.any(axis=0)
    reach = np.maximum(np.abs(low), np.abs(high))[columns]
    if not np.all(np.isfinite(reach)):
        return None
    slack = np.where(tiny, np.abs(matrix), 0.0)[:, columns] @ reach
    return np.where(tiny, 0.0, matrix), row_low - slack, row_high + slack


def proved_infeasible(result):
    """Whether a SciPy HiGHS result is a genuine infeasibility proof.

    SciPy maps both HiGHS's ``Infeasible`` and its ``ModelError`` (e.g. a
    coefficient >= 1e15) to status 2; only the first proves anything.
    """
    return result.status == 2 and str(result.message).startswith("The problem is infeasible")


@contextlib.contextmanager
def _solver_stdout_silenced():
    """Send file descriptor 1 to /dev/null while HiGHS runs.

    SciPy's HiGHS prints debugging lines (``HighsMipSolverData::
    transformNewIntegerFeasibleSolution tmpSolver.run();``) from C++ straight
    to the process's stdout even with ``disp=False``, into the CLI's tables.
    Python-level output is flushed first; stderr (tqdm, errors) is untouched.
    """
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):  # no real fd 1 (embedded, closed)
        yield
        return
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def check_supported(network, method="exact"):
    """Raise ``ValueError`` if ``network`` has activations a MILP cannot encode."""
    for index, layer in enumerate(network.layers):
        if isinstance(layer, Activation) and layer.kind not in ("relu", "linear"):
            raise ValueError(
                f"{method}: exact bounds support ReLU and linear layers only; layer "
                f"{index} is {layer.kind!r}. Use method='crown' or 'alpha-crown' "
                f"for sound bounds of this network."
            )


def _affine_layer(layer, expression):
    """A ``Linear`` layer applied to an affine expression ``[terms + 1, size]``.

    The expression's last row is its constant.
    """
    out = layer(expression) - layer.bias_vector
    out[-1] += layer.bias_vector
    return out


class _Expressions:
    """Every layer output as an affine function of the inputs and the unstable ReLU outputs.

    A column (basis variable) is an input or the output ``a`` of an unstable
    ReLU; stable ReLUs are substituted away (always on: identity; always
    off: zero), so the MILP only has ``inputs + 2·unstable`` variables.
    """

    def __init__(self, network, pre_bounds):
        self.n = network.input_size
        unstable = sum(int(np.sum((l < 0) & (u > 0))) for l, u in pre_bounds.values())
        self.terms = self.n + unstable
        self.unstable = []  # (row of z as an expression, l, u, column of a)
        expression = np.zeros((self.terms + 1, self.n))
        expression[np.arange(self.n), np.arange(self.n)] = 1.0
        outputs, used = {-1: expression}, self.n
        for k, layer in enumerate(network.layers):
            if isinstance(layer, Linear):
                expression = _affine_layer(layer, expression)
            elif isinstance(layer, Add):
                expression = expression + outputs[layer.source]
            elif layer.kind == "relu":
                expression, used = self._relu(expression, *pre_bounds[k], used)
            outputs[k] = expression
        self.output = expression

    def _relu(self, z, l, u, used):
        a = z * (l >= 0)
        for i in np.flatnonzero((l < 0) & (u > 0)):
            self.unstable.append((z[:, i].copy(), l[i], u[i], used))
            a[:, i] = 0.0
            a[used, i] = 1.0
            used += 1
        return a, used


class MilpProblem:
    """The MILP of ``network`` on the box ``[lower, upper]`` with the given big-M bounds.

    Variables: the inputs, then ``a`` of every unstable ReLU, then its ``δ``.
    For an unstable ReLU with ``z = e·v + c`` (``v`` the earlier variables):
    ``a >= z``, ``a <= z − l(1 − δ)``, ``a <= u·δ``, ``0 <= a <= u``.

    Args:
      network: a ReLU/linear ``Network`` (see ``check_supported``).
      lower, upper: float64 input box.
      pre_bounds: ``{activation layer index: (l, u)}`` valid on the box.
    """

    def __init__(self, network, lower, upper, pre_bounds):
        self.expressions = _Expressions(network, pre_bounds)
        terms, m = self.expressions.terms, len(self.expressions.unstable)
        self.size, self.n = terms + m, network.input_size
        self._rows(m)
        self.low = np.concatenate([lower, np.zeros(m), np.zeros(m)])
        self.high = np.concatenate(
            [upper, [u for _, _, u, _ in self.expressions.unstable], np.ones(m)]
        )
        self.integrality = np.concatenate([np.zeros(terms), np.ones(m)])
        folded = fold_small_coefficients(
            self.matrix, self.row_low, self.row_high, self.low, self.high
        )
        if folded is None:
            raise ValueError(
                "exact bounds: the MILP has an unbounded variable (an infinite input "
                "bound or pre-activation bound); give a finite box and finite "
                "pre_bounds (CROWN's or IBP's)."
            )
        self.matrix, self.row_low, self.row_high = folded

    def _rows(self, m):
        terms = self.expressions.terms
        matrix = np.zeros((3 * m, self.size))
        low, high = np.full(3 * m, -np.inf), np.zeros(3 * m)
        for r, (z, l, u, column) in enumerate(self.expressions.unstable):
            delta = terms + r
            matrix[3 * r, :terms] = -z[:-1]  # a − e·v >= c
            matrix[3 * r, column] += 1.0
            low[3 * r], high[3 * r] = z[-1], np.inf
            matrix[3 * r + 1, :terms] = -z[:-1]  # a − e·v − l·δ <= c − l
            matrix[3 * r + 1, column] += 1.0
            matrix[3 * r + 1, delta] = -l
            high[3 * r + 1] = z[-1] - l
            matrix[3 * r + 2, column], matrix[3 * r + 2, delta] = 1.0, -u  # a − u·δ <= 0
        self.matrix, self.row_low, self.row_high = matrix, low, high

    def maximize(self, direction, time_limit=None):
        """Maximize ``direction · y`` (``y`` the network output).

        Returns:
          ``(bound, x, finished)``: a sound upper bound of the maximum (the
          solver's dual bound), an input reaching the best solution found
          (``None`` if none), and whether the solver proved optimality.
        """
        import scipy.optimize

        objective = self.expressions.output @ np.asarray(direction, np.float64)
        cost = np.zeros(self.size)
        cost[: self.expressions.terms] = -objective[:-1]
        options = {"mip_rel_gap": 0.0, "disp": False}
        if time_limit is not None:
            options["time_limit"] = max(float(time_limit), 1e-3)
        constraints = ()
        if self.matrix.shape[0]:
            constraints = scipy.optimize.LinearConstraint(self.matrix, self.row_low, self.row_high)
        with _solver_stdout_silenced():
            result = scipy.optimize.milp(
                cost,
                integrality=self.integrality,
                bounds=scipy.optimize.Bounds(self.low, self.high),
                constraints=constraints,
                options=options,
            )
        return self._answer(result, objective[-1])

    def find_input(self, floor, time_limit=None):
        """An input whose every output ``y_j`` is at least ``floor_j``, or a proof there is none.

        One MILP feasibility problem (zero objective): the network's rows
        plus ``y_j(v) >= floor_j`` for every output ``j``. HiGHS stops at the
        first feasible point or at its infeasibility proof, which is much
        faster than optimizing a margin. Its tolerances (primal feasibility
        1e-7, integrality 1e-6) only enlarge the set searched, so callers
        should state ``floor`` with a slack of that order below the bound
        they mean to prove (``property_search`` uses ``LP_TOLERANCE``).

        Args:
          floor: ``[outputs]`` lower bounds of the outputs.
          time_limit: seconds for the solver (``None``: no limit).

        Returns:
          ``(status, x)``: ``"infeasible"`` (no input of the box reaches
          ``floor``; ``x`` None), ``"feasible"`` (``x`` the solver's input,
          to re-run through the network) or ``"unknown"`` (time limit).
        """
        import scipy.optimize

        output = self.expressions.output
        rows = np.zeros((output.shape[1], self.size))
        rows[:, : self.expressions.terms] = output[:-1].T
        floor_rows = fold_small_coefficients(
            rows, floor - output[-1], np.full(len(rows), np.inf), self.low, self.high
        )
        if floor_rows is None:  # a tiny output coefficient on an unbounded variable
            return "unknown", None
        constraints = [scipy.optimize.LinearConstraint(*floor_rows)]
        if self.matrix.shape[0]:
            constraints.append(
                scipy.optimize.LinearConstraint(self.matrix, self.row_low, self.row_high)
            )
        options = {"disp": False}
        if time_limit is not None:
            options["time_limit"] = max(float(time_limit), 1e-3)
        with _solver_stdout_silenced():
            result = scipy.optimize.milp(
                np.zeros(self.size),
                integrality=self.integrality,
                bounds=scipy.optimize.Bounds(self.low, self.high),
                constraints=constraints,
                options=options,
            )
        if proved_infeasible(result):
            return "infeasible", None
        if result.x is not None:
            return "feasible", result.x[: self.n]
        return "unknown", None  # time limit, or the solver gave up: the caller splits on

    def _answer(self, result, constant):
        if result.status not in (0, 1):
            raise RuntimeError(f"exact bounds: the MILP solver stopped: {result.message}")
        x = None if result.x is None else result.x[: self.n]
        dual = getattr(result, "mip_dual_bound", None)  # None when no branching was needed
        if result.status == 0:
            bound = -result.fun if dual is None else -min(result.fun, dual)
        else:
            bound = np.inf if dual is None or not np.isfinite(dual) else -dual
        return bound + constant, x, result.status == 0
