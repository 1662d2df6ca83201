"""Weight-norm data-dependent initialization and checkpoint bridges.

All functions here change variables by running the variable's own
initializer with its initial value fed (what the deprecated
``Variable.load`` does), so they add no ops and also work on a finalized
graph, e.g. inside ``MonitoredTrainingSession``.
"""

import collections.abc
import os
import warnings

import numpy as np

from tf1norm._src import checkpoint_files as _checkpoint_files
from tf1norm._src import checks as _checks
from tf1norm._src import graph_checks as _graph_checks
from tf1norm.graph import keys
from tf1norm.graph import registry
from tf1norm._src.compat import tf, v1

_PRODUCTS = ("MatMul", "BatchMatMulV2", "Conv2D", "Conv3D", "Conv2DBackpropInput",
             "DepthwiseConv2dNative", "Conv1D")


def _variables_by_handle(graph):
    """``{handle or storage op: variable}`` for the graph's global variables."""
    with graph.as_default():
        return {registry.handle_op(v): v for v in v1.global_variables()}


def _preactivation(record, variables):
    """(pre-activation tensor, bias variable or None) of the layer using ``record.w``."""
    product = next((op for op in record.w.consumers() if op.type in _PRODUCTS), None)
    if product is None:
        raise ValueError(f"weight_norm_data_init: cannot find the layer that uses "
                         f"{record.name} (no MatMul/Conv consumer).")
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


def weight_norm_data_init(session, feed_dict=None, init_scale=1.0, epsilon=1e-8,
                          min_samples=16, rescale_direction=True):
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
        raise TypeError(f"{fn}: `rescale_direction` must be True or False; got "
                        f"{rescale_direction!r}.")
    records = registry.get_records(keys.WEIGHT_NORM, session.graph)
    if not records:
        raise ValueError("weight_norm_data_init: no weight-normalized weights in this graph. "
                         "Build the model under weight_norm_getter or "
                         "slim_scope(weight_norm=True).")
    variables = _variables_by_handle(session.graph)
    layers = [(record,) + _preactivation(record, variables) for record in records]
    pre_activations = [pre for _, pre, _ in layers]
    _check_feeds(pre_activations, feed_dict)
    parameters = _Parameters(session, [record.g for record in records] +
                             [bias for _, _, bias in layers if bias is not None])
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
        raise TypeError(f"{fn}: `feed_dict` must be a dict {{placeholder: batch}}; got "
                        f"{feed_dict!r:.100}. E.g. feed_dict={{x: x_batch}}.")
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
        raise ValueError(f"{fn}: `feed_dict` does not feed the placeholders {names} that the "
                         f"weight-normalized layers read; got feed_dict with "
                         f"{sorted(fed) or 'no entries'}. Pass a batch of data, e.g. "
                         f"feed_dict={{{names[0].split(':')[0]}: x_batch}}.")


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
        "once, then train on batches of any size).", stacklevel=3)


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
      ValueError: no checkpoint at ``path`` or a truncated one (a
        ``tf1norm._src.checks.CheckpointError``), a stored shape differs from the
        variable's, or no variable of the graph is in the checkpoint (a wrong
        file or a different scope: restoring nothing would leave every
        variable at its initial value without a word).
    """
    reader, stored = _open_checkpoint(session, path, "restore_plain_checkpoint")
    restored = []
    with session.graph.as_default():
        variables = v1.global_variables()
    for variable in variables:
        value = _stored_value(variable, lambda name: _checks.checkpoint_tensor(
            reader, name, os.fspath(path), "restore_plain_checkpoint"), stored)
        if value is not None:
            _load(variable, _checked_shape(variable, value, path), session)
            restored.append(variable.op.name)
    if not restored:
        raise ValueError(f"restore_plain_checkpoint: `path` {path!r} holds none of the graph's "
                         f"{len(variables)} variables (checkpoint: {sorted(stored)[:5]}...; "
                         f"graph: {[v.op.name for v in variables[:5]]}...). Build the model "
                         "under the same scope names as the plain model, or pass its checkpoint.")
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
    reader = _checks.checkpoint_reader(path, fn)
    return reader, reader.get_variable_to_shape_map()


def _checked_shape(variable, value, path):
    if tuple(value.shape) != tuple(variable.shape.as_list()):
        raise ValueError(f"restore_plain_checkpoint: `path` {path!r} stores "
                         f"{variable.op.name} with shape {list(value.shape)}, but the graph's "
                         f"variable has shape {variable.shape.as_list()}. Build the same model "
                         "as the one that wrote the checkpoint.")
    return value


def export_plain_checkpoint(session, path):
    """Write a checkpoint the plain (not reparameterized) model can restore.

    Each weight-normalized kernel is saved as ``w = g·v/‖v‖`` and each
    spectrally normalized one as ``W / σ`` computed from its stored ``u`` (what
    the model computes with ``training=False``), under the kernel's own name.
    Both are the layer's own values, evaluated in ``session``: the plain model
    restored from the export computes with the same bits. (A weight-normalized
    layer built inside a ``tf.while_loop``/``tf.cond`` body, whose ``w`` cannot
    be fetched, is computed in NumPy float64 instead: within about 1 ulp of
    the graph's value, whose float32 sum order and ``rsqrt`` differ);
    gains ``wn_g`` and vectors ``sn_u`` are dropped; every other variable is
    saved as it is. All values are read in one ``session.run``.

    Temporary files that an interrupted save left at ``path``
    (``path*.tempstate*``, written before this process started) are deleted
    first, with a ``StaleCheckpointFilesWarning`` naming them.

    Returns:
      The checkpoint path prefix.

    Raises:
      TypeError: ``session`` is not a session, or ``path`` not a string or path.
      ValueError: ``path``'s folder does not exist or cannot be written to.
    """
    session = _graph_checks.session(session, "export_plain_checkpoint")
    path = _writable_prefix(path, "export_plain_checkpoint")
    graph = session.graph
    effective, dropped, weight_norms, plain_ok = {}, set(), {}, {}
    for record in registry.get_records(keys.WEIGHT_NORM, graph):
        if record.plain is not None and _fetchable(record.w, graph):
            # the layer's own w: its plain value (the guard's cond is not run) and whether
            # the guard passed it through; otherwise w itself is fetched below
            effective[record.name], plain_ok[record.name] = record.plain
        else:  # built inside a control-flow body: w = g·v/‖v‖ is computed below, in NumPy
            effective[record.name] = record.direction
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
    values, gains, plain_ok = session.run((fetches, gains, plain_ok))
    for name, record in weight_norms.items():
        values[name] = _weight_normalized(values[name], gains[name], record.epsilon)
    guarded = [name for name, ok in plain_ok.items() if not ok]  # a unit out of range: rare
    if guarded:
        records = {r.name: r for r in registry.get_records(keys.WEIGHT_NORM, graph)}
        values.update(session.run({name: records[name].w for name in guarded}))
    for full_name, pieces in parts.items():
        values[full_name] = _assemble(pieces, [values.pop(p.op.name) for p in pieces])
    return _save_values(values, path)


def _fetchable(tensor, graph):
    """True when ``session.run`` can fetch ``tensor`` (in ``graph``, not inside a v1 loop/cond)."""
    if getattr(tensor, "graph", None) is not graph:
        return False
    context = getattr(tensor.op, "_control_flow_context", None)  # no public equivalent
    return context is None


def _writable_prefix(path, fn):
    """``path`` as a string whose folder exists and is writable, or TypeError/ValueError."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise TypeError(f"{fn}: `path` must be a checkpoint prefix (a non-empty string); got "
                        f"{path!r}. E.g. '/tmp/plain/model.ckpt'.")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    problem = ("does not exist" if not os.path.exists(folder) else "is not a folder"
               if not os.path.isdir(folder) else None if os.access(folder, os.W_OK | os.X_OK)
               else "is not writable")
    if problem:
        raise ValueError(f"{fn}: `path` {path!r} cannot be written: its folder {folder!r} "
                         f"{problem}. Create the folder first (os.makedirs(folder, "
                         "exist_ok=True)) or pick a writable one.")
    return path


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
    return raw[start:start + size].view(dtype).reshape(shape)


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


