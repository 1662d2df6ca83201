"""Weight-norm data-dependent initialization and checkpoint bridges.

All functions here change variables by running the variable's own
initializer with its initial value fed (what the deprecated
``Variable.load`` does), so they add no ops and also work on a finalized
graph, e.g. inside ``MonitoredTrainingSession``.
"""

import os

import numpy as np

from tf1norm._src import checks as _checks
from tf1norm._src import graph_checks as _graph_checks
from tf1norm.graph import keys
from tf1norm.graph import registry
from tf1norm._src.compat import tf, v1

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
    product = next((op for op in record.w.consumers() if op.type in _PRODUCTS), None)
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


def _load(variable, value, session):
    """Set ``variable`` to ``value`` through its initializer: no new ops."""
    session.run(variable.initializer, {variable.initializer.inputs[1]: value})


def weight_norm_data_init(session, feed_dict=None, init_scale=1.0, epsilon=1e-8, min_samples=16):
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

    Returns:
      ``[(weight name, μ, σ)]``: the statistics each layer was scaled by,
      measured before its rescaling (σ pooled where it was).

    Raises:
      ValueError: no weight-normalized layer in the graph, a layer whose
        matmul/convolution cannot be found, or a bad ``init_scale``,
        ``epsilon`` or ``min_samples``.
    """
    fn = "weight_norm_data_init"
    session = _graph_checks.session(session, fn)
    init_scale = _checks.positive_number(init_scale, fn, "init_scale")
    epsilon = _checks.positive_number(epsilon, fn, "epsilon")
    min_samples = _checks.positive_int(min_samples, fn, "min_samples")
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
    parameters = _Parameters(
        session,
        [record.g for record in records] + [bias for _, _, bias in layers if bias is not None],
    )
    report = []
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
    return report


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


def restore_plain_checkpoint(session, path):
    """Restore a checkpoint of the same model built without weight normalization.

    Every variable whose name is in the checkpoint is loaded (the plain
    model's kernel becomes the direction ``v``), then each weight-norm gain
    missing from the checkpoint is set to ``‖v‖`` per unit, so the model
    computes exactly the plain model's function.

    Returns:
      ``(restored names, derived gain names)``.

    Raises:
      TypeError: ``session`` is not a session or ``path`` not a path.
      ValueError: no checkpoint at ``path``, a stored shape differs from the
        variable's, or no variable of the graph is in the checkpoint (a wrong
        file or a different scope: restoring nothing would leave every
        variable at its initial value without a word).
    """
    reader, stored = _open_checkpoint(session, path, "restore_plain_checkpoint")
    restored = []
    with session.graph.as_default():
        variables = v1.global_variables()
    for variable in variables:
        value = _stored_value(variable, reader, stored)
        if value is not None:
            _load(variable, _checked_shape(variable, value, path), session)
            restored.append(variable.op.name)
    if not restored:
        raise ValueError(
            f"restore_plain_checkpoint: `path` {path!r} holds none of the graph's "
            f"{len(variables)} variables (checkpoint: {sorted(stored)[:5]}...; "
            f"graph: {[v.op.name for v in variables[:5]]}...). Build the model "
            "under the same scope names as the plain model, or pass its checkpoint."
        )
    derived = []
    for record in registry.get_records(keys.WEIGHT_NORM, session.graph):
        if record.g.op.name not in stored:
            direction = session.run(record.direction)
            axes = tuple(range(direction.ndim - 1))
            _load(record.g, np.sqrt(np.sum(np.square(direction), axis=axes)), session)
            derived.append(record.g.op.name)
    return restored, derived


def _open_checkpoint(session, path, fn):
    """``(reader, {name: shape})`` of the checkpoint at ``path``; errors name the path."""
    _graph_checks.session(session, fn)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{fn}: `path` must be a checkpoint prefix or directory; got {path!r}.")
    try:
        reader = tf.train.load_checkpoint(os.fspath(path))
    except (ValueError, OSError, tf.errors.OpError) as error:
        problem = str(error).split("\n", 1)[0]
        raise ValueError(
            f"{fn}: `path` {os.fspath(path)!r} is not a readable checkpoint "
            f"({problem}). Pass the prefix Saver.save returned, e.g. "
            "'model.ckpt-1000', or its directory."
        ) from None
    return reader, reader.get_variable_to_shape_map()


def _checked_shape(variable, value, path):
    if tuple(value.shape) != tuple(variable.shape.as_list()):
        raise ValueError(
            f"restore_plain_checkpoint: `path` {path!r} stores "
            f"{variable.op.name} with shape {list(value.shape)}, but the graph's "
            f"variable has shape {variable.shape.as_list()}. Build the same model "
            "as the one that wrote the checkpoint."
        )
    return value


def export_plain_checkpoint(session, path):
    """Write a checkpoint the plain (not reparameterized) model can restore.

    Each weight-normalized kernel is saved as ``w = g·v/‖v‖`` and each
    spectrally normalized one as ``W / σ`` computed from its stored ``u`` (what
    the model computes with ``training=False``), under the kernel's own name;
    gains ``wn_g`` and vectors ``sn_u`` are dropped; every other variable is
    saved as it is. All values are read in one ``session.run``.

    Returns:
      The checkpoint path prefix.

    Raises:
      TypeError: ``session`` is not a session, or ``path`` not a string or path.
    """
    session = _graph_checks.session(session, "export_plain_checkpoint")
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise TypeError(
            f"export_plain_checkpoint: `path` must be a checkpoint prefix (a "
            f"non-empty string); got {path!r}. E.g. '/tmp/plain/model.ckpt'."
        )
    graph = session.graph
    effective, dropped, weight_norms = {}, set(), {}
    for record in registry.get_records(keys.WEIGHT_NORM, graph):
        effective[record.name] = record.direction  # w = g·v/‖v‖ is computed below, in NumPy
        weight_norms[record.name] = record
        dropped.add(record.g.op.name)
    for record in registry.get_records(keys.SPECTRAL_NORM_WEIGHTS, graph):
        effective[record.name] = record.normalized
        dropped.add(record.u.op.name)
    with graph.as_default():
        variables = [v for v in v1.global_variables() if v.op.name not in dropped]
    fetches, parts = {}, {}
    for variable in variables:
        info = getattr(variable, "_save_slice_info", None)
        if info is None:
            fetches[variable.op.name] = effective.get(variable.op.name, variable)
        elif info.full_name in effective:
            fetches[info.full_name] = effective[info.full_name]
        else:
            parts.setdefault(info.full_name, []).append(variable)
            fetches[variable.op.name] = variable
    gains = {name: record.g for name, record in weight_norms.items()}
    values, gains = session.run((fetches, gains))
    for name, record in weight_norms.items():
        values[name] = _weight_normalized(values[name], gains[name], record.epsilon)
    for full_name, pieces in parts.items():
        values[full_name] = _assemble(pieces, [values.pop(p.op.name) for p in pieces])
    return _save_values(values, path)


def _weight_normalized(v, g, epsilon):
    """``g·v/sqrt(max(Σv², ε))`` per output unit (last axis), as the getter computes it.

    In NumPy float64: squares of float32/16 weights cannot overflow or
    underflow there; float64 weights are scaled by ``max|v|`` first. Running
    the graph's range-guarded weight-norm ops instead made the export of
    resnet_v1_50 cost 2.5× a ``Saver.save`` (their first ``session.run``).
    """
    units = v.reshape(-1, v.shape[-1])
    if v.dtype == np.float64:
        scale = np.max(np.abs(units), axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        norm = scale * np.sqrt(np.einsum("ij,ij->j", units / scale, units / scale))
    else:
        norm = np.sqrt(np.einsum("ij,ij->j", units, units, dtype=np.float64))
    factor = g.reshape(-1).astype(np.float64) / np.maximum(norm, np.sqrt(epsilon))
    if v.dtype in (np.float32, np.float64):
        out = _aligned_empty(units.shape, v.dtype)
        return np.multiply(units, factor.astype(v.dtype), out=out).reshape(v.shape)
    wide = units.astype(np.float32) * factor.astype(np.float32)  # float16 gains × 1/‖v‖ > 65504
    return wide.reshape(v.shape).astype(v.dtype)


def _aligned_empty(shape, dtype, alignment=64):
    """An uninitialized array on a 64-byte boundary: TensorFlow feeds it without a copy.

    (NumPy aligns to 16 bytes; an unaligned feed of vgg's 400 MB fc6 kernel
    is copied once more, which cost a second in ``export_plain_checkpoint``.)
    """
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(size + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + size].view(dtype).reshape(shape)


def _assemble(parts, arrays):
    """The whole value of a partitioned variable, as ``Saver`` writes it, from its parts."""
    info = parts[0]._save_slice_info
    whole = np.empty(info.full_shape, arrays[0].dtype)
    for part, array in zip(parts, arrays):
        whole[_region(part._save_slice_info)] = array
    return whole


def _region(info):
    """The index of a partition (its ``SaveSliceInfo``) in the whole variable."""
    return tuple(slice(o, o + n) for o, n in zip(info.var_offset, info.var_shape))


def _stored_value(variable, reader, stored):
    """``variable``'s value in the checkpoint: by name, or its slice of the whole variable."""
    if variable.op.name in stored:
        return reader.get_tensor(variable.op.name)
    info = getattr(variable, "_save_slice_info", None)
    if info is None or info.full_name not in stored:
        return None
    whole = reader.get_tensor(info.full_name)
    return whole[_region(info)]


def _save_values(values, path):
    """Write ``{name: array}`` as a TF1 checkpoint at ``path`` (what ``Saver.save`` writes).

    One ``SaveV2`` op on fed placeholders in a graph of its own: no variables to
    create and initialize, so the values are copied once, into the file. The
    directory's ``checkpoint`` state file is updated as ``Saver.save`` does.
    """
    names = sorted(values)
    with tf.Graph().as_default():
        placeholders = [
            v1.placeholder(tf.as_dtype(values[n].dtype), values[n].shape) for n in names
        ]
        prefix = v1.placeholder(tf.string, [])
        save = tf.raw_ops.SaveV2(
            prefix=prefix,
            tensor_names=names,
            shape_and_slices=[""] * len(names),
            tensors=placeholders,
        )
        with v1.Session() as export_session:
            feed = dict(zip(placeholders, (values[n] for n in names)))
            feed[prefix] = path
            export_session.run(save, feed)
    v1.train.update_checkpoint_state(os.path.dirname(os.path.abspath(path)), path)
    return path
