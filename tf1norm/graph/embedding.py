"""Embedding lookup with a max-norm on the looked-up rows only.

A dense max-norm projection of a large table costs the whole table every step,
and ``tf.compat.v1.train`` optimizers refuse ``constraint=`` on variables with
sparse gradients. ``embedding_lookup(..., max_norm=c)`` touches only the rows
of the lookup, in one of two modes:

* ``"after_update"`` (default): the lookup records its rows
  (``tf1norm.registry.RowProjection``) and ``create_train_op`` gathers them
  after the optimizer update, caps them with ``max_norm_rows`` and scatters
  them back. ``max_norm_rows`` guarantees ``‖row‖_p <= max_norm`` exactly.
* ``"torch"``: ``torch.nn.Embedding(max_norm=...)``. A stateful op renormalizes
  the looked-up rows *in the table* with ``torch_renorm_rows`` before the
  lookup reads them, so the update applies to the renormalized rows.

Partitioned tables map ids to rows as ``tf.compat.v1.nn.embedding_lookup``
does; each row is read, renormalized and projected in its own partition.
"""

from tf1norm._src import checks as _checks
from tf1norm._src import embedding_checks as _arg
from tf1norm._src import eager
from tf1norm.graph import keys
from tf1norm.graph import registry
from tf1norm._math.rows import max_norm_rows, torch_renorm_rows
from tf1norm._src.compat import tf, v1

_STRATEGIES = ("div", "mod")
_UPDATE_AFTER = "Tf1normGradientAfterLookup"


@tf.RegisterGradient(_UPDATE_AFTER)
def _gradient_after_lookup(op, grad):
    """Identity gradient that waits for the lookup's renorms and reads (``_read_rows``)."""
    with tf.control_dependencies(registry.cached(op.graph, (_UPDATE_AFTER, op.name), list)):
        return tf.identity(grad)


