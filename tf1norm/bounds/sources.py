"""Build a ``Network`` from Keras models and from TF1 graphs.

Convolutions and batch normalization are linear maps, so they become ``Dense``
layers over the flattened (channels-last) activations: a ``Conv2D`` kernel is
turned into its matrix by convolving the identity basis, batch normalization
in inference mode into a per-feature scale and shift.
"""

import numpy as np

from tf1norm import registry
from tf1norm._tf import run_eagerly, tf
from tf1norm.bounds.network import ACTIVATIONS, Activation, Dense, Network

_GRAPH_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh",
                      "LeakyRelu": "leaky_relu"}


def _activation_layers(name, alpha=0.2):
    name = {"softmax": None}.get(name, name)
    if name is None or name not in ACTIVATIONS:
        raise ValueError(f"from_keras: activation {name!r} is not supported; supported: "
                         f"{', '.join(ACTIVATIONS)} (drop a final softmax: it is monotone "
                         "per output only jointly, bound the logits instead).")
    return [] if name == "linear" else [Activation(name, alpha)]


def _conv_matrix(kernel, shape, strides, padding, dilations):
    """(matrix over flattened NHWC input, output shape) of a 2-D convolution on ``shape``."""
    size = int(np.prod(shape))
    basis = np.eye(size).reshape((size,) + tuple(shape))
    kernel = np.asarray(kernel, np.float64)
    out = run_eagerly(lambda: tf.nn.conv2d(basis, kernel, strides, padding,
                                           dilations=dilations).numpy())
    return out.reshape(size, -1), out.shape[1:]


