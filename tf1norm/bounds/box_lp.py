"""One LP per sub-box: the triangle relaxation of its few unstable ReLUs, against a polytope.

On a box where the pre-activation bounds ``pre`` fix most ReLUs on or off,
every value in the network is affine in the input ``x`` and the outputs
``h_j`` of the unstable ReLUs. ``relaxed_maps`` reads those affine forms off
by running the network on "points" (the offset and one unit per variable),
each unstable unit's output replaced by its own variable. The LP
(``deepest_point``) then maximizes the depth ``t`` of ``A·y`` inside the
polytope (``A_i·y + t·|A_i| <= b_i``) subject to the box and, per unstable
unit, the triangle ``h >= 0``, ``h >= z``, ``h <= u·(z − l)/(u − l)``. It is
the tightest convex relaxation per unit (CROWN fixes one lower line of the
triangle), and exact when no unit is unstable.
"""

import numpy as np

from tf1norm.bounds.milp import fold_small_coefficients, proved_infeasible
from tf1norm.bounds.network import Activation, Add

LP_TOLERANCE = 1e-6  # depth below which an LP's infeasibility is trusted (output units)


def relaxed_maps(network, pre, stable=None):
    """Affine forms over ``v = (x, h_1..h_K)`` for a box's activation bounds ``pre``.

    Args:
      pre: ``{activation layer index: (l [size], u [size])}``.
      stable: optional list, filled with ``(coefficients [n + K], offset, l, u)``
        per stable unit (``l >= 0`` or ``u <= 0``; its pre-activation).

    Returns:
      ``(units, output)``: ``units`` a list of ``(l, u, coefficients [n + K],
      offset)`` per unstable unit (its pre-activation), in variable order;
      ``output = (matrix [outputs, n + K], offset [outputs])``.
    """
    n = network.input_size
    unstable = {k: np.flatnonzero((l < 0) & (u > 0)) for k, (l, u) in pre.items()}
    count = n + sum(len(v) for v in unstable.values())
    points = np.zeros((1 + count, n))
    points[1 : 1 + n] = np.eye(n)
    outputs, units = {-1: points}, []
    for k, layer in enumerate(network.layers):
        below = outputs[k - 1]
        if isinstance(layer, Add):
            outputs[k] = below + outputs[layer.source]
        elif isinstance(layer, Activation) and k in pre:
            low, high = pre[k]
            value = below * (low >= 0)  # stable on: kept; stable off and unstable: 0
            if stable is not None:
                for unit in np.flatnonzero((low >= 0) | (high <= 0)):
                    stable.append(
                        (below[1:, unit] - below[0, unit], below[0, unit], low[unit], high[unit])
                    )
            for unit in unstable[k]:
                variable = n + len(units)
                units.append(
                    (low[unit], high[unit], below[1:, unit] - below[0, unit], below[0, unit])
                )
                value[1 + variable, unit] = 1.0
            outputs[k] = value
        else:
            outputs[k] = layer(below)
    values = outputs[len(network.layers) - 1]
    return units, ((values[1:] - values[0]).T, values[0])


def deepest_point(network, pre, lower, upper, A, b, bounded=False, gaps=None, time_limit=None):
    """``(depth, x)``: the LP's deepest point of ``A·y <= b`` over the relaxed box.

    With ``bounded``, every stable unit's pre-activation ``z`` is also held in
    ``[l, u]`` (one row: ``z >= l`` for an on unit, ``z <= u`` for an off
    one). That is sound whenever ``pre`` is (each bound holds on the domain),
    and it carries sign constraints such as a ReLU split's into the LP, which
    is then exact on its domain when no unit is unstable.

    ``gaps``, an optional list, receives per unstable unit (in ``pre``'s layer
    order, then unit order) ``h − max(z, 0)`` at the LP's solution: how far
    the relaxation is from the ReLU there (the MILP branching score).

    ``depth < -LP_TOLERANCE`` proves no input of the box reaches the
    polytope; otherwise ``x`` is the LP's input (a candidate to re-run).
    ``depth`` is ``-inf`` (and ``x`` None) when the LP is infeasible, e.g. a
    row constant on the box is violated, and NaN when the solver failed or
    hit ``time_limit`` (seconds). Matrix entries below
    ``milp.SMALL_COEFFICIENT``, which HiGHS would silently drop, are folded
    into their rows' right-hand sides first (``milp.fold_small_coefficients``),
    so an infeasibility or a negative depth holds for the exact rows.
    """
    from scipy.optimize import linprog

    stable = [] if bounded else None
    units, (matrix, offset) = relaxed_maps(network, pre, stable)
    n, count = lower.size, matrix.shape[1]
    norms = np.linalg.norm(A, axis=1)
    rows = [np.hstack([A @ matrix, norms[:, None]])]
    rhs = [b - A @ offset]
    for index, (low, high, coefficients, shift) in enumerate(units):
        h = np.zeros(count + 1)
        h[n + index] = 1.0
        z = np.append(coefficients, 0.0)
        slope = high / (high - low)
        rows += [-h, z - h, h - slope * z]  # h >= 0, h >= z, h <= slope·(z − low)
        rhs += [[0.0], [-shift], [slope * (shift - low)]]
    for coefficients, shift, low, high in stable or ():
        z = np.append(coefficients, 0.0)
        rows.append((-z if low >= 0 else z)[None])
        rhs.append([shift - low if low >= 0 else high - shift])
    var_low = np.concatenate([lower, np.zeros(len(units)), [-np.inf]])
    var_high = np.concatenate([upper, [max(unit[1], 0.0) for unit in units], [1.0]])
    b_ub = np.concatenate([np.atleast_1d(r) for r in rhs])
    no_floor = np.full(b_ub.size, -np.inf)
    folded = fold_small_coefficients(np.vstack(rows), no_floor, b_ub, var_low, var_high)
    if folded is None:  # a tiny depth coefficient: a row of A with norm < 1e-8
        return np.nan, None
    result = linprog(
        np.append(np.zeros(count), -1.0),
        A_ub=folded[0],
        b_ub=folded[2],
        bounds=list(zip(var_low[:-1], var_high[:-1])) + [(None, 1.0)],
        method="highs",
        options={} if time_limit is None else {"time_limit": max(float(time_limit), 1e-3)},
    )
    if result.status != 0:
        return (-np.inf if proved_infeasible(result) else np.nan), None
    if gaps is not None:
        v = result.x[:-1]
        gaps.extend(v[n + i] - max(c @ v + shift, 0.0) for i, (_, _, c, shift) in enumerate(units))
    return result.x[-1], np.clip(result.x[:n], lower, upper)
