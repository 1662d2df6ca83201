"""Build a ``Network`` from Keras models and from TF1 graphs.

Convolutions become ``conv.Conv2D`` layers (never dense matrices) over the
flattened channels-last activations. Batch normalization in inference mode is
a per-channel scale and shift: folded into a directly preceding Dense or
Conv2D (kernel scaled per output channel, bias shifted), otherwise a
``Diagonal`` layer. ``from_graph`` also follows residual branches: an
``Add``/``AddV2`` of two tensors that both depend on the input becomes an
``Add(source)`` layer.
"""

import numpy as np

from tf1norm._src import checks as _checks
from tf1norm._src import graph_checks as _graph_checks
from tf1norm.graph import registry
from tf1norm._src.compat import tf
from tf1norm.bounds.conv import Conv2D
from tf1norm.bounds.graph_trace import GraphTracer, append_channel_affine
from tf1norm.bounds.network import ACTIVATIONS, Activation, Dense, Network

_KERAS_SUPPORTED = (
    "Dense, Conv2D, Flatten, BatchNormalization, Activation, ReLU, LeakyReLU, Dropout"
)


def _activation_layers(name, alpha=0.2):
    name = {"softmax": None}.get(name, name)
    if name is None or name not in ACTIVATIONS:
        raise ValueError(
            f"from_keras: activation {name!r} is not supported; supported: "
            f"{', '.join(ACTIVATIONS)} (drop a final softmax: it is monotone "
            "per output only jointly, bound the logits instead)."
        )
    return [] if name == "linear" else [Activation(name, alpha)]


def _bn_weights(layer):
    config, weights = layer.get_config(), list(layer.get_weights())
    channels = weights[-1].size
    gamma = weights.pop(0) if config.get("scale", True) else np.ones(channels)
    beta = weights.pop(0) if config.get("center", True) else np.zeros(channels)
    return gamma, beta, weights[0], weights[1]


def _keras_conv(layer, shape):
    config = layer.get_config()
    data_format = config.get("data_format", "channels_last")
    if data_format != "channels_last" or config.get("groups", 1) != 1:
        raise ValueError(
            f"from_keras: Conv2D {layer.name!r} must be channels_last with "
            f"groups=1; got {config.get('data_format')}, groups "
            f"{config.get('groups')}."
        )
    kernel, *bias = layer.get_weights()
    return Conv2D(
        kernel,
        shape,
        bias[0] if bias else None,
        config["strides"],
        config["padding"].upper(),
        config["dilation_rate"],
    )


def _keras_layer(layer, shape, layers):
    """Append the layers for one Keras layer; return the new per-example shape."""
    kind, config = type(layer).__name__, layer.get_config()
    if kind in ("InputLayer", "Dropout", "Flatten"):
        return shape
    if kind in ("Dense", "Conv2D"):
        new = _keras_conv(layer, shape) if kind == "Conv2D" else Dense(*layer.get_weights())
        layers.append(new)
        layers.extend(_activation_layers(config["activation"]))
        return new.output_shape if kind == "Conv2D" else (new.out_size,)
    if kind == "BatchNormalization":
        gamma, beta, mean, variance = _bn_weights(layer)
        scale = gamma / np.sqrt(variance + config["epsilon"])
        append_channel_affine(layers, scale, beta - mean * scale, int(np.prod(shape)))
        return shape
    if kind in ("Activation", "ReLU", "LeakyReLU"):
        name = {"ReLU": "relu", "LeakyReLU": "leaky_relu"}.get(kind, config.get("activation"))
        layers.extend(
            _activation_layers(name, config.get("negative_slope", config.get("alpha", 0.2)))
        )
        return shape
    raise ValueError(
        f"from_keras: layer {layer.name!r} of type {kind} is not supported; "
        f"supported: {_KERAS_SUPPORTED}."
    )


def from_keras(model):
    """A ``Network`` from a tf-keras or Keras 3 ``Sequential`` model (inference mode).

    Supported layers: Dense, Conv2D (channels last, as a ``Conv2D`` layer),
    Flatten, BatchNormalization (folded into a preceding Dense/Conv2D, else a
    ``Diagonal`` layer), Activation, ReLU, LeakyReLU, Dropout and InputLayer;
    activations linear, relu, leaky_relu, sigmoid, tanh. The network's input
    is the model input flattened row-major (``tf.reshape(x, [n, -1])``).

    Raises:
      ValueError: an unsupported layer or activation, named in the message.
    """
    shape, layers = tuple(model.input_shape[1:]), []
    for layer in model.layers:
        shape = _keras_layer(layer, shape, layers)
    return Network(layers)


def from_graph(output, input_placeholder, value_of):
    """A ``Network`` traced from ``output`` back to ``input_placeholder`` in a TF1 graph.

    Supported ops: MatMul, Conv2D (NHWC, static input shape, SAME/VALID/explicit
    padding; becomes a ``Conv2D`` layer), BiasAdd, Add/AddV2 (with a constant
    or variable operand: a bias; with two operands that depend on the input: a
    residual ``Add`` layer), FusedBatchNorm (inference), Reshape (a flatten
    keeps the row-major order), Relu, LeakyRelu, Sigmoid, Tanh, Identity.
    ``value_of(tensor)`` returns the NumPy value of a weight tensor
    (``session.run``, or a checkpoint lookup; see ``graph_value_reader``).

    Two branches that both start from an earlier tensor (``f(x) + g(x)``) are
    laid out one after the other; the second starts from a zero layer plus an
    ``Add`` of that tensor, which is exact.

    Raises:
      ValueError: an unsupported op, named in the message.
    """
    return Network(GraphTracer(input_placeholder, value_of).trace(output))


def graph_value_reader(session=None, checkpoint=None):
    """``value_of(tensor)`` reading weights from a session or a checkpoint.

    Raises:
      TypeError: neither a session nor a checkpoint path, or ``session`` not a session.
      ValueError: ``checkpoint`` cannot be read; when ``value_of`` runs, a
        truncated ``.data`` file (both ``tf1norm._src.checks.CheckpointError``).
    """
    fn = "graph_value_reader"
    if checkpoint is None:
        _graph_checks.session(session, fn)
    reader = _checks.checkpoint_reader(checkpoint, fn, "checkpoint") if checkpoint else None

    def value_of(tensor):
        static = tf.get_static_value(tensor)
        if static is not None:
            return static
        if reader is not None:
            return _checks.checkpoint_tensor(
                reader, registry.storage_op(tensor).name, checkpoint, fn, "checkpoint"
            )
        return session.run(tensor)

    return value_of
