"""Weight-norm data-dependent initialization (Salimans & Kingma 2016, §3).

``weight_norm_data_init`` runs the model on a batch, layer by layer, and sets
each weight-normalized layer's gain and bias so its pre-activations have mean 0
and std ``init_scale``; then rescales each direction ``v`` so a gradient step
changes a pre-activation by ``lr·δ`` whatever the layer's width. Like the
checkpoint bridges in ``reparam_tools``, it writes variables by running their
own initializers with the value fed, so it adds no ops.
"""

import collections.abc
import warnings

import numpy as np

from tf1norm._src import checks as _checks
from tf1norm._src import graph_checks as _graph_checks
from tf1norm._src.compat import tf, v1
from tf1norm.graph import keys
from tf1norm.graph import registry
from tf1norm.graph.reparam_tools import _assemble, _load, _region

_PRODUCTS = (
    "MatMul",
    "BatchMatMulV2",
    "Conv2D",
    "Conv3D",
    "Conv2DBackpropInput",
    "DepthwiseConv2dNative",
    "Conv1D",
)


def _variables_by_handle(graph):
    """``{handle or storage op: variable}`` for the graph's global variables."""
    with graph.as_default():
        return {registry.handle_op(v): v for v in v1.global_variables()}


def _preactivation(record, variables):
    """(pre-activation tensor, bias variable or None) of the layer using ``record.w``."""
    # The layer's own product is the first one built: a train op built before data
    # init adds Conv2DBackpropInput consumers of w (the input gradient), and
    # consumers() lists them in no fixed order.
    products = [op for op in record.w.consumers() if op.type in _PRODUCTS]
    product = min(products, key=lambda op: op._id, default=None)  # creation order
    if product is None:
        raise ValueError(
            f"weight_norm_data_init: cannot find the layer that uses "
            f"{record.name} (no MatMul/Conv consumer)."
        )
    out = product.outputs[0]
    for consumer in out.consumers():
        if consumer.type in ("BiasAdd", "Add", "AddV2"):
            other = consumer.inputs[1] if consumer.inputs[0] is out else consumer.inputs[0]
            bias = variables.get(registry.storage_op(other))
            if bias is not None and bias.shape.rank == 1:
                return consumer.outputs[0], bias
    return out, None