def embedding_lookup(
    params,
    ids,
    max_norm=None,
    norm_type=2.0,
    mode="after_update",
    partition_strategy="div",
    collection=keys.EMBEDDING_MAX_NORM,
    name=None,
):
    """``tf.nn.embedding_lookup`` with ``torch.nn.Embedding(max_norm=...)``'s row max-norm.

    With ``max_norm``, only the rows of ``ids`` are ever renormalized (cost
    proportional to the number of distinct ids); rows not looked up stay bit
    for bit. The gradient reaches the table as ``IndexedSlices``, unscaled, and
    waits for the lookup's reads (and torch-mode renorms), so the optimizer's
    update of a row never overtakes its read. ``mode`` chooses when rows are
    capped:

    ``mode="after_update"`` (default): the rows of ``ids`` are recorded
    (``tf1norm.registry.RowProjection``) and ``create_train_op`` (or
    ``project_constraints(collection)``) caps them with ``max_norm_rows``
    *after* the optimizer update. The lookup returns the capped rows with the
    gradient passing straight through. Guarantee: every row the lookup
    returns, and every row of the table it looked up once the step has run,
    has an exact p-norm <= max_norm (see ``max_norm_rows``), so checkpoints and
    exported tables hold the bound. This is the default because it keeps that
    guarantee and the behaviour of earlier versions.

    ``mode="torch"``: torch's semantics step for step. Each run that evaluates
    the lookup first renormalizes the (unique) rows of ``ids`` in the table,
    in place, with torch's formula (``torch_renorm_rows``), then reads them;
    the update then applies to the renormalized rows and nothing after it
    changes them, so an updated row can exceed max_norm until its next lookup,
    as in torch. An id repeated in a batch is renormalized once and its
    gradients add up. Works with any train op (``minimize`` too), and, as in
    torch, evaluation runs renormalize as well. Other reads of the table in
    the same run (a second lookup, a tied softmax) are not ordered with the
    renorm. No exact bound: see ``torch_renorm_rows``.

    Partitioned tables (``variable_scope(partitioner=fixed_size_partitioner(n))``,
    ``min_max_variable_partitioner``; partitioned along axis 0) and lists of
    row-shard variables work in both modes: ids map to rows as in
    ``tf.compat.v1.nn.embedding_lookup(partitions, ids, partition_strategy)``,
    each partition is read with its own gather (colocated with it), and every
    renorm or projection scatters into the partition holding the row.

    Args:
      params: a ``tf.Variable`` ``[vocabulary, dim]``, a ``PartitionedVariable``
        or a list of variables (row shards). Without ``max_norm``, anything
        ``tf.compat.v1.nn.embedding_lookup`` accepts.
      ids: integer tensor of any shape.
      max_norm: float > 0, or None for a plain lookup.
      norm_type: ``p`` of the row p-norm: a float > 0 or ``math.inf`` (max |x|).
      mode: ``"after_update"`` or ``"torch"``, see above.
      partition_strategy: ``"div"`` (default; id ``i`` is row ``i`` of the
        partitioned table, as TF2's ``tf.nn.embedding_lookup``) or ``"mod"``
        (``tf.compat.v1.nn.embedding_lookup``'s default: id ``i`` in partition
        ``i % n``); use ``"mod"`` for models trained with the TF1 default.
      collection: registry collection for the row projections (after_update).
      name: optional name scope.

    Returns:
      A tensor of shape ``ids.shape + [dim]``.

    Ids outside ``[0, vocabulary)`` raise ``ValueError`` here when they are
    constants; ids fed or computed at run time fail the run with an
    ``InvalidArgumentError`` carrying the same message and the offending ids
    (a ``tf.debugging.Assert`` the lookup waits for).

    Raises:
      TypeError: ``ids`` not integer; with ``max_norm``, ``params`` not
        variables or not floating; ``norm_type`` or ``max_norm`` not a number.
      ValueError: ``max_norm`` <= 0 or not finite; ``norm_type`` <= 0 or nan;
        unknown ``mode`` or ``partition_strategy``; ``params`` not rank 2,
        partitioned along axis 1 or with shard sizes no strategy produces.

    Example::

        with tf.compat.v1.variable_scope(
                "embed", partitioner=tf.compat.v1.fixed_size_partitioner(2)):
            table = tf.compat.v1.get_variable("table", [100000, 64])
        rows = tf1norm.embedding_lookup(table, ids, max_norm=1.0, mode="torch")

    References:
      ``torch.nn.Embedding`` and ``torch.embedding_renorm_`` (PyTorch docs and
      ``aten/src/ATen/native/Embedding.cpp``).
    """
    fn = "embedding_lookup"
    with tf.name_scope(name or "embedding_lookup"):
        ids = _arg.checked_ids(fn, ids)
        strategy = _arg.checked_choice(
            fn,
            "partition_strategy",
            partition_strategy,
            _STRATEGIES,
            "Use 'div' for a table's own row order, 'mod' for the "
            "tf.compat.v1.nn.embedding_lookup default.",
        )
        lookup = _arg.checked_choice(
            fn,
            "mode",
            mode,
            tuple(_MODES),
            "Use 'torch' to renormalize before the lookup as "
            "torch.nn.Embedding does, 'after_update' to project after "
            "the optimizer update.",
        )
        norm_type = _arg.checked_norm_type(fn, norm_type)
        if max_norm is None:
            ids = _arg.ids_in_range(fn, ids, _arg.vocabulary_size(params))
            return v1.nn.embedding_lookup(params, ids, partition_strategy=strategy)
        max_norm = _checks.positive_number(max_norm, fn, "max_norm")
        parts = _partitions(fn, params)
        ids = _arg.ids_in_range(fn, ids, sum(p.shape[0] for p in parts))
        return _MODES[lookup](
            parts, ids, max_norm, norm_type, strategy, _checks.string(collection, fn, "collection")
        )


def _lookup_after_update(parts, ids, max_norm, norm_type, strategy, collection):
    """Record the row projections; return the capped rows (gradient straight through)."""

    def project(rows):
        return max_norm_rows(rows, max_norm, norm_type)

    row_ids, positions = _row_ids(parts, ids, strategy)
    for part, part_ids in zip(parts, row_ids):
        registry.register_projection(
            registry.RowProjection(part, part_ids, project, "row_max_norm"), collection
        )
    rows = _read_rows(parts, ids, row_ids, positions)
    capped = tf.reshape(project(tf.reshape(rows, [-1, parts[0].shape[1]])), tf.shape(rows))
    # capped + 0 exactly (x - x == 0), with the gradient of the identity
    return tf.stop_gradient(capped) + (rows - tf.stop_gradient(rows))


def _lookup_torch(parts, ids, max_norm, norm_type, strategy, collection):
    """Renormalize the rows of ``ids`` in the table, then read them."""
    del collection  # nothing is recorded: no projection after the update

    def renorm(rows):
        return torch_renorm_rows(rows, max_norm, norm_type)

    row_ids, positions = _row_ids(parts, ids, strategy)
    renorms = [
        registry.RowProjection(part, part_ids, renorm, "row_renorm").build()
        for part, part_ids in zip(parts, row_ids)
    ]
    return _read_rows(parts, ids, row_ids, positions, after=renorms)


