"""The update and variable stages of one ``create_train_op`` step.

``conditional_step`` runs ``apply_gradients`` (inside a ``tf.cond`` that skips
it when a transform asked for a condition, restoring what the step wrote,
``tf1norm.training._rollback``), then each transform's ``post_apply``: per
variable after that variable's own update, or once after every update.
"""

from tf1norm._src.compat import tf, v1
from tf1norm.graph import registry
from tf1norm.training import _rollback
from tf1norm.training.transforms import post_applied


def conditional_step(optimizer, grads_and_vars, transforms, context):
    def apply_step():
        return _apply_and_post_apply(optimizer, grads_and_vars, transforms, context)

    if not context.apply_conditions and not context.gradient_checks:
        return apply_step()
    conditions = [c for c, _ in context.apply_conditions]
    conditions += [check(grads_and_vars) for check in context.gradient_checks]
    rollback = _rollback.protect_step(context.loss, grads_and_vars, conditions)
    with tf.control_dependencies(rollback.writes):  # decide after every write
        apply = tf.reduce_all(tf.stack(conditions), name="apply_step")

    def skip_step():
        ops = [on_skip() for _, on_skip in context.apply_conditions] + rollback.restore()
        with tf.control_dependencies(ops):
            return tf.constant(False)

    def apply_and_flag():
        with tf.control_dependencies([apply_step()]):
            return tf.constant(True)

    applied = tf.cond(apply, apply_and_flag, skip_step)
    references = rollback.restore_references(applied)
    return tf.group(applied.op, *references) if references else applied.op


def _apply_and_post_apply(optimizer, grads_and_vars, transforms, context):
    graph = v1.get_default_graph()
    first_new_op = len(graph.get_operations())
    apply_op = optimizer.apply_gradients(grads_and_vars)
    updates = _update_ops_by_variable(graph.get_operations()[first_new_op:], graph)
    last = context.last_ops
    last.update(
        {
            v.ref(): updates.get(registry.handle_op(v).outputs[0].ref(), apply_op)
            for v in context.variables
        }
    )
    for transform in transforms:
        _post_apply_stage(transform, context, last)
    with tf.control_dependencies([apply_op] + list(last.values())):
        if context.global_step is None:
            return tf.no_op(name="step_done")
        return context.global_step.assign_add(1, read_value=False)


def _post_apply_stage(transform, context, last):
    """Build one transform's variable stage after the previous stage, per variable.

    A per-variable transform's ops for variable v wait only for v's own update
    (and v's previous stages), so they overlap with work on other variables.
    """
    if not transform.post_apply_per_variable:
        with tf.control_dependencies(list(last.values())):
            ops = post_applied(transform, context.variables, context)
        if ops:
            done = _one_op(ops)
            last.update({key: done for key in last})
        return
    for variable in context.variables:
        with tf.control_dependencies([last[variable.ref()]]):
            ops = post_applied(transform, [variable], context)
            if ops:
                last[variable.ref()] = _one_op(ops)


def _one_op(ops):
    """The op itself for one op, else a group: no NoOp per projected variable."""
    if len(ops) == 1 and isinstance(ops[0], tf.Operation):
        return ops[0]
    return tf.group(*ops)


_UPDATE_OP_PREFIXES = (
    "ResourceApply",
    "ResourceSparseApply",
    "Apply",
    "SparseApply",
    "AssignVariableOp",
    "AssignSubVariableOp",
    "AssignAddVariableOp",
    "Assign",
    "ResourceScatter",
    "Scatter",
)


def _update_ops_by_variable(new_ops, graph):
    """Map each variable handle (key) to the last op ``apply_gradients`` wrote it with.

    Inside a ``tf.cond`` branch, handles are captured placeholders; they are
    mapped back to the outer handles. Variables not found (unusual
    optimizers) fall back to waiting for the whole ``apply_gradients`` op.
    """
    outer = {internal.ref(): external for external, internal in getattr(graph, "captures", ())}
    found = {}
    for op in new_ops:
        if op.type.startswith(_UPDATE_OP_PREFIXES) and op.inputs:
            handle = op.inputs[0]
            found[outer.get(handle.ref(), handle).ref()] = op
    return found