def _stored_value(variable, read, stored):
    """``variable``'s value in the checkpoint (``read(name)``): by name, or its slice."""
    if variable.op.name in stored:
        return read(variable.op.name)
    info = getattr(variable, "_save_slice_info", None)
    if info is None or info.full_name not in stored:
        return None
    whole = read(info.full_name)
    return whole[_region(info)]


def _save_values(values, path):
    """Write ``{name: array}`` as a TF1 checkpoint at ``path`` (what ``Saver.save`` writes).

    One ``SaveV2`` op on fed placeholders in a graph of its own: no variables to
    create and initialize, so the values are copied once, into the file. The
    directory's ``checkpoint`` state file is updated as ``Saver.save`` does.
    """
    names = sorted(values)
    _checkpoint_files.remove_stale_temporary_files(path, "export_plain_checkpoint")
    with tf.Graph().as_default():
        placeholders = [v1.placeholder(tf.as_dtype(values[n].dtype), values[n].shape)
                        for n in names]
        prefix = v1.placeholder(tf.string, [])
        save = tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                                 shape_and_slices=[""] * len(names), tensors=placeholders)
        with v1.Session() as export_session:
            feed = dict(zip(placeholders, (values[n] for n in names)))
            feed[prefix] = path
            try:
                export_session.run(save, feed)
            except tf.errors.OpError as error:  # e.g. the disk is full, or the folder vanished
                raise ValueError(f"export_plain_checkpoint: `path` {path!r} cannot be written "
                                 f"({_checks.first_line(error)}). Pick a writable folder with "
                                 "free space.") from None
    v1.train.update_checkpoint_state(os.path.dirname(os.path.abspath(path)), path)
    return path
