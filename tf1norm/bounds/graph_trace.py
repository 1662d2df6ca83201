"""Trace a TF1 graph, output back to input, into ``Network`` layers (see ``sources.from_graph``).

Layers are laid out in the order their inputs become available: each traced
tensor maps to the index of the layer whose output it is (``-1``: the
input). A layer that reads a tensor other than the last layer's output (the
second branch of ``f(x) + g(x)``) is preceded by a *jump*: a zero layer plus
``Add(index of that tensor)``, which reproduces the tensor exactly.
"""

import sys

import numpy as np

from tf1norm.bounds.conv import Conv2D
from tf1norm.bounds.network import Activation, Add, Dense, Diagonal, zero_layer

_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "LeakyRelu": "leaky_relu"}
_SUPPORTED = (
    "MatMul, Conv2D, BiasAdd, Add, AddV2, FusedBatchNorm, Reshape, Relu, LeakyRelu, "
    "Sigmoid, Tanh, Identity"
)


def scale_channels(layer, scale, shift):
    """``layer`` followed by ``h ↦ h·scale + shift`` per output channel, as one layer.

    Dense and Conv2D absorb it (kernel columns / output channels scaled, bias
    shifted); anything else gives ``None``.
    """
    if isinstance(layer, Dense) and layer.out_size == scale.size:
        return Dense(layer.kernel * scale, layer.bias * scale + shift)
    if isinstance(layer, Conv2D) and layer.kernel.shape[3] == scale.size:
        return Conv2D(
            layer.kernel * scale,
            layer.input_shape,
            layer.bias * scale + shift,
            layer.strides,
            layer.pads,
            layer.dilations,
        )
    return None


def append_channel_affine(layers, scale, shift, size, fold=True):
    """Append ``h·scale + shift`` per channel (``size`` features, channels fastest).

    Folds into ``layers[-1]`` when ``fold`` and it is a Dense/Conv2D of matching
    channels; otherwise appends a ``Diagonal`` layer.
    """
    folded = scale_channels(layers[-1], scale, shift) if fold and layers else None
    if folded is not None:
        layers[-1] = folded
    else:
        repeat = size // scale.size
        layers.append(Diagonal(np.tile(scale, repeat), np.tile(shift, repeat)))


def last_output_size(layers, input_size):
    """The size of the last layer's output (``input_size`` if there is none)."""
    for layer in reversed(layers):
        if hasattr(layer, "out_size"):
            return layer.out_size
    return input_size


def _depends_on(tensor, source):
    seen, stack = set(), [tensor.op]
    while stack:
        op = stack.pop()
        if op is source.op:
            return True
        if op not in seen:
            seen.add(op)
            stack.extend(t.op for t in op.inputs)
    return False


def _flat_size(tensor, what):
    shape = tensor.shape
    if shape.rank is None or not shape[1:].is_fully_defined():
        raise ValueError(
            f"from_graph: {what} needs a static shape (besides the batch); got {shape}."
        )
    return int(np.prod(shape[1:].as_list()))


