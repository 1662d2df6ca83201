"""Falsify a property part by walking the linear regions of a ReLU network with LPs.

On the set of inputs where every ReLU keeps the sign it has at a point ``x``
(its *activation region*, a polytope), the network is affine. Whether that
region holds an unsafe input is one LP: maximize the depth ``t`` of
``A·y(x) − b`` inside the polytope (``A_i·y + t·|A_i| <= b_i``) over the
region ∩ box. When ``t < 0`` the LP's optimum lies on some region walls;
flipping the ReLUs whose walls bind it (non-zero dual) gives a neighbouring
region that contains the optimum, so the next LP's depth is at least as
large. ``region_walk`` repeats this from a seed until a point of depth
``>= 0`` is found (returned after running the network), no wall binds (a
local optimum), or ``steps`` LPs. Unsafe regions that are thin slivers along
a box face (ACAS Xu net 1_9, property 7: depth ~1e-6 at the best of 1M
uniform samples) are found this way where sign-gradient descent stalls.
"""

import numpy as np

from tf1norm.bounds.network import Activation, Add

WALL_DUAL = 1e-9  # a region wall with a larger dual binds the LP's optimum


def supported(network):
    """Whether every activation is ReLU or linear (the walk's regions need them)."""
    return all(
        layer.kind in ("relu", "linear")
        for layer in network.layers
        if isinstance(layer, Activation)
    )


def region_maps(network, patterns):
    """Affine maps of the network with every ReLU fixed to ``patterns``.

    Args:
      patterns: ``{activation layer index: bool [size]}`` (True: the unit is on).

    Returns:
      ``(walls, output)``: ``walls`` a list of ``(k, matrix [size, n], offset
      [size])``, the pre-activation of layer ``k`` as ``matrix·x + offset``;
      ``output = (matrix [outputs, n], offset [outputs])``. Read off by
      running the masked network on the origin and the unit vectors.
    """
    n = network.input_size
    outputs = {-1: np.vstack([np.zeros(n), np.eye(n)])}
    walls = []
    for k, layer in enumerate(network.layers):
        below = outputs[k - 1]
        if isinstance(layer, Add):
            outputs[k] = below + outputs[layer.source]
        elif isinstance(layer, Activation) and k in patterns:
            walls.append((k, (below[1:] - below[0]).T, below[0]))
            outputs[k] = below * patterns[k]
        else:
            outputs[k] = layer(below)
    values = outputs[len(network.layers) - 1]
    return walls, ((values[1:] - values[0]).T, values[0])


def activation_patterns(network, x):
    """``{k: bool [size]}``: which ReLUs are on at the point ``x`` (``[n]``)."""
    patterns, outputs = {}, {-1: x[None]}
    for k, layer in enumerate(network.layers):
        below = outputs[k - 1]
        if isinstance(layer, Activation) and layer.kind == "relu":
            patterns[k] = below[0] >= 0
        outputs[k] = below + outputs[layer.source] if isinstance(layer, Add) else layer(below)
    return patterns


def region_lp(network, lower, upper, polytope, patterns):
    """The deepest point of the polytope's preimage in one activation region ∩ box.

    Returns ``(depth, x, binding)``: ``depth`` (``-inf`` when the region is
    empty), the point, and ``[(k, unit)]`` the walls binding the optimum.
    """
    from scipy.optimize import linprog

    walls, (matrix, offset) = region_maps(network, patterns)
    rows, rhs = polytope.A @ matrix, polytope.b - polytope.A @ offset
    norms = np.linalg.norm(polytope.A, axis=1)  # output units: depths compare across regions
    # on: matrix·x + offset >= 0, i.e. -matrix·x <= offset; off: matrix·x <= -offset
    sign = [np.where(patterns[k], -1.0, 1.0) for k, _, _ in walls]
    wall_rows = [s[:, None] * m for s, (_, m, _) in zip(sign, walls)]
    wall_rhs = [-s * o for s, (_, _, o) in zip(sign, walls)]
    n = lower.size
    result = linprog(
        np.concatenate([np.zeros(n), [-1.0]]),
        A_ub=np.vstack(
            [np.hstack([rows, norms[:, None]])]
            + [np.hstack([w, np.zeros((len(w), 1))]) for w in wall_rows]
        ),
        b_ub=np.concatenate([rhs] + wall_rhs),
        bounds=list(zip(lower, upper)) + [(None, 1.0)],
        method="highs",
    )
    if result.status != 0:
        return -np.inf, None, []
    duals = np.abs(result.ineqlin.marginals[len(rhs) :])
    units = [(k, unit) for k, _, _ in walls for unit in range(len(patterns[k]))]
    binding = [units[i] for i in np.flatnonzero(duals > WALL_DUAL)]
    return result.x[-1], result.x[:n], binding


def region_walk(network, lower, upper, polytope, seed_point, steps=30):
    """An unsafe input found by walking activation regions from ``seed_point``, or None.

    Stops after ``steps`` LPs or two LPs in a row without a deeper point
    (flipping walls back and forth at a local optimum).
    """
    patterns = activation_patterns(network, seed_point)
    best, stalled = -np.inf, 0
    for _ in range(steps):
        depth, x, binding = region_lp(network, lower, upper, polytope, patterns)
        if x is None:
            return None
        point = np.clip(x, lower, upper)
        if np.all(polytope.slack(network(point[None]))[0] <= 0):
            return point
        stalled = stalled + 1 if depth <= best + 1e-12 else 0
        best = max(best, depth)
        if depth >= 0 or not binding or stalled >= 2:
            return None  # inside only up to rounding, or a local optimum
        patterns = {k: p.copy() for k, p in patterns.items()}
        for k, unit in binding:
            patterns[k][unit] = ~patterns[k][unit]
    return None
