"""``check_train_op``: find collection ops a train op never runs or runs too early."""

import collections

from tf1norm import keys
from tf1norm import registry
from tf1norm._tf import tf, v1

Finding = collections.namedtuple("Finding", "kind subject message")

_UPDATE_PREFIXES = ("ResourceApply", "Apply", "ResourceSparseApply", "SparseApply",
                    "ResourceScatterAdd", "ScatterAdd", "ResourceScatterSub", "ScatterSub")
_PROJECTION_TYPES = ("Assign", "AssignVariableOp", "ResourceScatterUpdate", "ScatterUpdate")
_BRANCH_OPS = ("If", "StatelessIf")


def check_train_op(train_op, collections_to_check=(keys.MAX_NORM,)):
    """Report projection and update ops that ``train_op`` skips or misorders.

    For every variable with a projection (ops in ``collections_to_check`` and
    projections recorded in ``tf1norm.registry``) that ``train_op`` updates:
    ``"never runs"`` when no projection of it runs inside the train op, and
    ``"before update"`` when one runs but is not ordered after the
    optimizer's update of that variable (it can read the old weights: the
    classic ``control_dependencies([train_op])`` mistake). For every op in
    ``UPDATE_OPS``: ``"never runs"`` or ``"after gradients"`` when the
    optimizer's updates do not wait for it. Ops inside ``tf.cond`` branches
    (``skip_nonfinite``) are inspected too.

    Args:
      train_op: the op (or tensor) you run each step.
      collections_to_check: collection names holding projection ops.

    Returns:
      A list of ``Finding(kind, subject, message)``; empty when all is well.
    """
    ops = _Closure(_as_op(train_op))
    findings = [f for v in _projected_variables(collections_to_check)
                for f in _check_projection(ops, *v)]
    findings += [f for u in v1.get_collection(keys.UPDATE_OPS) for f in _check_update_op(ops, u)]
    return findings


def _as_op(x):
    return x if isinstance(x, tf.Operation) else x.op


class _Closure:
    """Every op a run of ``root`` executes, with parent links across cond branches."""

    def __init__(self, root):
        self.outer = {}  # captured placeholder op -> outer op
        self.ops = set()
        self._visit(root)

    def parents(self, op):
        found = [t.op for t in op.inputs] + list(op.control_inputs)
        if op in self.outer:
            found.append(self.outer[op])
        return found

    def _visit(self, root):
        stack = [root]
        while stack:
            op = stack.pop()
            if op in self.ops:
                continue
            self.ops.add(op)
            stack.extend(self.parents(op))
            if op.type in _BRANCH_OPS:
                stack.extend(self._branch_ops(op))

    def _branch_ops(self, op):
        ops = []
        for branch in (getattr(op, "_true_graph", None), getattr(op, "_false_graph", None)):
            if branch is None:
                continue
            for external, internal in branch.captures:
                self.outer[internal.op] = external.op
            ops.extend(branch.get_operations())
        return ops

    def ancestors(self, op):
        seen, stack = set(), [op]
        while stack:
            current = stack.pop()
            for parent in self.parents(current):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def variable_of(self, op):
        handle = op.inputs[0].op if op.inputs else None
        while handle is not None and handle in self.outer:
            handle = self.outer[handle]
        return handle

    def writes(self, variable_op, prefixes):
        return [op for op in self.ops if op.type.startswith(prefixes) and op.inputs
                and self.variable_of(op) is variable_op]


def _projected_variables(collections_to_check):
    found = {}
    for name in collections_to_check:
        for item in v1.get_collection(name):
            op = _as_op(item)
            if op.type.startswith("Assign") and op.inputs:
                found.setdefault(op.inputs[0].op, (op.inputs[0].op, op))
    for name in registry.recorded_collections():
        for projection in registry.get_projections(name):
            handle = registry.handle_op(projection.variable)
            found.setdefault(handle, (handle, None))
    return list(found.values())


def _check_projection(ops, variable_op, collection_op):
    updates = ops.writes(variable_op, _UPDATE_PREFIXES)
    if not updates:
        return []  # not trained by this op: nothing to order
    projections = [op for op in ops.writes(variable_op, _PROJECTION_TYPES)
                   if op.type in _PROJECTION_TYPES]
    if any(set(updates) & ops.ancestors(p) for p in projections):
        return []
    name = variable_op.name
    if projections:
        return [Finding("before update", name,
                        f"a projection of {name} ({projections[0].name}) runs in the train op but "
                        "is not ordered after the optimizer's update, so it can read the old "
                        "weights. Build the train op with tf1norm.create_train_op.")]
    hint = f" (collection op {collection_op.name})" if collection_op is not None else ""
    return [Finding("never runs", name,
                    f"{name} has a projection{hint} that the train op never runs. Use "
                    "tf1norm.create_train_op, or run it after each step (tf1norm.ConstraintHook).")]


def _check_update_op(ops, update):
    update = _as_op(update)
    if update not in ops.ops:
        return [Finding("never runs", update.name,
                        f"UPDATE_OPS op {update.name} never runs in the train op (batch-norm "
                        "statistics are not updated). Use tf1norm.create_train_op.")]
    appliers = [op for op in ops.ops if op.type.startswith(_UPDATE_PREFIXES)]
    if appliers and not all(update in ops.ancestors(op) for op in appliers):
        return [Finding("after gradients", update.name,
                        f"UPDATE_OPS op {update.name} runs but the gradient step does not wait "
                        "for it. Use tf1norm.create_train_op.")]
    return []
