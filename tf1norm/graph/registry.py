"""Per-graph records of what tf1norm's factories registered.

Graph collections hold *ops*: an assign op built when the layer was built reads
the variable whenever it runs, so it is right for the seed's second
``sess.run``, but it cannot be moved after an optimizer update (grouping it
under a control dependency does not change what it reads). The train-op
builder therefore needs the *recipe* too. ``Projection`` is that recipe: the
variable plus the pure function to apply, able to build a fresh assign op at
any point of the graph. Records live beside the graph (a weak mapping from
graph to records), not in a graph collection, so that ``Saver`` and
``export_meta_graph`` do not warn about unserializable collection items.

TF2 (eager variables: ``track_tf1_style_variables`` layers, Keras)
-------------------------------------------------------------------
A variable created eagerly has no graph. Its records are kept as follows
(``tf1norm._src.eager`` finds the context):

=====================  ===================================  =======================
record                 kept in                              lives
=====================  ===================================  =======================
``Projection``         on the variable itself, found         as long as the variable
(max-norm of a         through a weak index (registered
variable)              once, first call wins, as in a graph)
``transient`` records  the *trace*: the outermost            that trace (each retrace
(``RowProjection``,    ``FuncGraph`` being traced inside     records afresh)
``PowerIteration-      ``tf.function``; in plain eager
Refresh``: they hold   execution the eager step store,       until ``clear_step_records()``
tensors of the         where a record with the same key
forward pass)          replaces the older one
=====================  ===================================  =======================

A max-norm regularizer records when the shim creates its variable
(``eager.records_on_creation``), even if nothing reads ``layer.losses``.
In TF2 nothing is assigned on the forward pass: factories only record, and
the train step builds the records after the optimizer update. The contract
for a TF2 step (eager, or ``tf.function`` with or without ``jit_compile``):

1. run the forward pass (the layer call) in the same function as the step;
2. ``get_projections(collection)`` / ``recorded_collections()`` called in
   that function (any ``graph`` argument, or none) return the graph's own
   records *plus* the eager-variable records visible here: the persistent
   ones and those of the current trace (or of the eager step store);
3. ``projection.build()`` builds (in a ``FuncGraph``) or runs (eagerly) the
   assign in the current context; ``projection.variables`` are the
   ``tf.Variable`` objects whose update it must follow;
4. in plain eager execution call ``clear_step_records()`` at the end of the
   step, so the next forward pass's rows and ``u`` are not mixed with these.
"""

import weakref

from tf1norm._src import eager
from tf1norm._src.compat import tf, v1

_STATE = weakref.WeakKeyDictionary()


class Projection:
    """A variable and the projection ``fn(value) -> value`` to assign to it.

    Attributes:
      variable: the ``tf.Variable`` to project.
      fn: pure function mapping the variable's value to the projected value.
      name: name of the assign ops built from this record.
      transient: class attribute; True for records holding tensors of one
        forward pass (kept per trace in TF2, see the module docstring).
    """

    transient = False

    def __init__(self, variable, fn, name, axes=None, guard=None):
        self.variable = variable
        self.fn = fn
        self.name = name
        self.axes = axes  # reduced axes, when fn works per sub-tensor (partitions regroup)
        # guard(value) -> None, or (changes, project): write project() only when changes
        self.guard = guard

    @property
    def key(self):
        """Identity for de-duplication: one record per variable."""
        return self.variable.ref()

    @property
    def target(self):
        """The variable ``build()`` writes (the trained variable itself here)."""
        return self.variable

    @property
    def variables(self):
        """The trained variables whose updates ``build()`` must follow."""
        return [self.variable]

    def build(self):
        """Build a new assign op that reads the variable *when it runs*.

        Build it under ``tf.control_dependencies([update])`` to project the
        value written by ``update``.
        """
        with eager.colocated(self.variable):
            value = fresh_read(self.variable)
            split = None if self.guard is None else self.guard(value)
            if split is None:
                return self.variable.assign(self.fn(value), name=self.name, read_value=False)
            changes, project = split
            write = lambda: self.variable.assign(project(), name=self.name, read_value=False)  # noqa: E731
            return _write_if(changes, write)

    def __repr__(self):
        return f"{type(self).__name__}({self.variable.name!r}, name={self.name!r})"


