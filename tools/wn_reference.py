"""The references of the weight-norm data init (tools/wn_init_report.py, the tests).

* openai/weightnorm's data-dependent init (``tensorflow/nn.py``, ``init=True``),
  ported to tf.compat.v1: ``reference_init_tensors`` then ``reference_data_init``;
* ``layer_tensors``: the layers of a network, with or without weight norm;
* the fast test's reference nets (a 6-layer ReLU MLP and a 4-layer conv net),
  their batch, and ``write_fixture``, which records their statistics after the
  reference init (tests/fixtures/weight_norm_reference.npz).
"""

import numpy as np

import tf1norm
from tf1norm import keys, registry
from tf1norm.graph import data_init
from tf1norm._src.compat import tf, v1

PRODUCTS = ("MatMul", "Conv2D")


# --- openai/weightnorm's data-dependent init, ported -------------------------------------------


def _normalized_product(product, direction):
    """``product``'s layer with its kernel replaced by ``direction / ‖direction‖`` per unit."""
    x = product.inputs[0]
    if product.type == "MatMul":  # nn.py ``dense``: moments over the batch, +1e-10
        unit = tf.nn.l2_normalize(direction, [0])
        return tf.matmul(x, unit, transpose_a=product.get_attr("transpose_a")), [0], 1e-10
    unit = tf.nn.l2_normalize(direction, [0, 1, 2])  # nn.py ``conv2d``: +1e-8
    out = tf.nn.conv2d(
        x,
        unit,
        product.get_attr("strides"),
        product.get_attr("padding").decode(),
        dilations=product.get_attr("dilations"),
    )
    return out, [0, 1, 2], 1e-8


def reference_init_tensors(graph, init_scale=1.0):
    """Per weight-normalized layer: ``(g, bias or None, scale, -m·scale)`` as nn.py computes them.

    openai/weightnorm ``tensorflow/nn.py`` (``init=True``): ``x_init = x ⊛ V/‖V‖``;
    ``m, v = moments(x_init)`` per unit; ``g = init_scale / sqrt(v + ε)``;
    ``b = -m·g``. Build before the session; run layer by layer (``reference_data_init``).
    """
    variables = data_init._variables_by_handle(graph)
    layers = []
    with graph.as_default():
        for record in registry.get_records(keys.WEIGHT_NORM, graph):
            pre, bias = data_init._preactivation(record, variables)
            product = next(op for op in record.w.consumers() if op.type in PRODUCTS)
            x_init, axes, epsilon = _normalized_product(product, record.direction)
            mean, variance = tf.nn.moments(x_init, axes)
            scale = init_scale / tf.sqrt(variance + epsilon)
            layers.append((record.g, bias, scale, -mean * scale))
    return layers


class Loader:
    """Assign values to variables through placeholders built once (before the session)."""

    def __init__(self, variables):
        self.ops = {}
        for variable in variables:
            value = v1.placeholder(variable.dtype.base_dtype, variable.shape)
            self.ops[variable.ref()] = (value, variable.assign(value, read_value=False))

    def load(self, session, pairs):
        feed = {self.ops[v.ref()][0]: value for v, value in pairs}
        session.run([self.ops[v.ref()][1] for v, _ in pairs], feed)


def reference_data_init(session, layers, loader, feed_dict=None):
    """Run the reference init layer by layer: each layer sees the already initialized ones."""
    fetches = [(scale, shift) for _, _, scale, shift in layers]
    for index, (g, bias, _, _) in enumerate(layers):
        scale, shift = session.run(fetches, feed_dict)[index]  # same fetches: one executor
        loader.load(session, [(g, scale)] + ([] if bias is None else [(bias, shift)]))


# --- the layers of a network, with or without weight norm ---------------------------------------


