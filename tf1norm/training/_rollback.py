"""Undo, on a skipped step, every variable write made before the skip decision.

A conditional step (``skip_nonfinite``) decides to apply or skip only after
the forward and backward passes ran, and these passes can write variables:
batch-norm moving statistics (``UPDATE_OPS``, or in place), the power-iteration
``u`` of ``spectral_norm_getter(update="immediate")``, the state of a
``tf.random.Generator``, any op of the loss that assigns a variable.
``protect_writes`` finds those writes among the ancestors of the step's
tensors, snapshots each written variable before its first write (a control
edge from the snapshot to every write), and returns the writes (the skip
decision must wait for them) and builders of the restores: in the skip
branch for resource variables, after the decision for legacy reference variables.

Plumbing only: the ops are the graph's own ``ReadVariableOp``/``AssignVariableOp``
(``DeepCopy``/``Assign`` for legacy reference variables).
"""

import collections
import warnings

from tf1norm._src.compat import tf, v1

# Stateful ops that take a variable but never write it.
_READ_ONLY = frozenset(
    {
        "ReadVariableOp",
        "ResourceGather",
        "ResourceGatherNd",
        "VariableShape",
        "VarIsInitializedOp",
        "IsVariableInitialized",
        "DestroyResourceOp",
        "RefIdentity",
        "RefSwitch",
        "RefEnter",
        "RefExit",
        "RefMerge",
        "RefNextIteration",
        "RefSelect",
    }
)
_HANDLE_OPS = ("VarHandleOp",)
_REF_OPS = ("VariableV2", "Variable")

_Written = collections.namedtuple("_Written", "target dtype is_ref writes")


class Rollback:
    """The writes a skip decision must wait for, and the restores of the skip branch.

    Attributes:
      writes: the variable-writing ops found before the decision.
      snapshots: ``{variable op name: snapshot tensor}``, each read before any write.
    """

    def __init__(self, written, snapshots):
        self._written, self.snapshots = written, snapshots
        self.writes = [op for record in written.values() for op in record.writes]

    def restore(self):
        """Ops writing every resource variable's snapshot back (build them in the skip branch)."""
        return [
            tf.raw_ops.AssignVariableOp(resource=record.target, value=self.snapshots[name])
            for name, record in self._written.items()
            if not record.is_ref
        ]

    def restore_references(self, applied):
        """Ops writing reference variables back, built *after* the ``tf.cond``.

        A ``tf.cond`` branch cannot take a reference input, so each legacy
        variable gets ``assign(v, applied ? v : snapshot)`` after the decision.
        """
        ops = []
        for name, record in self._written.items():
            if record.is_ref:
                with tf.control_dependencies([applied]):
                    kept = tf.where(applied, tf.identity(record.target), self.snapshots[name])
                    ops.append(v1.assign(record.target, kept, use_locking=True).op)
        return ops


def protect_step(loss, grads_and_vars, conditions):
    """``protect_writes`` of a step's loss, gradients and skip conditions.

    Args:
      loss: the loss tensor, or None under ``SyncReplicasOptimizer``, whose
        workers run the forward pass in another ``Session.run``: then nothing
        before the decision is undone.
      grads_and_vars: the gradients the optimizer would apply.
      conditions: the boolean tensors of the skip decision.

    Returns:
      A ``Rollback`` (empty when ``loss`` is None).
    """
    if loss is None:
        return Rollback({}, {})
    grads = [
        t
        for g, _ in grads_and_vars
        if g is not None
        for t in ((g.values, g.indices) if isinstance(g, tf.IndexedSlices) else (g,))
    ]
    return protect_writes([loss] + grads + list(conditions))


def protect_writes(fetches):
    """Snapshot, before their first write, the variables the ops behind ``fetches`` write.

    Args:
      fetches: tensors and ops the step computes before its skip decision
        (the loss, the gradients, the decision's conditions).

    Returns:
      A ``Rollback``: ``writes`` to wait for before deciding, ``restore()`` for
      the skip branch. Empty when nothing is written.
    """
    written = _written_variables(_ancestors(fetches))
    snapshots = {}
    for name, record in written.items():
        snapshot = _snapshot(record)
        for op in record.writes:
            op._add_control_input(snapshot.op)  # read the old value first
        snapshots[name] = snapshot
    return Rollback(written, snapshots)


def _ancestors(fetches):
    """Every op ``fetches`` depend on, by data or control edges."""
    stack = [f if isinstance(f, tf.Operation) else f.op for f in fetches if f is not None]
    seen = set()
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def _written_variables(ops):
    """``{variable op name: _Written}`` for every variable some op of ``ops`` may write."""
    written = {}
    for op in sorted(ops, key=lambda o: o._id):
        if op.type in _READ_ONLY or not _may_write(op) or not _protectable(op):
            continue
        for tensor in op.inputs:
            variable = _variable_of(tensor)
            if variable is None:
                continue
            record = written.get(variable.name)
            if record is None:
                record = written[variable.name] = _Written(
                    variable.outputs[0], variable.get_attr("dtype"), variable.type in _REF_OPS, []
                )
            if op not in record.writes:
                record.writes.append(op)
    return written


def _may_write(op):
    """Stateful ops, and reference-variable ops (``Assign``, ``ScatterAdd``: not stateful)."""
    return op._is_stateful or any(t.dtype._is_ref_dtype for t in op.inputs)


def _protectable(op):
    """False (with a warning) for a write inside TF1 control flow: no edge can reach it."""
    if getattr(op, "_control_flow_context", None) is None:
        return True
    warnings.warn(
        f"skip_nonfinite: {op.name} writes a variable inside a TF1 while loop or "
        "cond; a skipped step cannot undo it. Use TF2 control flow "
        "(tf.compat.v1.enable_control_flow_v2()).",
        stacklevel=5,
    )
    return False


def _variable_of(tensor):
    """The ``VarHandleOp``/``VariableV2`` op behind a resource or reference input, or None."""
    if tensor.dtype != tf.resource and not tensor.dtype._is_ref_dtype:
        return None
    op = tensor.op
    while op.type in ("Identity", "RefIdentity") and op.inputs:
        op = op.inputs[0].op
    return op if op.type in _HANDLE_OPS + _REF_OPS else None


def _snapshot(record):
    """A copy of the variable's value, built outside every control dependency."""
    with (
        tf.control_dependencies(None),
        v1.colocate_with(record.target.op),
        tf.name_scope("skip_nonfinite_snapshot"),
    ):
        if record.is_ref:
            return tf.raw_ops.DeepCopy(x=record.target)
        return tf.raw_ops.ReadVariableOp(resource=record.target, dtype=record.dtype)