class PartitionedProjection(Projection):
    """One projection of a partitioned variable whose sub-tensor norms span partitions.

    A max-norm over the input axis of a kernel split along that axis (the
    default of ``fixed_size_partitioner``) needs every partition: projecting
    each one alone would cap each piece's norm, not the unit's. ``build()``
    reads all parts, projects their concatenation and writes each part its
    slice. ``variable`` is the last part; ``parts`` are all of them, in order.
    """

    def __init__(self, parts, axis, fn, name):
        super().__init__(parts[-1], fn, name)
        self.parts, self.axis = list(parts), axis

    @property
    def variables(self):
        return self.parts

    def build(self):
        """One assign op per part (a list); build it after every part's update."""
        whole = tf.concat([fresh_read(p) for p in self.parts], self.axis)
        pieces = tf.split(self.fn(whole), [int(p.shape[self.axis]) for p in self.parts], self.axis)
        return [
            p.assign(piece, name=self.name, read_value=False)
            for p, piece in zip(self.parts, pieces)
        ]


def partition_axis(variable):
    """The axis ``variable`` is one partition along, or None (not a proper partition)."""
    info = getattr(variable, "_save_slice_info", None)
    if info is None:
        return None
    split = [
        i for i, (part, full) in enumerate(zip(info.var_shape, info.full_shape)) if part != full
    ]
    return split[0] if split else None


def group_partitions(projections):
    """Replace per-partition records split along a reduced axis by one record per variable.

    Records of parts split along a kept axis (whole sub-tensors in each part)
    and of plain variables are returned unchanged, in order.
    """
    groups, result = {}, []
    for projection in projections:
        axis = partition_axis(projection.variable)
        if (
            axis is None
            or projection.axes is None
            or axis not in projection.axes
            or type(projection) is not Projection
        ):
            result.append(projection)
            continue
        info = projection.variable._save_slice_info
        key = (info.full_name, projection.name)
        if key not in groups:
            groups[key] = []
            result.append(key)
        groups[key].append(projection)
    return [_whole(groups[item]) if isinstance(item, tuple) else item for item in result]


def _whole(parts):
    axis = partition_axis(parts[0].variable)
    parts = sorted(parts, key=lambda p: p.variable._save_slice_info.var_offset[axis])
    return PartitionedProjection([p.variable for p in parts], axis, parts[0].fn, parts[0].name)


class RowProjection(Projection):
    """Project only the rows ``ids`` of a table: gather, ``fn``, scatter back.

    ``ids`` are row indices of ``variable`` itself (for a partitioned table,
    rows within that partition), of any shape; repeated ids are projected
    once. Cost is proportional to the number of distinct ids, not to the
    table. One record per (table, ids tensor), so several lookups of a table
    each project their own rows. ``embedding_lookup`` also builds these
    before its read (``mode="torch"``), without recording them.
    """

    transient = True

    def __init__(self, variable, ids, fn, name):
        super().__init__(variable, fn, name)
        self.ids = ids

    @property
    def key(self):
        return (self.variable.ref(), self.ids.ref())

    def build(self):
        """Build gather-``fn``-scatter; the gather waits for the current control dependencies.

        The ids are computed outside those dependencies so that the gather
        gets them as its *own* control inputs. Carried only by ops between
        (a ``[-1]`` shape constant of a reshape), they can vanish when Grappler
        removes such an op, and the gather would read the rows before the
        update it was built after.
        """
        with tf.control_dependencies(None), eager.colocated(self.variable):
            unique_ids, _ = tf.unique(tf.reshape(self.ids, [-1]))
        with eager.colocated(self.variable):
            # tf.gather reads a resource variable with sparse_read: the rows
            # without a reference to the whole table; with read_value() the
            # scatter below would have to copy the entire buffer first
            # (copy-on-write). (A ref variable has no sparse_read.)
            rows = tf.gather(self.variable, unique_ids)
            if hasattr(self.variable, "handle"):
                return tf.raw_ops.ResourceScatterUpdate(
                    resource=self.variable.handle,
                    indices=unique_ids,
                    updates=self.fn(rows),
                    name=self.name,
                )
            return v1.scatter_update(self.variable, unique_ids, self.fn(rows), name=self.name).op