def _tiled(bias, size):
    """A per-channel bias repeated over every position of a flattened NHWC output."""
    return None if bias is None else np.tile(bias, size // bias.size)


def _conv_as_dense(layer, shape):
    """(Dense over the flattened input, output shape) for a Conv2D on ``shape`` (H, W, C)."""
    kernel, *bias = layer.get_weights()
    config = layer.get_config()
    matrix, out_shape = _conv_matrix(kernel, shape, config["strides"],
                                     config["padding"].upper(), config["dilation_rate"])
    return Dense(matrix, _tiled(bias[0] if bias else None, matrix.shape[1])), out_shape


def _batch_norm_as_dense(layer, shape):
    gamma, beta, mean, variance = _bn_weights(layer)
    scale = gamma / np.sqrt(variance + layer.get_config()["epsilon"])
    repeat = int(np.prod(shape)) // scale.size
    return Dense(np.diag(np.tile(scale, repeat)), np.tile(beta - mean * scale, repeat))


def _bn_weights(layer):
    config, weights = layer.get_config(), list(layer.get_weights())
    channels = weights[-1].size
    gamma = weights.pop(0) if config.get("scale", True) else np.ones(channels)
    beta = weights.pop(0) if config.get("center", True) else np.zeros(channels)
    return gamma, beta, weights[0], weights[1]


def from_keras(model):
    """A ``Network`` from a tf-keras or Keras 3 ``Sequential`` model (inference mode).

    Supported layers: Dense, Conv2D (channels last), Flatten, BatchNormalization,
    Activation, ReLU, LeakyReLU, Dropout and InputLayer; activations linear, relu,
    leaky_relu, sigmoid, tanh.

    Raises:
      ValueError: an unsupported layer or activation, named in the message.
    """
    shape = tuple(model.input_shape[1:])
    layers = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("InputLayer", "Dropout", "Flatten"):
            continue
        if kind == "Dense":
            kernel, *bias = layer.get_weights()
            layers.append(Dense(kernel, bias[0] if bias else None))
            layers.extend(_activation_layers(layer.get_config()["activation"]))
            shape = (kernel.shape[1],)
        elif kind == "Conv2D":
            dense, shape = _conv_as_dense(layer, shape)
            layers.append(dense)
            layers.extend(_activation_layers(layer.get_config()["activation"]))
        elif kind == "BatchNormalization":
            layers.append(_batch_norm_as_dense(layer, shape))
        elif kind in ("Activation", "ReLU", "LeakyReLU"):
            config = layer.get_config()
            name = {"ReLU": "relu", "LeakyReLU": "leaky_relu"}.get(kind, config.get("activation"))
            alpha = config.get("negative_slope", config.get("alpha", 0.2))
            layers.extend(_activation_layers(name, alpha))
        else:
            raise ValueError(f"from_keras: layer {layer.name!r} of type {kind} is not "
                             "supported; supported: Dense, Conv2D, Flatten, BatchNormalization, "
                             "Activation, ReLU, LeakyReLU, Dropout.")
    return Network(_merge_dense(layers))


def _merge_dense(layers):
    """Fold consecutive Dense layers (e.g. conv then batch norm) into one."""
    merged = []
    for layer in layers:
        if isinstance(layer, Dense) and merged and isinstance(merged[-1], Dense):
            previous = merged.pop()
            layer = Dense(previous.kernel @ layer.kernel, previous.bias @ layer.kernel + layer.bias)
        merged.append(layer)
    return merged


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


def from_graph(output, input_placeholder, value_of):
    """A ``Network`` traced from ``output`` back to ``input_placeholder`` in a TF1 graph.

    Supported ops: MatMul, Conv2D (NHWC, static input shape), BiasAdd,
    Add/AddV2 (with a constant or variable operand), Reshape (a flatten keeps
    the row-major order), Relu, LeakyRelu, Sigmoid, Tanh, Identity. ``value_of(tensor)``
    returns the NumPy value of a weight tensor (``session.run``, or a
    checkpoint lookup; see ``graph_value_reader``).

    Raises:
      ValueError: an unsupported op, named in the message.
    """
    layers, tensor, pending_bias = [], output, None
    while tensor.op is not input_placeholder.op:
        op = tensor.op
        if op.type == "Identity":
            tensor = op.inputs[0]
        elif op.type in _GRAPH_ACTIVATIONS:
            alpha = op.get_attr("alpha") if op.type == "LeakyRelu" else 0.2
            layers.append(Activation(_GRAPH_ACTIVATIONS[op.type], alpha))
            tensor = op.inputs[0]
        elif op.type in ("BiasAdd", "Add", "AddV2"):
            data, bias = sorted(op.inputs, key=lambda t: not _depends_on(t, input_placeholder))
            pending_bias = np.asarray(value_of(bias), np.float64).reshape(-1)
            tensor = data
        elif op.type in ("MatMul", "Conv2D"):
            matrix = (_matmul_kernel if op.type == "MatMul" else _conv2d_kernel)(op, value_of)
            layers.append(Dense(matrix, _tiled(pending_bias, matrix.shape[1])))
            pending_bias, tensor = None, op.inputs[0]
        elif op.type == "Reshape":
            tensor = op.inputs[0]  # row-major reshapes keep the flattened order
        else:
            raise ValueError(f"from_graph: op {op.name} of type {op.type} is not supported; "
                             "supported: MatMul, Conv2D, BiasAdd, Add, Reshape, Relu, LeakyRelu, "
                             "Sigmoid, Tanh, Identity.")
    return Network(list(reversed(layers)))


def _matmul_kernel(op, value_of):
    if op.get_attr("transpose_a"):
        raise ValueError(f"from_graph: MatMul {op.name} transposes its input; unsupported.")
    kernel = np.asarray(value_of(op.inputs[1]), np.float64)
    return kernel.T if op.get_attr("transpose_b") else kernel


def _conv2d_kernel(op, value_of):
    shape = op.inputs[0].shape
    if op.get_attr("data_format") != b"NHWC" or not shape[1:].is_fully_defined():
        raise ValueError(f"from_graph: Conv2D {op.name} needs NHWC data and a static input "
                         f"shape; got {op.get_attr('data_format')!r} and {shape}.")
    padding = op.get_attr("padding").decode()
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"from_graph: Conv2D {op.name} uses padding {padding}; unsupported.")
    matrix, _ = _conv_matrix(value_of(op.inputs[1]), shape[1:].as_list(),
                             op.get_attr("strides"), padding, op.get_attr("dilations"))
    return matrix


def graph_value_reader(session=None, checkpoint=None):
    """``value_of(tensor)`` reading weights from a session or a checkpoint."""
    reader = tf.train.load_checkpoint(checkpoint) if checkpoint else None

    def value_of(tensor):
        static = tf.get_static_value(tensor)
        if static is not None:
            return static
        if reader is not None:
            return reader.get_tensor(registry.storage_op(tensor).name)
        return session.run(tensor)

    return value_of
