"""Sound linear relaxations of activations on ``[l, u]``: ``sl·z + il <= f(z) <= su·z + iu``.

Each function returns ``(sl, il, su, iu)`` as arrays shaped like ``l``. ReLU
and leaky ReLU follow CROWN (Zhang et al. 2018): upper bound the chord,
lower bound a line through the origin whose slope is chosen adaptively
(1 where ``u > −l``, else the leak). Sigmoid and tanh use parallel chords: slope
``k = (f(u) − f(l))/(u − l)`` for both, intercepts the min and max of
``f(z) − k·z`` on ``[l, u]``, found at the interval ends and at the closed-form
points where ``f'(z) = k``.
"""

import numpy as np

from tf1norm.bounds.network import evaluate


def relu(l, u):
    return leaky_relu(l, u, 0.0)


def leaky_relu(l, u, leak):
    """Lower slope of unstable neurons chosen adaptively: 1 if ``u > −l``, else ``leak``.

    alpha-CROWN replaces that slope with optimized values in its own pass.
    """
    active, inactive = l >= 0, u <= 0
    unstable = ~(active | inactive)
    width = np.where(unstable, u - l, 1.0)
    chord = np.where(unstable, (u - leak * l) / width, 0.0)
    su = np.where(active, 1.0, np.where(inactive, leak, chord))
    iu = np.where(unstable, u - chord * u, 0.0)
    adaptive = np.where(u > -l, 1.0, leak)
    sl = np.where(active, 1.0, np.where(inactive, leak, adaptive))
    return sl, np.zeros_like(l), su, iu


def _parallel_chords(kind, l, u, critical_points):
    fl, fu = evaluate(kind, l), evaluate(kind, u)
    narrow = (u - l) < 1e-12
    slope = np.where(narrow, 0.0, (fu - fl) / np.where(narrow, 1.0, u - l))
    candidates = [fl - slope * l, fu - slope * u]
    for z in critical_points(slope):
        inside = (z > l) & (z < u)
        value = evaluate(kind, np.where(inside, z, l)) - slope * np.where(inside, z, l)
        candidates.append(np.where(inside, value, candidates[0]))
    stacked = np.stack(candidates)
    return slope, stacked.min(axis=0), slope, stacked.max(axis=0)


def _sigmoid_critical(slope):
    root = np.sqrt(np.clip(1.0 - 4.0 * slope, 0.0, None))
    points = []
    for s in ((1.0 + root) / 2.0, (1.0 - root) / 2.0):
        s = np.clip(s, 1e-300, 1.0 - 1e-16)
        points.append(np.log(s) - np.log1p(-s))
    return points


def _tanh_critical(slope):
    t = np.sqrt(np.clip(1.0 - slope, 0.0, 1.0 - 1e-16))
    return [np.arctanh(t), -np.arctanh(t)]


def sigmoid(l, u):
    return _parallel_chords("sigmoid", l, u, _sigmoid_critical)


def tanh(l, u):
    return _parallel_chords("tanh", l, u, _tanh_critical)


def for_layer(layer, l, u):
    """Relaxation of an ``Activation`` layer on its pre-activation bounds."""
    if layer.kind == "relu":
        return relu(l, u)
    if layer.kind == "leaky_relu":
        return leaky_relu(l, u, layer.alpha)
    if layer.kind == "sigmoid":
        return sigmoid(l, u)
    if layer.kind == "tanh":
        return tanh(l, u)
    ones = np.ones_like(l)
    return ones, 0 * ones, ones, 0 * ones
