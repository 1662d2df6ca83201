"""Non-finite steps: ``skip_nonfinite`` leaves no trace of them, the default check raises.

The transform registers two checks on the ``StepContext``: an apply condition
(the loss and the gradients it receives are finite) and a gradient check (the
gradients a later transform changed are finite too). ``create_train_op`` puts
the update in a ``tf.cond`` on them and, on a skip, restores every variable
the step wrote before the decision (``tf1norm.training._rollback``).
"""

from tf1norm._src import eager
from tf1norm.graph import keys
from tf1norm._src.compat import tf, v1
from tf1norm.training.transforms import Transform, map_gradients


class _SkipNonfinite(Transform):
    handles_nonfinite = True

    def __init__(self):
        self.skipped_steps = None

    def pre_apply(self, grads_and_vars, context):
        with tf.name_scope("skip_nonfinite"):
            values = [_values(g) for g, _ in grads_and_vars if g is not None]
            checked = {id(t): t for t in values}  # holds them: ids stay unique
            finite = _all_finite(values + ([] if context.loss is None else [context.loss]))
            counter = context.make_variable(
                self,
                lambda: v1.Variable(  # once per TF2 step
                    0, dtype=tf.int64, trainable=False, name="skipped_steps", use_resource=True
                ),
            )
        self.skipped_steps = context.state[self] = counter
        if not tf.executing_eagerly():
            v1.add_to_collection(keys.SKIPPED_STEPS, counter)
        context.add_apply_condition(finite, lambda: counter.assign_add(1, read_value=False))
        context.add_gradient_check(
            lambda final: _all_finite(
                [
                    _values(g)
                    for g, _ in final
                    if g is not None and checked.get(id(_values(g))) is not _values(g)
                ]
            )
        )
        return grads_and_vars


def _all_finite(tensors):
    """True when no entry of any tensor is NaN or Inf: one reduction per tensor."""
    checks = [tf.reduce_all(tf.math.is_finite(t)) for t in tensors]
    return tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)


def _values(grad):
    return grad.values if isinstance(grad, tf.IndexedSlices) else grad


def skip_nonfinite():
    """Skip the whole step when the loss or any gradient has a NaN or Inf.

    The decision looks at the loss and at the gradients the optimizer would
    apply (after every gradient transform of the chain, so a later
    ``multiply_gradients`` or clipping that creates an Inf is caught too). On
    a skipped step nothing of the step stays:

    * no variable, optimizer slot (Adam's ``m``/``v`` and its ``beta1_power``,
      Momentum's accumulator, ...) or global step changes: the update and
      every post_apply stage (projections, decay, ``u`` refreshes) sit in the
      true branch of a ``tf.cond``;
    * every variable the forward and backward passes wrote before the
      decision is restored: batch-norm ``moving_mean``/``moving_variance``
      (``UPDATE_OPS`` or in place, tf1norm's, tf-slim's and
      ``tf.compat.v1.layers``'), the ``u`` of
      ``spectral_norm_getter(update="immediate")``, a ``tf.random.Generator``
      state, any assign in the loss. Each is read into a snapshot before its
      first write (a control edge) and written back in the false branch, which
      waits for every such write;
    * the non-trainable int64 counter ``skipped_steps`` (also exposed as
      ``transform.skipped_steps`` and in ``keys.SKIPPED_STEPS``) increments.

    In TF2 (``make_train_step``, ``attach_transforms``) the same holds for
    the variables the update writes; forward-pass writes are restored for the
    variables given as ``restore_on_skip`` (``attach_transforms``: the
    model's non-trainable variables). Under a ``tf.distribute`` strategy the
    decision is taken on the gradients summed over the replicas and is the
    same on every replica (see ``conditional_update``).

    So training after any number of skipped steps continues bit-identically
    to a run that never saw them. Not undone: the draws of stateful random
    ops (``dropout``, ``add_gradient_noise``, ``tf.random.uniform``), whose
    kernels keep their own position; use stateless ops seeded by the global
    step for bit-identical resumption. With ``SyncReplicasOptimizer`` the
    workers' forward writes are not undone (they run in another
    ``Session.run``).

    Cost: one ``is_finite`` reduction per gradient and the loss, one copy of
    each variable written before the decision (moving statistics and ``u``
    vectors, small), and at build time one walk over the step's ops. With
    this transform in the chain ``create_train_op`` does not wrap the loss
    and gradients in ``check_numerics``, so a non-finite step is skipped
    rather than raised.
    """
    return _SkipNonfinite()


# ------------------------------------------------------------ the TF2 step's skip


def snapshot(variables):
    """``[(variable, its value now)]``: what a skipped TF2 step writes back.

    In a replica of a ``tf.distribute`` strategy, the variable is this
    replica's own copy: every replica writes back the same value, and writing
    the copy directly starts no aggregation (whose collectives would have to
    run in the same order on every replica).
    """
    pairs = []
    for variable in variables:
        variable = _local(eager.tf_variable(variable))
        pairs.append((variable, tf.identity(variable.read_value())))
    return pairs


def _local(variable):
    """This replica's component of a distributed variable; the variable otherwise."""
    if (
        isinstance(variable, tf.distribute.DistributedValues)
        and tf.distribute.get_replica_context() is not None
    ):
        return variable._get_on_device_or_primary()  # no public accessor
    return variable


def conditional_update(context, pairs, update, restore, replica=None, written=list):
    """The TF2 step's stages 3-5: ``update(pairs)`` unless a skip condition fails.

    One device: a ``tf.cond``; the skip branch runs each transform's
    ``on_skip`` and writes the ``restore`` snapshots back (forward-pass writes
    such as batch-norm moving statistics). Under a ``tf.distribute`` strategy
    (``replica``) the optimizer's update all-reduces and so cannot sit in a
    ``tf.cond``: the decision is all-reduced (the same on every replica), the
    update runs with the gradients zeroed, and every variable of ``written()``
    (trained variables, optimizer slots, step counter) and of ``restore``
    gets its snapshot back when the step is skipped.

    Returns:
      A bool tensor: True when the update was applied.
    """
    conditions = [c for c, _ in context.apply_conditions]
    conditions += [check(pairs) for check in context.gradient_checks]
    if not conditions:
        update(pairs)
        return tf.constant(True)
    applied = tf.reduce_all(tf.stack(conditions))
    if replica is None:
        return tf.cond(applied, lambda: _applied(update, pairs), lambda: _skipped(context, restore))
    failed = tf.cast(tf.logical_not(applied), tf.float32)
    applied = tf.equal(replica.all_reduce(tf.distribute.ReduceOp.SUM, failed), 0.0)
    kept = snapshot(written()) + list(restore)
    update(map_gradients(pairs, lambda g: tf.where(applied, g, tf.zeros_like(g))))
    for variable, value in kept:
        variable.assign(tf.where(applied, variable.read_value(), value))
    return tf.cond(applied, lambda: tf.constant(True), lambda: _skipped(context, ()))


def _applied(update, pairs):
    update(pairs)
    return tf.constant(True)


def _skipped(context, restore):
    for _, on_skip in context.apply_conditions:
        on_skip()
    for variable, value in restore:
        variable.assign(value)
    return tf.constant(False)
