"""Convert an ONNX graph into ``Network`` layers (see ``formats.from_onnx``).

Nodes are visited in the file's (topological) order. Each value is tracked as
``(layer index, ONNX per-example shape, nhwc)``: 4-D values that went through
a convolution are held in our NHWC flattened order (``nhwc=True``); every
other value, and the network's input and output, is in ONNX's own row-major
flattened order. ``Permute`` layers convert between the two where needed
(before the first Conv of an NCHW input, at a Flatten after a Conv). A node
that reads a value other than the last layer's output (the second branch of
a residual block) is preceded by a zero layer plus ``Add(index)``.
"""

import numpy as np

from tf1norm.bounds.conv import Conv2D
from tf1norm.bounds.graph_trace import last_output_size
from tf1norm.bounds.network import Activation, Add, Dense, Diagonal, Permute, zero_layer

SUPPORTED = (
    "Gemm, MatMul, Add, Sub, Mul, Div (by constants), Relu, LeakyRelu, Sigmoid, "
    "Tanh, Flatten, Reshape (to flat), "
    "Conv, Identity, Constant"
)
_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "LeakyRelu": "leaky_relu"}


def nchw_to_nhwc_order(shape):
    """Indices taking an NCHW-flattened ``(C, H, W)`` vector to NHWC-flattened order."""
    channels, height, width = shape
    return np.arange(channels * height * width).reshape(shape).transpose(1, 2, 0).ravel()


def nhwc_to_nchw_order(shape):
    """Indices taking an NHWC-flattened vector of ONNX shape ``(C, H, W)`` to NCHW order."""
    channels, height, width = shape
    return (
        np.arange(channels * height * width)
        .reshape(height, width, channels)
        .transpose(2, 0, 1)
        .ravel()
    )


def fold_affine(layers):
    """Merge each ``Diagonal`` into a neighbouring ``Dense`` (same map, fewer layers).

    ONNX exports write a bias as ``MatMul`` then ``Add`` and an input
    normalization as ``Sub``/``Div`` before the first ``MatMul``; each becomes
    a ``Diagonal`` here. Folding them keeps the function unchanged (up to
    rounding) and makes every bound pass cheaper. Networks with residual
    ``Add`` layers are returned unchanged (their indices must stay put).
    """
    if any(isinstance(layer, Add) for layer in layers):
        return layers
    folded = []
    for layer in layers:
        previous = folded[-1] if folded else None
        if type(layer) is Diagonal and type(previous) is Diagonal:
            folded[-1] = Diagonal(
                previous.scale * layer.scale, previous.shift * layer.scale + layer.shift
            )
        elif type(layer) is Diagonal and type(previous) is Dense:
            folded[-1] = Dense(
                previous.kernel * layer.scale, previous.bias * layer.scale + layer.shift
            )
        elif type(layer) is Dense and type(previous) is Diagonal:
            folded[-1] = Dense(
                previous.scale[:, None] * layer.kernel, previous.shift @ layer.kernel + layer.bias
            )
        else:
            folded.append(layer)
    return folded


