"""A network as a list of NumPy layers: the common input of every bounds method.

Layers act on row vectors: ``Dense`` computes ``x @ W + b`` (TF's ``[in, out]``
kernel layout), ``Activation`` applies an elementwise function. Sources
(NumPy lists today) build a ``Network``; methods walk its layers.
"""

import numpy as np

ACTIVATIONS = ("linear", "relu", "leaky_relu", "sigmoid", "tanh")


class Dense:
    """``x @ kernel + bias`` with ``kernel`` of shape ``[in, out]``."""

    def __init__(self, kernel, bias=None):
        self.kernel = np.asarray(kernel, np.float64)
        if self.kernel.ndim != 2:
            raise ValueError(f"Dense: `kernel` must be a matrix [in, out]; got shape "
                             f"{self.kernel.shape}.")
        out = self.kernel.shape[1]
        self.bias = np.zeros(out) if bias is None else np.asarray(bias, np.float64).reshape(-1)
        if self.bias.shape != (out,):
            raise ValueError(f"Dense: `bias` must have shape ({out},); got {self.bias.shape}.")

    def __call__(self, x):
        return x @ self.kernel + self.bias


class Activation:
    """Elementwise activation: linear, relu, leaky_relu(alpha), sigmoid or tanh."""

    def __init__(self, kind, alpha=0.2):
        if kind not in ACTIVATIONS:
            raise ValueError(f"Activation: unsupported activation {kind!r}; supported: "
                             f"{', '.join(ACTIVATIONS)}.")
        if kind == "leaky_relu" and not 0 <= alpha < 1:
            raise ValueError(f"Activation: leaky_relu `alpha` must be in [0, 1); got {alpha!r}.")
        self.kind, self.alpha = kind, float(alpha)

    def __call__(self, z):
        return evaluate(self.kind, z, self.alpha)


def evaluate(kind, z, alpha=0.2):
    """The activation function itself, on NumPy arrays."""
    if kind == "relu":
        return np.maximum(z, 0.0)
    if kind == "leaky_relu":
        return np.where(z >= 0, z, alpha * z)
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if kind == "tanh":
        return np.tanh(z)
    return z


class Network:
    """An ordered list of ``Dense`` and ``Activation`` layers."""

    def __init__(self, layers):
        self.layers = list(layers)
        if not self.layers or not isinstance(self.layers[0], Dense):
            raise ValueError("Network: the first layer must be Dense.")
        self.input_size = self.layers[0].kernel.shape[0]
        size = self.input_size
        for layer in self.layers:
            if isinstance(layer, Dense):
                if layer.kernel.shape[0] != size:
                    raise ValueError(f"Network: a Dense layer expects {layer.kernel.shape[0]} "
                                     f"inputs but the previous layer gives {size}.")
                size = layer.kernel.shape[1]
        self.output_size = size

    @classmethod
    def from_numpy(cls, weights, biases=None, activations=None):
        """Build from lists: kernels ``[in, out]``, biases, activation names per layer.

        ``activations[i]`` follows layer ``i`` (default: relu between layers,
        linear after the last).
        """
        biases = [None] * len(weights) if biases is None else list(biases)
        if activations is None:
            activations = ["relu"] * (len(weights) - 1) + ["linear"]
        if not len(weights) == len(biases) == len(activations):
            raise ValueError(f"Network.from_numpy: got {len(weights)} weights, {len(biases)} "
                             f"biases and {len(activations)} activations; give one per layer.")
        layers = []
        for kernel, bias, activation in zip(weights, biases, activations):
            layers.append(Dense(kernel, bias))
            if activation != "linear":
                layers.append(Activation(activation))
        return cls(layers)

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def check_box(network, lower, upper):
    """``lower``/``upper`` as float64 vectors of the input size, lower <= upper."""
    lower = np.asarray(lower, np.float64).reshape(-1)
    upper = np.asarray(upper, np.float64).reshape(-1)
    if lower.shape != (network.input_size,) or upper.shape != (network.input_size,):
        raise ValueError(f"bounds: `lower` and `upper` need {network.input_size} values (one per "
                         f"input feature); got {lower.size} and {upper.size}.")
    if np.any(lower > upper):
        bad = int(np.argmax(lower > upper))
        raise ValueError(f"bounds: `lower` must be <= `upper`; feature {bad} has "
                         f"{lower[bad]} > {upper[bad]}.")
    return lower, upper