def weight_norm_data_init(
    session, feed_dict=None, init_scale=1.0, epsilon=1e-8, min_samples=16, rescale_direction=True
):
    """Data-dependent initialization of weight-normalized layers (Salimans & Kingma §3).

    Layer by layer, in the order the layers were built: run the layer's
    pre-activation ``t`` on the batch in ``feed_dict``, then set
    ``g ← g·s`` and ``b ← (b − μ)·s`` with ``μ``, ``σ`` the per-unit mean and
    standard deviation of ``t`` and ``s = init_scale / σ``, so that on this
    batch every pre-activation has mean 0 and standard deviation
    ``init_scale``. Later layers see the already initialized earlier ones. Run
    once, after ``global_variables_initializer``, in graph mode (two
    ``session.run`` calls per layer, with the same fetches for every layer).

    Two cases would give huge gains (and, one step later, an overflowing
    loss), so they are handled:

    * a layer with fewer than ``min_samples`` values per unit (batch ×
      spatial positions; e.g. VGG's fc6–fc8 see one value per image) has
      per-unit σ estimates that can be arbitrarily small; its σ² is pooled
      over the layer's units (one scale for the layer, per-unit means);
    * a unit with σ ≤ ``epsilon`` (constant on this batch) keeps its gain.

    A layer seeing fewer than ``min_samples`` values per unit also raises a
    ``UserWarning`` that names the layers and the number of examples to feed.
    The init batch need not be the training batch: feed, once, a batch large
    enough for the fc layers (16 examples at the default ``min_samples``).
    Dropout and batch norm run as ``feed_dict`` makes them run (a graph built
    with ``is_training=True`` is measured with dropout on, as it trains).

    Then, with ``rescale_direction`` (default), each ``v`` is rescaled per unit
    to ``‖v‖ = g·√fan_in`` (``fan_in``: the entries of a unit, e.g. 3·3·64 for a
    3×3 conv on 64 channels), which leaves ``w = g·v/‖v‖`` and the function
    unchanged. Why: gradient descent moves ``w`` across ``v`` by ``(g/‖v‖)²``
    times the plain step, and on the unit-scale inputs data init gives every
    layer the plain step itself changes a pre-activation on the batch by about
    ``lr·fan_in·δ``; keeping the initializer's ``‖v‖`` (≈ 0.3–1 for Glorot)
    made the first Momentum(0.01) step of vgg_a move conv1's direction by 92 %
    and the loss jump from 2.3 to 1.7e8. With ``‖v‖ = g·√fan_in`` it moves by
    ``lr·δ`` whatever the width, and vgg_a and resnet_v1_50 train at 0.01
    (figures: ``tools/wn_init_report.py``). ``g`` and ``b`` are not affected.
    With Adam-type optimizers, whose step is about ``lr`` per entry whatever
    the gradient's scale, the larger ``‖v‖`` slows the directions down by about
    ``√fan_in``: pass ``rescale_direction=False`` there (the seed 001 example
    does: 0.52 test accuracy after 2 epochs of Adam(3e-3) with the rescale,
    0.98 without).

    Returns:
      ``[(weight name, μ, σ)]``: the statistics each layer was scaled by,
      measured before its rescaling (σ pooled where it was).

    Raises:
      TypeError: ``feed_dict`` is not a dict.
      ValueError: no weight-normalized layer in the graph, a layer whose
        matmul/convolution cannot be found, a placeholder the layers read
        that ``feed_dict`` does not feed, or a bad ``init_scale``,
        ``epsilon``, ``min_samples`` or ``rescale_direction``.

    References:
      Salimans & Kingma (2016) §3; openai/weightnorm ``tensorflow/nn.py``
      (the same ``g``, ``b`` per unit, without pooling; ``tools/wn_init_report.py``
      compares the two).
    """
    fn = "weight_norm_data_init"
    session = _graph_checks.session(session, fn)
    init_scale = _checks.positive_number(init_scale, fn, "init_scale")
    epsilon = _checks.positive_number(epsilon, fn, "epsilon")
    min_samples = _checks.positive_int(min_samples, fn, "min_samples")
    if not isinstance(rescale_direction, bool):
        raise TypeError(
            f"{fn}: `rescale_direction` must be True or False; got {rescale_direction!r}."
        )
    records = registry.get_records(keys.WEIGHT_NORM, session.graph)
    if not records:
        raise ValueError(
            "weight_norm_data_init: no weight-normalized weights in this graph. "
            "Build the model under weight_norm_getter or "
            "slim_scope(weight_norm=True)."
        )
    variables = _variables_by_handle(session.graph)
    layers = [(record,) + _preactivation(record, variables) for record in records]
    pre_activations = [pre for _, pre, _ in layers]
    _check_feeds(pre_activations, feed_dict)
    parameters = _Parameters(
        session,
        [record.g for record in records] + [bias for _, _, bias in layers if bias is not None],
    )
    report, few = [], []
    for index, (record, _, bias) in enumerate(layers):
        # The same fetches and feeds every time: one executor for all layers
        # (a different fetch per layer rebuilt one per layer: minutes on resnet_v1_50).
        values = session.run(pre_activations, feed_dict)[index]
        mean, std = _unit_statistics(values, min_samples)
        scale = np.where(std > epsilon, init_scale / np.maximum(std, epsilon), 1.0)
        parameters.update(record.g, lambda g: g * scale)
        if bias is not None:
            parameters.update(bias, lambda b: (b - mean) * scale)
        parameters.load()
        report.append((record.name, mean, std))
        few.extend(_too_few(record.name, np.shape(values), min_samples))
    _warn_too_few(few, min_samples)
    for record in records if rescale_direction else ():
        _rescale_direction(session, record, parameters.values[record.g.ref()])
    return report


def _check_feeds(tensors, feed_dict):
    """ValueError naming the placeholders ``tensors`` read that ``feed_dict`` leaves unfed."""
    fn = "weight_norm_data_init"
    if feed_dict is not None and not isinstance(feed_dict, collections.abc.Mapping):
        raise TypeError(
            f"{fn}: `feed_dict` must be a dict {{placeholder: batch}}; got "
            f"{feed_dict!r:.100}. E.g. feed_dict={{x: x_batch}}."
        )
    fed = {_tensor_name(key) for key in (feed_dict or {})}
    missing, seen, stack = set(), set(), list(tensors)
    while stack:
        tensor = stack.pop()
        if tensor.name in fed or tensor.name in seen:
            continue
        seen.add(tensor.name)
        if tensor.op.type == "Placeholder":
            missing.add(tensor.name)
        else:
            stack.extend(tensor.op.inputs)
    if missing:
        names = sorted(missing)
        raise ValueError(
            f"{fn}: `feed_dict` does not feed the placeholders {names} that the "
            f"weight-normalized layers read; got feed_dict with "
            f"{sorted(fed) or 'no entries'}. Pass a batch of data, e.g. "
            f"feed_dict={{{names[0].split(':')[0]}: x_batch}}."
        )


