"""CROWN: backward linear bound propagation (Zhang et al., NeurIPS 2018).

For a target ``A·h + c`` (``h`` the output of some layer) the bound is
carried backwards: through ``Dense`` ``A ← A·Wᵀ, c ← c + A·b``; through an
activation the positive part of ``A`` takes the lower relaxation and the
negative part the upper one (for the lower bound; swapped for the upper);
at the input the box is used exactly. Pre-activation bounds of every
activation are computed the same way, front to back, and intersected with
IBP bounds.
"""

import numpy as np

from tf1norm.bounds import relaxations
from tf1norm.bounds.interval import IntervalBounds
from tf1norm.bounds.network import Activation, Dense


class LinearBounds:
    """Lower and upper linear functions ``A_lo·h + c_lo <= target <= A_up·h + c_up``."""

    def __init__(self, size):
        self.a_lo, self.a_up = np.eye(size), np.eye(size)
        self.c_lo, self.c_up = np.zeros(size), np.zeros(size)

    def apply_dense(self, layer):
        self.c_lo = self.c_lo + self.a_lo @ layer.bias
        self.c_up = self.c_up + self.a_up @ layer.bias
        self.a_lo, self.a_up = self.a_lo @ layer.kernel.T, self.a_up @ layer.kernel.T

    def apply_activation(self, layer, l, u):
        sl, il, su, iu = relaxations.for_layer(layer, l, u)
        pos, neg = np.maximum(self.a_lo, 0), np.minimum(self.a_lo, 0)
        self.c_lo = self.c_lo + pos @ il + neg @ iu
        self.a_lo = pos * sl + neg * su
        pos, neg = np.maximum(self.a_up, 0), np.minimum(self.a_up, 0)
        self.c_up = self.c_up + pos @ iu + neg @ il
        self.a_up = pos * su + neg * sl

    def concretize(self, lower, upper):
        low = np.maximum(self.a_lo, 0) @ lower + np.minimum(self.a_lo, 0) @ upper + self.c_lo
        high = np.maximum(self.a_up, 0) @ upper + np.minimum(self.a_up, 0) @ lower + self.c_up
        return low, high


def _size_after(network, index):
    size = network.input_size
    for layer in network.layers[:index + 1]:
        if isinstance(layer, Dense):
            size = layer.kernel.shape[1]
    return size


def backward(network, index, pre_bounds, lower, upper):
    """Bounds of the output of layer ``index`` via a backward pass to the input."""
    bounds = LinearBounds(_size_after(network, index))
    for k in range(index, -1, -1):
        layer = network.layers[k]
        if isinstance(layer, Dense):
            bounds.apply_dense(layer)
        else:
            bounds.apply_activation(layer, *pre_bounds[k])
    return bounds.concretize(lower, upper)


def pre_activation_bounds(network, lower, upper):
    """``{layer index: (l, u)}`` for every activation layer, CROWN ∩ IBP, front to back."""
    pre_bounds, ibp = {}, IntervalBounds(lower, upper)
    for index, layer in enumerate(network.layers):
        if isinstance(layer, Activation):
            l, u = backward(network, index - 1, pre_bounds, lower, upper)
            pre_bounds[index] = (np.maximum(l, ibp.lower), np.minimum(u, ibp.upper))
            ibp = IntervalBounds(*pre_bounds[index])
        ibp = ibp.apply(layer)
    return pre_bounds


def crown(network, lower, upper):
    """CROWN bounds of every output over the box."""
    pre_bounds = pre_activation_bounds(network, lower, upper)
    return backward(network, len(network.layers) - 1, pre_bounds, lower, upper)