_MODES = {"after_update": _lookup_after_update, "torch": _lookup_torch}


def _row_ids(parts, ids, strategy):
    """``(rows of each partition to read, their positions in the flat ids)``.

    One table: ``([ids], None)``. Built outside any control dependencies, so
    that the reads ``_read_rows`` and ``RowProjection.build`` make get those as
    their own control inputs.
    """
    if len(parts) == 1:
        return [ids], None
    flat = tf.reshape(ids, [-1])
    partition, local = partition_ids(flat, [p.shape[0] for p in parts], strategy)
    positions = tf.range(tf.size(flat))
    return (
        tf.dynamic_partition(local, partition, len(parts)),
        tf.dynamic_partition(positions, partition, len(parts)),
    )


def _read_rows(parts, ids, row_ids, positions, after=()):
    """Rows ``[*ids.shape, dim]``: one gather per partition, after ``after``, then stitched.

    Each gather gets ``after`` (the torch-mode renorms) as its own control
    inputs (in ``tf.compat.v1.nn.embedding_lookup`` they would pass through
    reshapes that Grappler can remove). The rows then go through an identity
    whose gradient waits for ``after`` and the gathers, so the update cannot
    overtake them even when the gradient needs nothing of the forward
    (``sum(rows @ w)``). It names the gathers themselves, as Grappler drops
    control edges leaving stateless ops; it drops a gather whose rows no
    fetch uses, but keeps the edges from the renorm writes.
    """
    reads = []
    with tf.control_dependencies(after):
        for part, part_ids in zip(parts, row_ids):
            with eager.colocated(part):
                reads.append(tf.gather(part, part_ids))
    rows = reads[0]
    if positions is not None:
        rows = tf.reshape(
            tf.dynamic_stitch(positions, reads), tf.concat([tf.shape(ids), [parts[0].shape[1]]], 0)
        )
        rows.set_shape(ids.shape.concatenate(parts[0].shape[1:]))
    if tf.executing_eagerly():
        return rows  # eager ops run in program order: nothing to wait for
    with rows.graph.gradient_override_map({"Identity": _UPDATE_AFTER}):
        rows = tf.identity(rows)
    waits = list(after) + [_unwrapped(read).op for read in reads]
    registry.cached(rows.graph, (_UPDATE_AFTER, rows.op.name), lambda: waits)
    return rows


def _unwrapped(tensor):
    """``tensor`` without the ``Identity`` ops around it (``sparse_read`` adds one)."""
    while tensor.op.type == "Identity":
        tensor = tensor.op.inputs[0]
    return tensor


def partition_ids(ids, sizes, strategy):
    """``(partition, row within it)`` of each id, as ``tf.compat.v1.nn.embedding_lookup``.

    ``"mod"``: partition ``id % n``, row ``id // n``. ``"div"``: contiguous
    blocks, the first ``total % n`` partitions one row longer. ``sizes`` are
    the partitions' row counts, which must follow that layout.

    Returns:
      ``(int32 partition indices, local row ids of ids' dtype)``.
    """
    count = len(sizes)
    if strategy == "mod":
        return tf.cast(ids % count, tf.int32), ids // count
    per, extras = divmod(sum(sizes), count)
    partition = tf.maximum(ids // (per + 1), (ids - extras) // per)
    local = tf.where(partition < extras, ids % (per + 1), (ids - extras) % per)
    return tf.cast(partition, tf.int32), local


def _partitions(fn, params):
    """``params`` as a list of float rank-2 variables, or TypeError/ValueError."""
    parts = (
        list(params) if _is_partitioned(params) or isinstance(params, (list, tuple)) else [params]
    )
    if not parts:
        raise ValueError(
            f"{fn}: `params` must name at least one variable; got {params!r}. "
            "Pass the table variable."
        )
    for part in parts:
        _arg.check_table_variable(fn, part)
    dims = sorted({p.shape[1] for p in parts})
    full = params.get_shape() if _is_partitioned(params) else None
    if len(dims) > 1 or full is not None and full[1] != dims[0]:
        raise ValueError(
            f"{fn}: `params` must be split into row shards (partitioned along "
            f"axis 0); got shards of shapes {[p.shape.as_list() for p in parts]}. "
            "Use e.g. fixed_size_partitioner(n, axis=0)."
        )
    _arg.check_layout(fn, [p.shape[0] for p in parts])
    return parts


def _is_partitioned(params):
    kind = type(params)
    return kind.__name__ == "PartitionedVariable" and kind.__module__.startswith("tensorflow")
