"""Checkpoint bridges between reparameterized and plain models.

``weight_norm_data_init`` lives in ``tf1norm.graph.data_init``.

All functions here change variables by running the variable's own
initializer with its initial value fed (what the deprecated
``Variable.load`` does), so they add no ops and also work on a finalized
graph, e.g. inside ``MonitoredTrainingSession``.
"""

import os

import numpy as np

from tf1norm._src import checkpoint_files as _checkpoint_files
from tf1norm._src import checks as _checks
from tf1norm._src import graph_checks as _graph_checks
from tf1norm.graph import keys
from tf1norm.graph import registry
from tf1norm.graph import spectral_norm_names as _sn_names
from tf1norm._src.compat import tf, v1


def _load(variable, value, session):
    """Set ``variable`` to ``value`` through its initializer: no new ops."""
    session.run(variable.initializer, {variable.initializer.inputs[1]: value})


def restore_plain_checkpoint(session, path, spectral_norm_names=None):
    """Restore a checkpoint of the same model built without weight normalization.

    Every variable whose name is in the checkpoint is loaded (the plain
    model's kernel becomes the direction ``v``), then each weight-norm gain
    missing from the checkpoint is set to ``‖v‖`` per unit, so the model
    computes exactly the plain model's function.

    A checkpoint of other spectral-norm code restores into a
    ``spectral_norm_getter`` model through a name map
    (``tf1norm.graph.spectral_norm_names``): its kernels load by name, and its
    power-iteration vectors into the ``<kernel>/sn_u`` of each kernel.

    Args:
      session: the session of the model's graph.
      path: checkpoint prefix or its folder.
      spectral_norm_names: None (names as tf1norm writes them); ``"sn_gan"``
        (taki0112's SN-GAN: ``scope/u`` ``[1, out]`` beside
        ``scope/kernel``); ``"tf_gan"`` (TF-GAN's
        ``spectral_normalization_custom_getter``:
        ``.../<kernel>/spectral_normalize/spectral_norm/spectral_norm_u``
        ``[rows, 1]``, converted to ``[1, out]``); or a dict
        ``{graph name: checkpoint name}``. With a name map, every ``sn_u`` of
        the graph must be found.

    Returns:
      ``(restored names, derived gain names)``.

    Raises:
      TypeError: ``session`` is not a session or ``path`` not a path.
      ValueError: no checkpoint at ``path`` or a truncated one (a
        ``tf1norm._src.checks.CheckpointError``), a stored shape differs from the
        variable's, no variable of the graph is in the checkpoint (a wrong
        file or a different scope: restoring nothing would leave every
        variable at its initial value without a word), an unknown
        ``spectral_norm_names``, or a name map that leaves an ``sn_u`` unfound.
    """
    fn = "restore_plain_checkpoint"
    reader, stored = _open_checkpoint(session, path, fn)

    def read(name):
        return _checks.checkpoint_tensor(reader, name, os.fspath(path), fn)

    renamed = _sn_names.renamed_values(spectral_norm_names, stored, read, fn)
    restored = []
    with session.graph.as_default():
        variables = v1.global_variables()
    for variable in variables:
        if variable.op.name in renamed:
            value = renamed[variable.op.name][1]
        else:
            value = _stored_value(variable, read, stored)
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
    if spectral_norm_names is not None:
        _check_every_u_found(session.graph, restored, spectral_norm_names, path)
    return restored, _derive_gains(session, stored)


def _derive_gains(session, stored):
    """Set each weight-norm gain the checkpoint lacks to ``‖v‖`` per unit; their names."""
    derived = []
    for record in registry.get_records(keys.WEIGHT_NORM, session.graph):
        if record.g.op.name not in stored:
            direction = session.run(record.direction)
            axes = tuple(range(direction.ndim - 1))
            _load(record.g, np.sqrt(np.sum(np.square(direction), axis=axes)), session)
            derived.append(record.g.op.name)
    return derived