def _tensor_name(key):
    name = getattr(key, "name", key)
    return name if not isinstance(name, str) or ":" in name else f"{name}:0"


def _too_few(name, shape, min_samples):
    """``[(name, examples, values per example)]`` if the layer sees < ``min_samples`` per unit."""
    examples = shape[0] if len(shape) > 1 else 1
    per_example = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
    return [(name, examples, per_example)] if examples * per_example < min_samples else []


def _warn_too_few(few, min_samples):
    """One warning naming the layers with too few values per unit, the minimum and the fix."""
    if not few:
        return
    examples = few[0][1]
    fewest = min(examples * per_example for _, _, per_example in few)
    needed = max(-(-min_samples // per_example) for _, _, per_example in few)
    names = ", ".join(name for name, _, _ in few[:4]) + (", ..." if len(few) > 4 else "")
    warnings.warn(
        f"weight_norm_data_init: {len(few)} layer(s) ({names}) see fewer than "
        f"min_samples={min_samples} values per unit on this batch of {examples} example(s); "
        f"their sigma is pooled over the layer's units and their per-unit means rest on as "
        f"few as {fewest} value(s). Feed at least {needed} examples to weight_norm_data_init "
        "(the init batch need not be the training batch: feed a larger batch of training inputs "
        "once, then train on batches of any size).",
        stacklevel=3,
    )


def _rescale_direction(session, record, gains):
    """Rescale ``v`` per unit to ``‖v‖ = |g|·√fan_in``; ``w = g·v/‖v‖`` is unchanged.

    ``fan_in`` is the number of entries of a unit (the product of the norm
    axes). A gradient step moves ``w`` across ``v`` by ``(g/‖v‖)²`` times the
    plain step; on inputs of unit scale (what data init gives every layer) the
    plain step changes a unit's pre-activation by ``lr·‖x‖²·δ ≈ lr·fan_in·δ``.
    With ``‖v‖ = |g|·√fan_in`` the change is ``lr·δ`` whatever the layer's width.
    """
    parts = [record.v] if isinstance(record.v, tf.Variable) else list(record.v)
    values = session.run(parts)
    whole = values[0] if len(parts) == 1 else _assemble(parts, values)
    units = whole.reshape(-1, whole.shape[-1])
    norms = np.sqrt(np.einsum("ij,ij->j", units, units, dtype=np.float64))
    target = np.abs(gains).reshape(-1) * np.sqrt(units.shape[0])
    factor = np.where(norms > 0, target / np.where(norms > 0, norms, 1.0), 1.0)
    scaled = whole * factor.astype(whole.dtype)
    for part in parts:
        info = getattr(part, "_save_slice_info", None)
        _load(part, scaled if len(parts) == 1 else scaled[_region(info)], session)


class _Parameters:
    """Current values of the gains and biases, loaded all together through their initializers."""

    def __init__(self, session, variables):
        self.session = session
        self.variables = list({v.ref(): v for v in variables}.values())
        self.values = dict(zip((v.ref() for v in self.variables), session.run(self.variables)))

    def update(self, variable, fn):
        old = self.values[variable.ref()]
        self.values[variable.ref()] = np.asarray(fn(old)).astype(old.dtype)

    def load(self):
        feed = {v.initializer.inputs[1]: self.values[v.ref()] for v in self.variables}
        self.session.run([v.initializer for v in self.variables], feed)


def _unit_statistics(values, min_samples):
    """Per-unit (last axis) mean and std in float64; σ² pooled when samples are few."""
    values = np.asarray(values, np.float64)
    axes = tuple(range(values.ndim - 1))
    mean, var = values.mean(axis=axes), values.var(axis=axes)
    if values.size // max(values.shape[-1], 1) < min_samples:
        var = np.full_like(var, var.mean())
    return mean, np.sqrt(var)
