"""Exact output ranges: closed form for linear nets, MILP (HiGHS) for ReLU nets."""

import numpy as np

from tf1norm.bounds.crown import pre_activation_bounds
from tf1norm.bounds.network import Activation, Dense


def _affine(network):
    """The whole network as ``x @ kernel + bias`` when every layer is linear."""
    kernel, bias = np.eye(network.input_size), np.zeros(network.input_size)
    for layer in network.layers:
        if isinstance(layer, Activation) and layer.kind != "linear":
            return None
        if isinstance(layer, Dense):
            kernel, bias = kernel @ layer.kernel, bias @ layer.kernel + layer.bias
    return kernel, bias


class _Milp:
    """Big-M MILP of a ReLU network (Tjeng et al. 2019), bounds from CROWN ∩ IBP."""

    def __init__(self, network, lower, upper):
        self.lb, self.ub, self.integral, self.rows = list(lower), list(upper), [0] * lower.size, []
        self._constraints = None
        pre_bounds = pre_activation_bounds(network, lower, upper)
        current = list(range(lower.size))
        for index, layer in enumerate(network.layers):
            if isinstance(layer, Dense):
                current = self._dense(layer, current)
            else:
                current = self._relu(layer, current, *pre_bounds[index])
        self.outputs = current

    def _new(self, count, low, high, integral=0):
        start = len(self.lb)
        self.lb.extend(low)
        self.ub.extend(high)
        self.integral.extend([integral] * count)
        return list(range(start, start + count))

    def _dense(self, layer, inputs):
        outputs = self._new(layer.kernel.shape[1], [-np.inf] * layer.kernel.shape[1],
                            [np.inf] * layer.kernel.shape[1])
        for j, z in enumerate(outputs):  # z − Σ W_ij h_i = b_j
            terms = {z: 1.0}
            for i, h in enumerate(inputs):
                terms[h] = terms.get(h, 0.0) - layer.kernel[i, j]
            self.rows.append((terms, layer.bias[j], layer.bias[j]))
        return outputs

    def _relu(self, layer, inputs, l, u):
        if layer.kind != "relu":
            raise ValueError(f"exact bounds support ReLU and linear layers only; got "
                             f"{layer.kind!r}. Use method='crown' or 'alpha-crown'.")
        outputs = self._new(len(inputs), np.maximum(l, 0.0), np.maximum(u, 0.0))
        for z, a, lo, hi in zip(inputs, outputs, l, u):
            if hi <= 0:
                continue  # inactive: a = 0 through its bounds
            # active: a − z = 0; unstable: a − z >= 0 plus the two big-M rows below
            self.rows.append(({a: 1.0, z: -1.0}, 0.0, 0.0 if lo >= 0 else np.inf))
            if lo < 0 < hi:
                (d,) = self._new(1, [0.0], [1.0], integral=1)
                self.rows.append(({a: 1.0, z: -1.0, d: -lo}, -np.inf, -lo))  # a <= z − l(1−δ)
                self.rows.append(({a: 1.0, d: -hi}, -np.inf, 0.0))           # a <= u·δ
        return outputs

    def constraints(self):
        """The rows as one sparse ``LinearConstraint``, built once for every solve."""
        if self._constraints is None:
            from scipy.optimize import LinearConstraint
            from scipy.sparse import lil_matrix

            matrix = lil_matrix((len(self.rows), len(self.lb)))
            low, high = np.empty(len(self.rows)), np.empty(len(self.rows))
            for r, (terms, row_low, row_high) in enumerate(self.rows):
                for column, value in terms.items():
                    matrix[r, column] = value
                low[r], high[r] = row_low, row_high
            self._constraints = LinearConstraint(matrix.tocsr(), low, high)
        return self._constraints

    def optimum(self, output, sign):
        """min of ``sign · output`` as a sound bound (the solver's dual bound)."""
        from scipy.optimize import Bounds, milp

        cost = np.zeros(len(self.lb))
        cost[self.outputs[output]] = sign
        result = milp(cost, integrality=np.array(self.integral), bounds=Bounds(self.lb, self.ub),
                      constraints=self.constraints(),
                      options={"mip_rel_gap": 0.0, "disp": False})
        if result.status != 0:
            raise RuntimeError(f"exact bounds: the MILP solver stopped: {result.message}")
        dual = getattr(result, "mip_dual_bound", None)  # None when no branching was needed
        return result.fun if dual is None else min(result.fun, dual)


def exact(network, lower, upper, progress=None):
    """Exact bounds of every output (up to the MILP solver's tolerances, ~1e-7).

    Linear networks: the composed affine map evaluated at the best box
    corners. ReLU networks: two MILPs per output with big-M constraints
    whose M come from CROWN ∩ IBP pre-activation bounds, solved by SciPy's
    HiGHS ``milp`` with a zero optimality gap. ``progress(done, total)`` is
    called after each MILP.
    """
    affine = _affine(network)
    if affine is not None:
        kernel, bias = affine
        low = np.maximum(kernel, 0).T @ lower + np.minimum(kernel, 0).T @ upper + bias
        high = np.maximum(kernel, 0).T @ upper + np.minimum(kernel, 0).T @ lower + bias
        return low, high
    problem = _Milp(network, lower, upper)
    low, high = np.empty(network.output_size), np.empty(network.output_size)
    for j in range(network.output_size):
        low[j] = problem.optimum(j, 1.0)
        high[j] = -problem.optimum(j, -1.0)
        if progress is not None:
            progress(j + 1, network.output_size)
    return low, high