def _check_every_u_found(graph, restored, spectral_norm_names, path):
    records = registry.get_records(keys.SPECTRAL_NORM_WEIGHTS, graph)
    missing = sorted({r.u.op.name for r in records} - set(restored))
    if missing:
        raise ValueError(
            f"restore_plain_checkpoint: with spectral_norm_names={spectral_norm_names!r} "
            f"`path` {path!r} holds no vector for {missing}. Check that the model uses "
            "the checkpoint's scope names and that the name map is the one of the code "
            "that wrote it (see tf1norm.graph.spectral_norm_names)."
        )


def _open_checkpoint(session, path, fn):
    """``(reader, {name: shape})`` of the checkpoint at ``path``; errors name the path."""
    _graph_checks.session(session, fn)
    reader = _checks.checkpoint_reader(path, fn)
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
    the model computes with ``training=False``), under the kernel's own name.
    Both are the layer's own values, evaluated in ``session``: the plain model
    restored from the export computes with the same bits. (A weight-normalized
    layer built inside a ``tf.while_loop``/``tf.cond`` body, whose ``w`` cannot
    be fetched, is computed in NumPy float64 instead: within about 1 ulp of
    the graph's value, whose float32 sum order and ``rsqrt`` differ);
    gains ``wn_g`` and vectors ``sn_u`` are dropped, and so are the optimizer
    slots of the reparameterized variables (``<kernel>/Momentum``,
    ``<kernel>/wn_g/Adam``: they belong to the raw ``v``/``W``, not to the plain
    kernel, and a plain model that restored them would resume its optimizer
    from the wrong state); every other variable, the other layers' slots
    included, is saved as it is. All values are read in one ``session.run``.

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
        variables = [
            v
            for v in v1.global_variables()
            if v.op.name not in dropped and not _belongs_to(v, effective)
        ]
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


def _belongs_to(variable, reparameterized):
    """True for ``<kernel>/...`` of a reparameterized kernel: its optimizer slots
    (``<kernel>/Momentum``, ``<kernel>/wn_g/Adam``), meaningless for the plain kernel.

    Partition ``i`` of a kernel (``<kernel>/part_i``) is the kernel itself: its
    checkpoint name is the kernel's, so it is kept.
    """
    info = getattr(variable, "_save_slice_info", None)
    name = info.full_name if info is not None else variable.op.name
    return any(name.startswith(kernel + "/") for kernel in reparameterized)


def _fetchable(tensor, graph):
    """True when ``session.run`` can fetch ``tensor`` (in ``graph``, not inside a v1 loop/cond)."""
    if getattr(tensor, "graph", None) is not graph:
        return False
    context = getattr(tensor.op, "_control_flow_context", None)  # no public equivalent
    return context is None


def _writable_prefix(path, fn):
    """``path`` as a string whose folder exists and is writable, or TypeError/ValueError."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise TypeError(
            f"{fn}: `path` must be a checkpoint prefix (a non-empty string); got "
            f"{path!r}. E.g. '/tmp/plain/model.ckpt'."
        )
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    problem = (
        "does not exist"
        if not os.path.exists(folder)
        else "is not a folder"
        if not os.path.isdir(folder)
        else None
        if os.access(folder, os.W_OK | os.X_OK)
        else "is not writable"
    )
    if problem:
        raise ValueError(
            f"{fn}: `path` {path!r} cannot be written: its folder {folder!r} "
            f"{problem}. Create the folder first (os.makedirs(folder, "
            "exist_ok=True)) or pick a writable one."
        )
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
            try:
                export_session.run(save, feed)
            except tf.errors.OpError as error:  # e.g. the disk is full, or the folder vanished
                raise ValueError(
                    f"export_plain_checkpoint: `path` {path!r} cannot be written "
                    f"({_checks.first_line(error)}). Pick a writable folder with "
                    "free space."
                ) from None
    v1.train.update_checkpoint_state(os.path.dirname(os.path.abspath(path)), path)
    return path