class OnnxConverter:
    """Builds the layers; one ``_op_<Type>`` method per supported ONNX op."""

    def __init__(self, graph, path, numpy_helper):
        self.path, self.to_array = path, numpy_helper.to_array
        self.constants = {t.name: self.to_array(t) for t in graph.initializer}
        self.layers, self.values = [], {}
        inputs = [i for i in graph.input if i.name not in self.constants]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ValueError(
                f"from_onnx: {path!r} must have one data input and one output; "
                f"got {[i.name for i in inputs]} and "
                f"{[o.name for o in graph.output]}."
            )
        dims = inputs[0].type.tensor_type.shape.dim[1:]
        shape = tuple(d.dim_value for d in dims)
        if not shape or min(shape) < 1:
            raise ValueError(
                f"from_onnx: {path!r}: input {inputs[0].name} needs a static shape "
                f"besides the batch axis; got {shape}."
            )
        self.input_shape = shape
        self.values[inputs[0].name] = (-1, shape, False)
        self.nodes, self.output = graph.node, graph.output[0].name

    def convert(self):
        """The layer list; the last layer's output is the ONNX output in ONNX order."""
        for node in self.nodes:
            handler = getattr(self, "_op_" + node.op_type, None)
            if node.op_type in _ACTIVATIONS:
                handler = self._op_activation
            if handler is None:
                raise ValueError(
                    f"from_onnx: {self.path!r}: node {self._name(node)} of op type "
                    f"{node.op_type} is not supported; supported: {SUPPORTED}."
                )
            result = handler(node)
            if result is not None:
                self.values[node.output[0]] = result
        _, shape, nhwc = self._value(self.output, "the graph output")
        self._continue_from(self.output)
        if nhwc:
            self.layers.append(Permute(nhwc_to_nchw_order(shape)))
        return fold_affine(self.layers)

    def _value(self, name, node):
        if name not in self.values:
            where = node if isinstance(node, str) else f"node {self._name(node)} ({node.op_type})"
            raise ValueError(
                f"from_onnx: {self.path!r}: {where} reads {name!r}, which is "
                "neither computed from the input nor a supported constant."
            )
        return self.values[name]

    def _attrs(self, node):
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def _continue_from(self, name, node="the graph output"):
        """Make value ``name`` the last layer's output (a jump if needed); its index."""
        index, shape, _ = self._value(name, node)
        if index != len(self.layers) - 1:
            size = int(np.prod(shape))
            previous = last_output_size(self.layers, int(np.prod(self.input_shape)))
            self.layers.append(zero_layer(previous, size))
            self.layers.append(Add(index))
        return len(self.layers) - 1

    def _append(self, layer, shape, nhwc):
        self.layers.append(layer)
        return len(self.layers) - 1, shape, nhwc

    def _flat_input(self, node):
        """The node's data input as a flat ONNX-order vector; its length."""
        index, shape, nhwc = self._value(node.input[0], node)
        self._continue_from(node.input[0], node)
        if nhwc:
            self.layers.append(Permute(nhwc_to_nchw_order(shape)))
        return int(np.prod(shape))

    def _op_Identity(self, node):
        if node.input[0] in self.constants:
            self.constants[node.output[0]] = self.constants[node.input[0]]
            return None
        return self._value(node.input[0], node)

    def _op_Constant(self, node):
        self.constants[node.output[0]] = np.asarray(self.to_array(self._attrs(node)["value"]))

    def _op_activation(self, node):
        _, shape, nhwc = self._value(node.input[0], node)
        self._continue_from(node.input[0], node)
        alpha = self._attrs(node).get("alpha", 0.01) if node.op_type == "LeakyRelu" else 0.2
        return self._append(Activation(_ACTIVATIONS[node.op_type], alpha), shape, nhwc)

    def _op_Flatten(self, node):
        if self._attrs(node).get("axis", 1) != 1:
            raise ValueError(
                f"from_onnx: {self.path!r}: Flatten {self._name(node)} must use "
                "axis=1 "
                f"(keep the batch axis); got {self._attrs(node)['axis']}."
            )
        size = self._flat_input(node)
        return len(self.layers) - 1, (size,), False

    def _op_Reshape(self, node):
        target = self.constants.get(node.input[1])
        _, shape, _ = self._value(node.input[0], node)
        size = int(np.prod(shape))
        if target is None or len(target) != 2 or target[1] not in (-1, size):
            raise ValueError(
                f"from_onnx: {self.path!r}: Reshape {self._name(node)} must "
                "flatten to "
                f"[batch, {size}] with a constant shape; got {target}."
            )
        self._flat_input(node)
        return len(self.layers) - 1, (size,), False

    def _op_Gemm(self, node):
        attrs = self._attrs(node)
        if attrs.get("transA", 0) or node.input[1] not in self.constants:
            raise ValueError(
                f"from_onnx: {self.path!r}: Gemm {self._name(node)} needs data as A "
                "(transA=0) and a constant B."
            )
        kernel = self.constants[node.input[1]].astype(np.float64)
        kernel = attrs.get("alpha", 1.0) * (kernel.T if attrs.get("transB", 0) else kernel)
        bias = np.zeros(kernel.shape[1])
        if len(node.input) > 2 and node.input[2]:
            bias = bias + attrs.get("beta", 1.0) * self.constants[node.input[2]].reshape(-1)
        self._flat_input(node)
        return self._append(Dense(kernel, bias), (kernel.shape[1],), False)

    def _op_MatMul(self, node):
        if node.input[1] not in self.constants or self.constants[node.input[1]].ndim != 2:
            raise ValueError(
                f"from_onnx: {self.path!r}: MatMul {self._name(node)} must "
                "multiply the "
                "data (first operand) by a constant matrix."
            )
        kernel = self.constants[node.input[1]].astype(np.float64)
        self._flat_input(node)
        return self._append(Dense(kernel), (kernel.shape[1],), False)

    def _op_Add(self, node):
        left, right = node.input
        if left in self.constants:
            left, right = right, left
        if right not in self.constants:
            return self._residual(node, left, right)
        return self._elementwise(node, left, 1.0, self.constants[right])

    def _op_Sub(self, node):
        """``data − c`` or ``c − data`` with a constant ``c`` (e.g. ACAS Xu's input mean)."""
        left, right = node.input
        if right in self.constants:
            return self._elementwise(node, left, 1.0, -self.constants[right])
        if left in self.constants:
            return self._elementwise(node, right, -1.0, self.constants[left])
        raise self._needs_constant(node)

    def _op_Mul(self, node):
        left, right = node.input
        if left in self.constants:
            left, right = right, left
        if right not in self.constants:
            raise self._needs_constant(node)
        return self._elementwise(node, left, self.constants[right], 0.0)

    def _op_Div(self, node):
        """``data / c`` with a constant non-zero ``c`` (e.g. ACAS Xu's input range)."""
        data, divisor = node.input
        values = self.constants.get(divisor)
        if values is None or data in self.constants or np.any(values == 0):
            raise ValueError(
                f"from_onnx: {self.path!r}: Div {self._name(node)} must divide "
                "the data by a constant without zeros."
            )
        return self._elementwise(node, data, 1.0 / values.astype(np.float64), 0.0)

    def _needs_constant(self, node):
        return ValueError(
            f"from_onnx: {self.path!r}: {node.op_type} {self._name(node)} needs "
            "one constant operand (an elementwise affine map of the data)."
        )

    @staticmethod
    def _name(node):
        return repr(node.name) if node.name else f"(unnamed, output {node.output[0]!r})"

    def _elementwise(self, node, data, scale, shift):
        """``data · scale + shift`` with constants broadcast to the data: a ``Diagonal`` layer."""
        index, shape, nhwc = self._value(data, node)
        scale, shift = (self._broadcast(node, value, shape, nhwc) for value in (scale, shift))
        self._continue_from(data, node)
        self.layers.append(Diagonal(scale, shift))
        return len(self.layers) - 1, shape, nhwc

    def _broadcast(self, node, value, shape, nhwc):
        """A constant broadcast to the data's per-example ``shape``, flattened in our order."""
        value = np.asarray(value, np.float64)
        while value.ndim > len(shape) and value.shape[0] == 1:  # a leading batch axis
            value = value.reshape(value.shape[1:])
        try:
            value = np.broadcast_to(value, shape)
        except ValueError:
            raise ValueError(
                f"from_onnx: {self.path!r}: {node.op_type} {self._name(node)}: "
                f"constant of shape {value.shape} does not broadcast to the data "
                f"shape {shape}."
            ) from None
        return (value.transpose(1, 2, 0) if nhwc else value).ravel()

    def _residual(self, node, left, right):
        """``left + right``, both computed from the input: an ``Add`` layer.

        If one is held in NHWC order and the other in ONNX order, the NHWC one
        is permuted to ONNX order first (and so is the sum).
        """
        (_, shape, left_nhwc), (_, right_shape, right_nhwc) = (
            self._value(left, node),
            self._value(right, node),
        )
        if shape != right_shape:
            raise ValueError(
                f"from_onnx: {self.path!r}: Add {self._name(node)} sums values of "
                f"shapes {shape} and {right_shape}; they must match."
            )
        if (
            right_nhwc
            and not left_nhwc
            or left_nhwc == right_nhwc
            and self._value(right, node)[0] == len(self.layers) - 1
        ):
            left, right = right, left  # continue from `left`, add `right`
        source = self._value(right, node)[0]
        self._continue_from(left, node)
        if left_nhwc != right_nhwc:
            self.layers.append(Permute(nhwc_to_nchw_order(shape)))
        if source == len(self.layers) - 1:
            raise ValueError(
                f"from_onnx: {self.path!r}: Add {self._name(node)} adds a value to "
                "itself; unsupported."
            )
        return self._append(Add(source), shape, left_nhwc and right_nhwc)

    def _op_Conv(self, node):
        _, shape, nhwc = self._value(node.input[0], node)
        layer = self._conv_layer(node, shape)
        self._continue_from(node.input[0], node)
        if not nhwc:
            self.layers.append(Permute(nchw_to_nhwc_order(shape)))
        height, width, channels = layer.output_shape
        return self._append(layer, (channels, height, width), True)

    def _conv_layer(self, node, shape):
        """A ``Conv2D`` for an ONNX Conv node on an input of ONNX shape ``(C, H, W)``."""
        attrs, where = self._attrs(node), f"from_onnx: {self.path!r}: Conv {self._name(node)}"
        if len(shape) != 3 or node.input[1] not in self.constants or attrs.get("group", 1) != 1:
            raise ValueError(
                f"{where} needs a (C, H, W) input, a constant kernel and group=1; "
                f"got input shape {shape}, group {attrs.get('group', 1)}."
            )
        kernel = self.constants[node.input[1]].astype(np.float64).transpose(2, 3, 1, 0)
        bias = self.constants[node.input[2]] if len(node.input) > 2 and node.input[2] else None
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER"):
            raise ValueError(
                f"{where}: auto_pad {auto_pad} is unsupported; use explicit pads, "
                "VALID or SAME_UPPER."
            )
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        padding = {"VALID": "VALID", "SAME_UPPER": "SAME"}.get(
            auto_pad, ((pads[0], pads[2]), (pads[1], pads[3]))
        )
        channels, height, width = shape
        return Conv2D(
            kernel,
            (height, width, channels),
            bias,
            attrs.get("strides", 1),
            padding,
            attrs.get("dilations", 1),
        )
