"""NumPy re-implementations of tf1norm's math, written from the definitions."""

import numpy as np


def default_axes(rank):
    return tuple(range(max(rank - 1, 1)))


def max_norm(w, threshold, axes=None):
    axes = default_axes(w.ndim) if axes is None else axes
    norm = np.sqrt(np.sum(w.astype(np.float64) ** 2, axis=axes, keepdims=True))
    scale = np.where(norm > threshold, threshold / np.where(norm > 0, norm, 1), 1.0)
    return (w * scale).astype(w.dtype)


def norms(w, axes=None):
    axes = default_axes(w.ndim) if axes is None else axes
    return np.sqrt(np.sum(w.astype(np.float64) ** 2, axis=axes))


def unit_norm(w, axes=None, epsilon=1e-12):
    axes = default_axes(w.ndim) if axes is None else axes
    sq = np.sum(w.astype(np.float64) ** 2, axis=axes, keepdims=True)
    return (w / np.sqrt(np.maximum(sq, epsilon))).astype(w.dtype)


def min_max_norm(w, lo, hi, rate, axes=None):
    axes = default_axes(w.ndim) if axes is None else axes
    n = np.sqrt(np.sum(w.astype(np.float64) ** 2, axis=axes, keepdims=True))
    target = rate * np.clip(n, lo, hi) + (1 - rate) * n
    return (w * np.where(n > 0, target / np.where(n > 0, n, 1), 1.0)).astype(w.dtype)