def _write_if(changes, write):
    """A ``tf.cond`` op that runs ``write()`` (an assign) only when ``changes`` is true.

    In a session the untaken branch's ops are dead tensors: nothing is read
    beyond what decided ``changes``, and the variable keeps its buffer.
    """

    def written():
        with tf.control_dependencies([write()]):
            return tf.constant(True)

    return tf.cond(changes, written, lambda: tf.constant(False)).op


def fresh_read(variable):
    """A read of ``variable`` made when it runs (under the current control dependencies).

    One ``ReadVariableOp`` for resource variables (``read_value()`` adds an
    Identity and a name scope: one op in ten of a projection); ``read_value()``
    for ref variables, whose ``value()`` is a snapshot taken at creation.
    """
    if hasattr(variable, "handle"):
        return tf.raw_ops.ReadVariableOp(resource=variable.handle, dtype=variable.dtype.base_dtype)
    return variable.read_value()


def handle_op(variable):
    """The op that owns a variable's storage: its VarHandleOp (resource) or itself (ref)."""
    return variable.handle.op if hasattr(variable, "handle") else variable.op


def storage_op(tensor):
    """Follow ``Identity``/``ReadVariableOp`` reads back to the op holding the variable."""
    op = tensor.op
    while op.type in ("Identity", "ReadVariableOp") and op.inputs:
        op = op.inputs[0].op
    return op


def _graph_state(graph):
    return _STATE.setdefault(graph, {"projections": {}, "cache": {}, "records": {}})


def add_record(graph, kind, key, record):
    """Keep ``record`` under ``kind`` once per ``key``, in insertion order."""
    _graph_state(graph)["records"].setdefault(kind, {}).setdefault(key, record)


def get_records(kind, graph=None):
    """The records of ``kind`` in ``graph`` (e.g. weight-norm pairs), in order."""
    graph = graph or v1.get_default_graph()
    return list(_graph_state(graph)["records"].get(kind, {}).values())


def register_projection(projection, collection):
    """Record ``projection`` under ``collection``; False if its key already is.

    Where the record goes depends on the variable (see the module docstring).
    In the eager step store a record with the same key replaces the older one
    (the latest forward pass wins) and True is returned.
    """
    variable = projection.variable
    if eager.is_eager(variable) and not projection.transient:
        table = eager.persistent_table(variable, collection)
    else:
        store = eager.record_key(variable, projection.transient)
        table = _graph_state(store)["projections"].setdefault(collection, {})
        if store is eager.EAGER_STEP:
            table[projection.key] = projection
            return True
    if projection.key in table:
        return False
    table[projection.key] = projection
    return True


def _tf2_tables(collection=None):
    """``{collection: [records]}`` of eager variables visible here (empty in a TF1 graph)."""
    if not eager.in_tf2():
        return {}
    tables = eager.persistent_records(collection)
    for name, table in _graph_state(eager.trace_key())["projections"].items():
        if collection is None or name == collection:
            tables.setdefault(name, []).extend(table.values())
    return tables


def get_projections(collection, graph=None):
    """The ``Projection`` records of ``collection`` in ``graph``, in registration order.

    In TF2 (eager, or while tracing a ``tf.function``) the records of eager
    variables visible here follow the graph's own (module docstring).
    """
    graph = graph or v1.get_default_graph()
    records = list(_graph_state(graph)["projections"].get(collection, {}).values())
    records += [r for r in _tf2_tables(collection).get(collection, []) if r not in records]
    return records


def recorded_collections(graph=None):
    """Names of the collections with recorded projections in ``graph`` (and TF2, as above)."""
    graph = graph or v1.get_default_graph()
    names = [name for name, table in _graph_state(graph)["projections"].items() if table]
    return names + [name for name, table in _tf2_tables().items() if table and name not in names]


def clear_step_records():
    """Forget the eager step store's records (call at the end of an eager TF2 step)."""
    _graph_state(eager.EAGER_STEP)["projections"].clear()


def cached(graph, key, build):
    """Return the value stored under ``key`` for ``graph``, building it once.

    ``graph=None`` (``eager.cache_graph`` of an eager value outside any
    function) caches nothing: ``build()`` runs every time.
    """
    if graph is None:
        return build()
    cache = _graph_state(graph)["cache"]
    if key not in cache:
        cache[key] = build()
    return cache[key]
