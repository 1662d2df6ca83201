"""CROWN over a batch of input boxes at once: the bounding step of branch and bound.

``crown.py`` bounds one box; branch and bound (``bab.py``) bounds hundreds of
small sub-boxes, so this module carries a leading batch axis ``B`` through the
same back-substitution: coefficients ``a`` of shape ``[B, m, size]``, linear
layers touched only through the ``Linear`` interface (``backward``,
``bias_vector``, ``forward_abs``), ``Add(source)`` layers handing their
coefficients both to the previous layer and (pending) to layer ``source``.

Every activation's pre-activation bounds are CROWN ∩ IBP ∩ the bounds of the
parent box (a sub-box inherits them: they stay sound on any subset), computed
front to back. The last layer's *upper* linear bound is returned as
``(A, c)`` with ``y <= A·x + c`` on each box, so the caller can both
concretize it and evaluate the network at the box corner that maximizes it.
"""

import numpy as np

from tf1norm.bounds import relaxations
from tf1norm.bounds.network import Activation, Add, Linear


class BoxBounds:
    """Bounds of a network on a batch of boxes ``lower, upper`` of shape ``[B, n]``.

    Attributes:
      pre: ``{activation layer index: (l, u)}``, each ``[B, size]``.
      slope, intercept: ``[B, outputs, n]`` and ``[B, outputs]``: the upper
        linear bound ``y <= slope·x + intercept`` of every output on each box.
      upper_bound: ``[B, outputs]``, that linear bound maximized over each box.
      argmax: ``[B, outputs, n]``, the box corner where it is maximal.
    """

    def __init__(self, network, lower, upper, parent_pre=None, refine=True):
        self.network, self.lower, self.upper, self.refine = network, lower, upper, refine
        self.relaxed, self.pre = {}, {}
        self._intervals(parent_pre or {})
        last = len(network.layers) - 1
        self.slope, self.intercept = self._backward(last, upper_side=True)
        positive = self.slope > 0
        self.argmax = np.where(positive, upper[:, None, :], lower[:, None, :])
        self.upper_bound = np.einsum("bmn,bmn->bm", self.slope, self.argmax) + self.intercept

    def unstable_counts(self):
        """``[B]``: how many ReLUs are neither always on nor always off on each box."""
        count = np.zeros(self.lower.shape[0], np.int64)
        for l, u in self.pre.values():
            count += np.sum((l < 0) & (u > 0), axis=1)
        return count

    def _intervals(self, parent_pre):
        """IBP front to back; at every activation, tighten its input with CROWN and the parent."""
        low, high = self.lower, self.upper
        outputs = {-1: (low, high)}
        for k, layer in enumerate(self.network.layers):
            if isinstance(layer, Linear):
                centre, radius = (low + high) / 2, (high - low) / 2
                centre, radius = layer(centre), layer.forward_abs(radius)
                low, high = centre - radius, centre + radius
            elif isinstance(layer, Add):
                low, high = low + outputs[layer.source][0], high + outputs[layer.source][1]
            else:
                low, high = self._activation(k, layer, low, high, parent_pre.get(k))
            outputs[k] = (low, high)

    def _activation(self, k, layer, low, high, parent):
        """Pre-activation bounds of layer ``k``; returns the interval of its output."""
        if layer.kind != "linear":
            if parent is not None:
                low, high = np.maximum(low, parent[0]), np.minimum(high, parent[1])
            rows, valid = self._open_rows(low, high, parent)
            if rows.shape[1] and (self.refine or parent is None):
                crown_low = self._backward(k - 1, False, rows)
                crown_high = self._backward(k - 1, True, rows)
                low, high = low.copy(), high.copy()
                batch = np.arange(rows.shape[0])[:, None].repeat(rows.shape[1], 1)
                b, i = batch[valid], rows[valid]
                low[b, i] = np.maximum(low[b, i], crown_low[valid])
                high[b, i] = np.minimum(high[b, i], crown_high[valid])
            high = np.maximum(high, low)  # rounding can cross them on a degenerate box
            self.pre[k] = (low, high)
            self.relaxed[k] = relaxations.for_layer(layer, low, high)
        return layer(low), layer(high)

    @staticmethod
    def _open_rows(low, high, parent):
        """Per box, the units whose sign is still open (all units without a parent).

        Returns ``rows [B, m]`` (padded with unit 0) and ``valid [B, m]``.
        """
        if parent is None:
            rows = np.broadcast_to(np.arange(low.shape[1]), low.shape)
            return rows, np.ones(low.shape, bool)
        open_ = (low < 0) & (high > 0)
        width = int(open_.sum(axis=1).max()) if open_.size else 0
        order = np.argsort(~open_, axis=1, kind="stable")[:, :width]
        valid = np.take_along_axis(open_, order, axis=1)
        return np.where(valid, order, 0), valid

    def _backward(self, target, upper_side, rows=None):
        """Upper (or lower) bound of units ``rows`` of layer ``target``'s output, per box.

        With ``rows=None``: the linear bound ``(a, c)`` of every unit in terms of x.
        """
        batch = self.lower.shape[0]
        size = self.network.sizes[target]
        if rows is None:
            a = np.broadcast_to(np.eye(size), (batch, size, size)).copy()
        else:
            a = np.eye(size)[rows]
        c = np.zeros(a.shape[:2])
        pending = {}
        for k in range(target, -1, -1):
            if k in pending:
                a = a + pending.pop(k)
            a, c = self._step(k, a, c, pending, upper_side)
        if -1 in pending:
            a = a + pending.pop(-1)
        if rows is None:
            return a, c
        return self._concretize(a, c, upper_side)

    def _step(self, k, a, c, pending, upper_side):
        """Carry ``(a, c)`` from the output of layer ``k`` to its input."""
        layer = self.network.layers[k]
        if isinstance(layer, Linear):
            batch, rows, size = a.shape
            c = c + a @ layer.bias_vector
            return layer.backward(a.reshape(batch * rows, size)).reshape(batch, rows, -1), c
        if isinstance(layer, Add):
            pending[layer.source] = pending.get(layer.source, 0) + a
            return a, c
        if not isinstance(layer, Activation) or layer.kind == "linear":
            return a, c
        sl, il, su, iu = self.relaxed[k]
        positive, negative = np.maximum(a, 0), np.minimum(a, 0)
        if upper_side:
            sl, il, su, iu = su, iu, sl, il
        c = c + np.einsum("bms,bs->bm", positive, il) + np.einsum("bms,bs->bm", negative, iu)
        return positive * sl[:, None, :] + negative * su[:, None, :], c

    def _concretize(self, a, c, upper_side):
        """The linear bound ``a·x + c`` maximized (or minimized) over each box."""
        first, second = (self.upper, self.lower) if upper_side else (self.lower, self.upper)
        return (
            np.einsum("bms,bs->bm", np.maximum(a, 0), first)
            + np.einsum("bms,bs->bm", np.minimum(a, 0), second)
            + c
        )