def layer_tensors(graph):
    """``[(name, pre-activation, effective kernel, g or None, v or None, bias or None)]``."""
    records = registry.get_records(keys.WEIGHT_NORM, graph)
    variables = data_init._variables_by_handle(graph)
    if records:
        return [(r.name,) + _pre(r, variables) + (r.w, r.g, r.direction) for r in records]
    layers = []
    for op in graph.get_operations():
        kernel = (
            variables.get(registry.storage_op(op.inputs[1]))
            if op.type in PRODUCTS and len(op.inputs) > 1
            else None
        )
        if kernel is not None and kernel.trainable:
            record = type("Plain", (), {"w": op.inputs[1], "name": kernel.op.name})
            pre, bias = data_init._preactivation(record, variables)
            layers.append((kernel.op.name, pre, bias, op.inputs[1], None, None))
    return layers


def _pre(record, variables):
    return data_init._preactivation(record, variables)


# --- the fast test's reference: a 6-layer ReLU MLP and a small conv net --------------------------


def reference_nets():
    """``{name: (builder, input shape)}``; each builder makes its layers in the default graph.

    Seeded initializers and inputs: the test rebuilds the same graphs and feeds
    the same batch (``reference_batch``). Every layer sees >= 32 values per unit.
    """
    return {"mlp": (_mlp, [64, 20]), "conv": (_conv_net, [32, 8, 8, 3])}


def _mlp(x):
    import tf_slim as slim

    for index, units in enumerate([32, 32, 32, 32, 32, 10]):
        x = slim.fully_connected(
            x,
            units,
            activation_fn=tf.nn.relu if index < 5 else None,
            weights_initializer=v1.glorot_uniform_initializer(seed=index),
            scope=f"fc{index + 1}",
        )
    return x


def _conv_net(x):
    import tf_slim as slim

    for index, (channels, stride) in enumerate([(16, 1), (16, 2), (32, 1), (32, 2)]):
        x = slim.conv2d(
            x,
            channels,
            [3, 3],
            stride=stride,
            scope=f"conv{index + 1}",
            weights_initializer=v1.glorot_uniform_initializer(seed=10 + index),
        )
    x = tf.reduce_mean(x, [1, 2])
    return slim.fully_connected(
        x,
        10,
        activation_fn=None,
        scope="logits",
        weights_initializer=v1.glorot_uniform_initializer(seed=20),
    )


def reference_batch(shape):
    """Inputs with a non-zero mean and unequal scales per feature (seeded)."""
    rng = np.random.default_rng(7)
    scales = rng.uniform(0.5, 3.0, shape[-1])
    return (rng.standard_normal(shape) * scales + 1.0).astype(np.float32)


def build_reference_net(name):
    """``(graph, x placeholder, [(layer, pre-activation)], records)`` under ``slim_scope``."""
    builder, shape = reference_nets()[name]
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None] + shape[1:])
        with tf1norm.slim_scope(weight_norm=True):
            builder(x)
    layers = [(row[0], row[1]) for row in layer_tensors(graph)]
    return graph, x, layers


def reference_statistics(name):
    """``{layer: (g, bias, per-unit mean, per-unit std)}`` after ``reference_data_init``."""
    graph, x, layers = build_reference_net(name)
    reference = reference_init_tensors(graph)
    with graph.as_default():
        loader = Loader([v for r in reference for v in r[:2] if v is not None])
    feed = {x: reference_batch(reference_nets()[name][1])}
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        reference_data_init(session, reference, loader, feed)
        values = session.run(
            [pre for _, pre in layers]
            + [(g, b if b is not None else g) for g, b, _, _ in reference],
            feed,
        )
    out = {}
    for (layer, _), pre, (g, b) in zip(layers, values[: len(layers)], values[len(layers) :]):
        units = np.asarray(pre, np.float64).reshape(-1, pre.shape[-1])
        out[layer] = (g, b, units.mean(0), units.std(0))
    return out


def write_fixture(path):
    arrays = {}
    for name in reference_nets():
        for layer, parts in reference_statistics(name).items():
            for key, value in zip(("g", "b", "mean", "std"), parts):
                arrays[f"{name}:{layer}:{key}"] = np.asarray(value)
    np.savez(path, **arrays)
    print(f"wrote {len(arrays)} arrays to {path}")
    return 0