class GraphTracer:
    """Builds the layer list for ``from_graph``; one ``_op_<Type>`` method per op kind."""

    def __init__(self, input_placeholder, value_of):
        self.input, self.value_of = input_placeholder, value_of
        self.layers, self.index = [], {input_placeholder.name: -1}

    def trace(self, output):
        """The layers computing ``output`` from the input.

        The tracing recurses once per op on the path (a few frames each), so
        the recursion limit is raised for the call to fit deep graphs.
        """
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 8 * len(output.graph.get_operations()) + 1000))
        try:
            self._build(output)
        finally:
            sys.setrecursionlimit(limit)
        return self.layers

    def _build(self, tensor):
        """Index of the layer whose output is ``tensor``, tracing it if needed."""
        if tensor.name not in self.index:
            op = tensor.op
            handler = getattr(self, "_op_" + op.type, None)
            if op.type in _ACTIVATIONS:
                handler = self._op_activation
            if handler is None:
                raise ValueError(
                    f"from_graph: op {op.name} of type {op.type} is not "
                    f"supported; supported: {_SUPPORTED}."
                )
            self.index[tensor.name] = handler(op)
        return self.index[tensor.name]

    def _continue_from(self, tensor):
        """Trace ``tensor`` and make it the last layer's output (a jump if needed)."""
        index = self._build(tensor)
        if index != len(self.layers) - 1:
            size = _flat_size(tensor, f"the branch at {tensor.name}")
            previous = last_output_size(self.layers, _flat_size(self.input, "the input"))
            self.layers.append(zero_layer(previous, size))
            self.layers.append(Add(index))
        return len(self.layers) - 1

    def _append(self, layer):
        self.layers.append(layer)
        return len(self.layers) - 1

    def _op_Identity(self, op):
        return self._build(op.inputs[0])

    _op_Reshape = _op_Identity  # row-major reshapes keep the flattened order

    def _op_activation(self, op):
        self._continue_from(op.inputs[0])
        alpha = op.get_attr("alpha") if op.type == "LeakyRelu" else 0.2
        return self._append(Activation(_ACTIVATIONS[op.type], alpha))

    def _op_MatMul(self, op):
        if op.get_attr("transpose_a"):
            raise ValueError(f"from_graph: MatMul {op.name} transposes its input; unsupported.")
        kernel = np.asarray(self.value_of(op.inputs[1]), np.float64)
        self._continue_from(op.inputs[0])
        return self._append(Dense(kernel.T if op.get_attr("transpose_b") else kernel))

    def _op_Conv2D(self, op):
        shape = op.inputs[0].shape
        if op.get_attr("data_format") != b"NHWC" or not shape[1:].is_fully_defined():
            raise ValueError(
                f"from_graph: Conv2D {op.name} needs NHWC data and a static input "
                f"shape; got {op.get_attr('data_format')!r} and {shape}."
            )
        padding = op.get_attr("padding").decode()
        if padding == "EXPLICIT":
            pads = list(op.get_attr("explicit_paddings"))
            padding = (pads[2:4], pads[4:6])
        self._continue_from(op.inputs[0])
        return self._append(
            Conv2D(
                self.value_of(op.inputs[1]),
                shape[1:].as_list(),
                None,
                op.get_attr("strides"),
                padding,
                op.get_attr("dilations"),
            )
        )

    def _op_BiasAdd(self, op):
        operands = sorted(op.inputs, key=lambda t: not _depends_on(t, self.input))
        if _depends_on(operands[1], self.input):
            return self._residual(op, *operands)
        data, bias = operands
        bias = np.asarray(self.value_of(bias), np.float64)
        index = self._continue_from(data)
        size = _flat_size(data, f"{op.type} {op.name}")
        if bias.ndim > 1 or bias.size not in (1, data.shape[-1]):  # broadcast, then flatten
            bias = np.broadcast_to(bias, data.shape[1:].as_list()).ravel()
        bias = np.broadcast_to(bias.ravel(), (data.shape[-1],)) if bias.size == 1 else bias
        fold = index >= 0 and len(data.consumers()) == 1
        append_channel_affine(self.layers, np.ones(bias.size), bias.ravel(), size, fold)
        return len(self.layers) - 1

    _op_Add = _op_AddV2 = _op_BiasAdd

    def _residual(self, op, first, second):
        """``first + second``, both computed from the input: a residual ``Add`` layer."""
        if _depends_on(first, second):
            first, second = second, first  # build the shortcut (the ancestor) first
        source = self._build(first)
        self._continue_from(second)
        if source == len(self.layers) - 1:
            raise ValueError(
                f"from_graph: {op.type} {op.name} adds a tensor to itself; "
                "unsupported (use a multiplication by 2)."
            )
        return self._append(Add(source))

    def _op_FusedBatchNorm(self, op):
        if op.get_attr("is_training") or op.get_attr("data_format") != b"NHWC":
            raise ValueError(
                f"from_graph: {op.type} {op.name} must be in inference mode "
                "(is_training=False) with NHWC data."
            )
        gamma, beta, mean, variance = (
            np.asarray(self.value_of(t), np.float64).reshape(-1) for t in op.inputs[1:5]
        )
        scale = gamma / np.sqrt(variance + op.get_attr("epsilon"))
        index = self._continue_from(op.inputs[0])
        fold = index >= 0 and len(op.inputs[0].consumers()) == 1
        size = _flat_size(op.inputs[0], f"{op.type} {op.name}")
        append_channel_affine(self.layers, scale, beta - mean * scale, size, fold)
        return len(self.layers) - 1

    _op_FusedBatchNormV2 = _op_FusedBatchNormV3 = _op_FusedBatchNorm
