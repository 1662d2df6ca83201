"""The cheap falsifier of a VNN-LIB property part: uniform samples, then sign-gradient descent.

A part asks for an ``x`` in ``[lower, upper]`` with ``A·f(x) <= b`` on every
row, i.e. ``v(x) = max_i (A·f(x) − b)_i <= 0``. Unsafe regions are often
small and flat around them (a ReLU network's gradient is zero where its units
are off), so a descent from a few random starts misses them. ``attack_part``
first evaluates the network on many uniform samples of the box in batched
NumPy (cheap next to any bound: about 0.05 s for 16k samples of an ACAS Xu
net) and descends from the samples with the smallest ``v``, plus the box's
centre and (few inputs) its vertices.
"""

import numpy as np

from tf1norm.bounds import region_walk
from tf1norm.bounds.network import Linear
from tf1norm.bounds.verdict import _starts, margins_and_gradients

SAMPLES = 16384
SAMPLE_BUDGET = 4e8  # multiply-adds spent on the samples at most (~0.3 s in NumPy)
CHUNK = 4096
FACE_SHARE = 0.25  # chance that a sample's coordinate sits on the box's face
WALK_MAX_INPUTS = 64  # region walks (one LP per region) only for this many inputs


def sample_count(network, samples):
    """``samples``, reduced so the forward passes cost at most ``SAMPLE_BUDGET`` multiply-adds."""
    cost = sum(
        layer.in_size * layer.out_size for layer in network.layers if isinstance(layer, Linear)
    )
    return int(max(min(samples, SAMPLE_BUDGET // max(cost, 1)), 0))


def box_samples(lower, upper, count, rng):
    """``count`` random points of the box, each coordinate on a face with probability 1/4.

    Unsafe sets often touch the box only along a face (ACAS Xu net 1_9,
    property 7: a sliver at the lowest ``X_0``, where the best of 1M uniform
    samples is still safe); snapping coordinates puts samples on the faces,
    edges and corners as well as inside.
    """
    u = rng.random((count, lower.size))
    snap = rng.random((count, lower.size))
    u = np.where(snap < FACE_SHARE / 2, 0.0, np.where(snap > 1 - FACE_SHARE / 2, 1.0, u))
    return lower + (upper - lower) * u


def best_samples(network, lower, upper, polytope, count, keep, rng):
    """The ``keep`` samples (``box_samples``) of the box with the smallest ``v``, best first.

    Returns ``(points [k, n], v [k])`` over ``count`` samples drawn ``CHUNK`` at a time.
    """
    best_x, best_v = np.empty((0, lower.size)), np.empty(0)
    for start in range(0, count, CHUNK):
        x = box_samples(lower, upper, min(CHUNK, count - start), rng)
        v = np.max(polytope.slack(network(x)), axis=1)
        best_x, best_v = np.concatenate([best_x, x]), np.concatenate([best_v, v])
        order = np.argsort(best_v, kind="stable")[:keep]
        best_x, best_v = best_x[order], best_v[order]
        if best_v[0] <= 0:
            break
    return best_x, best_v


def attack_part(
    network, lower, upper, polytope, steps=30, starts=24, seed=0, samples=SAMPLES, walks=2
):
    """An input in the box whose output is in the polytope, or None.

    Draws ``samples`` uniform points (fewer for a large network, see
    ``sample_count``), then descends ``v`` along the most violated row's
    gradient sign from the ``starts`` best of them, the centre and the
    vertices (``_starts``); then, for few inputs, walks the activation
    regions (``region_walk``) from the ``walks`` best points found. Every
    returned point was run through the network.
    """
    if len(polytope.b) == 0:
        return (lower + upper) / 2
    rng = np.random.default_rng(seed)
    count = sample_count(network, samples)
    seeds, _ = best_samples(network, lower, upper, polytope, count, starts, rng)
    x = np.concatenate([seeds, _starts(lower, upper, starts - len(seeds), rng)])
    found, best = _descend(network, lower, upper, polytope, x, steps)
    if found is not None or not walks or lower.size > WALK_MAX_INPUTS:
        return found
    if not region_walk.supported(network):
        return None
    for point in best[:walks]:
        found = region_walk.region_walk(network, lower, upper, polytope, point)
        if found is not None:
            return found
    return None


def _descend(network, lower, upper, polytope, x, steps):
    """Sign-gradient descent of ``v`` from the points ``x``.

    Returns ``(unsafe point or None, the points sorted by the best v each reached)``.
    """
    step = (upper - lower) / 4
    best_x, best_v = x.copy(), np.full(len(x), np.inf)
    for i in range(steps + 1):
        slack = polytope.slack(network(x))
        inside = np.flatnonzero(np.all(slack <= 0, axis=1))
        if inside.size:
            return x[inside[0]], None
        v = np.max(slack, axis=1)
        better = v < best_v
        best_x[better], best_v[better] = x[better], v[better]
        if i == steps:
            break
        row = np.argmax(slack, axis=1)
        _, grads = margins_and_gradients(network, x, polytope.A[row], polytope.b[row])
        x = np.clip(x - step * (0.85**i) * np.sign(grads), lower, upper)
    return None, best_x[np.argsort(best_v, kind="stable")]
