"""``create_train_op``: one op that performs one complete, ordered training step."""

import warnings

from tf1norm._src import checks as _checks
from tf1norm._src import graph_checks as _graph_checks
from tf1norm.training import _apply
from tf1norm.training import finite_check
from tf1norm.graph import keys
from tf1norm.graph import registry
from tf1norm._src.compat import tf, v1
from tf1norm.training.transforms import StepContext, Transform, _ProjectConstraints
from tf1norm.training.transforms import pre_applied, project_constraints


_USE_GLOBAL_STEP = object()  # default of ``global_step``: get or create the graph's


def create_train_op(
    loss,
    optimizer,
    global_step=_USE_GLOBAL_STEP,
    transforms=(),
    update_ops=None,
    variables=None,
    check_numerics=True,
    gate_gradients=v1.train.Optimizer.GATE_OP,
    aggregation_method=None,
    colocate_gradients_with_ops=False,
    summarize_gradients=False,
    name="train_op",
    variables_to_train=None,
):
    """Build ONE op that, run once, performs exactly one complete training step.

    Order, each stage built under ``tf.control_dependencies`` of the previous one:

    1. ``update_ops`` (default: the ``UPDATE_OPS`` collection, i.e. batch-norm
       moving averages) run before the loss is used for gradients;
    2. gradients are computed with ``optimizer.compute_gradients`` and made
       to wait for a NaN/Inf check of the loss (``check_numerics``);
    3. every transform's ``pre_apply`` (gradient stage), in chain order; then
       (``check_numerics``) one NaN/Inf check of all gradients, naming the
       first variable with a non-finite gradient, which every update waits for;
    4. ``optimizer.apply_gradients`` (variable ``constraint=`` attributes are
       applied by the optimizer right after each variable's update);
    5. every transform's ``post_apply`` (variable stage), in chain order, built
       after the update so it reads the new values. Per-variable transforms (all
       built-in ones) are called once per variable, and variable v's ops wait
       for v's own update and v's previous stages only, so they overlap with
       the backward pass and updates of other layers. Projections recorded in
       ``tf1norm.registry`` (by ``max_norm_regularizer`` and similar factories)
       are rebuilt here by ``project_constraints`` (added at the end of the
       chain automatically for every recorded collection the chain does not
       project itself), not regrouped: a prebuilt op grouped under a control
       dependency would still read the old weights;
    6. ``global_step`` is incremented once.

    The returned tensor is the loss, made to depend on the whole step, as
    tf-slim's ``create_train_op`` returns it: ``sess.run(train_op)`` performs
    one step and returns the loss, and ``slim.learning.train`` can drive it.
    It is added to ``GraphKeys.TRAIN_OP``.

    The global step (tf-slim's rule): by default the graph's global step is
    fetched or created and incremented once per step. A program with several
    train ops that run in the same step (a GAN's generator and discriminator)
    builds ONE of them with the default and the others with
    ``global_step=None``, so the step counts each training step once; a
    second train op incrementing the same global step is warned about.

    With ``skip_nonfinite()`` (or any transform adding an apply condition) in
    the chain, stages 4-6 sit in a ``tf.cond`` and are skipped when the loss or
    a gradient is NaN/Inf; on a skip every variable written before the
    decision (batch-norm moving statistics, immediate-mode spectral-norm
    ``u``, any assign in the loss) is restored from a snapshot taken before
    its first write, so the step leaves no trace (see ``skip_nonfinite``).

    With ``tf.compat.v1.train.SyncReplicasOptimizer`` the returned op is the
    worker's op (push gradients, wait for the token), and stages 3-6 run on
    the *aggregated* gradients inside the update the chief's queue runner
    executes, as they would on one machine with the combined batch. Run it
    with ``optimizer.make_session_run_hook(is_chief)`` as usual.

    Args:
      loss: scalar floating tensor.
      optimizer: any ``tf.compat.v1.train.Optimizer``.
      global_step: integer variable to increment once per step. Default: the
        graph's global step, created if missing
        (``tf.compat.v1.train.get_or_create_global_step()``). ``None``: no
        increment.
      transforms: iterable of ``tf1norm`` transforms.
      update_ops: ops to run before the gradients; default ``UPDATE_OPS``.
      variables: variables to train; default the trainable variables.
        ``variables_to_train`` (tf-slim's name) is accepted as an alias.
      check_numerics: check the loss and every applied gradient with
        ``tf.debugging.check_numerics`` (off when a transform handles
        non-finite values itself). A NaN/Inf loss raises before any update;
        a NaN/Inf gradient raises ``InvalidArgumentError`` naming its
        variable before any trained variable is written (writes of the
        forward pass, such as batch-norm statistics, stay: use
        ``skip_nonfinite()`` to undo them too). Cost: one ``Sum`` per
        gradient, or none behind ``clip_by_global_norm`` (its norm decides;
        ``tf1norm.training.finite_check``).
      gate_gradients, aggregation_method, colocate_gradients_with_ops: passed to
        ``compute_gradients``.
      summarize_gradients: add a histogram (``<var>_gradient``) and a norm
        scalar (``<var>_gradient_norm``) summary per gradient, as tf-slim
        does, of the gradients the optimizer applies (after the gradient
        transforms; with ``SyncReplicasOptimizer``, of each worker's own
        gradients). Non-finite entries show as 0 when the chain skips
        non-finite steps (a histogram of a NaN would fail the summary op).
      name: name of the returned tensor (the step's group op is
        ``<name>_step``).

    Returns:
      The loss (a scalar tensor) with the whole step as a control dependency.

    Raises:
      TypeError: ``optimizer`` is not a v1 optimizer, a transform is not a
        ``Transform``, or ``loss`` is not a floating tensor.
      TypeError: ``global_step`` is not an integer variable or None.
      ValueError: ``loss`` is not a scalar, no variable gets a gradient, or both
        ``variables`` and ``variables_to_train`` are given.

    Example::

        train_op = tf1norm.create_train_op(
            loss, tf.compat.v1.train.AdamOptimizer(1e-3),
            transforms=[tf1norm.clip_by_global_norm(5.0),
                        tf1norm.add_decoupled_weight_decay(1e-2)])
        sess.run(tf.compat.v1.global_variables_initializer())
        loss_value = sess.run(train_op, feed_dict={x: x_batch, y: y_batch})  # one step,
        # max-norm projections included
    """
    transforms = _checked_transforms(optimizer, transforms)
    loss = _checks.scalar_loss(loss, "create_train_op", "loss")
    variables = _variables_alias(variables, variables_to_train)
    global_step = _checked_global_step(global_step)
    update_ops = (
        v1.get_collection(keys.UPDATE_OPS)
        if update_ops is None
        else _graph_checks.op_list(update_ops, "create_train_op", "update_ops")
    )
    # No name scope around the step: optimizers create non-slot variables
    # (Adam's beta1_power) in the current scope, and their names must match a
    # plain optimizer.minimize graph for checkpoints to stay interchangeable.
    waits = list(update_ops)
    check_numerics = check_numerics and not any(t.handles_nonfinite for t in transforms)
    if check_numerics:
        waits.append(tf.debugging.check_numerics(loss, "LossTensor is inf or nan").op)
    grads_and_vars = optimizer.compute_gradients(
        loss,
        var_list=variables,
        gate_gradients=gate_gradients,
        aggregation_method=aggregation_method,
        colocate_gradients_with_ops=colocate_gradients_with_ops,
        grad_loss=_seed_gradient(loss, waits),
    )
    _check_some_gradient(grads_and_vars)
    summarize = _gradient_summarizer(summarize_gradients, transforms)
    if isinstance(optimizer, v1.train.SyncReplicasOptimizer):
        if summarize is not None:
            summarize(grads_and_vars)
        step = _sync_replicas_step(optimizer, grads_and_vars, transforms, global_step)
    else:
        context = StepContext(optimizer, global_step, [v for _, v in grads_and_vars], loss)
        step = _transformed_step(
            optimizer, grads_and_vars, transforms, context, summarize, check_numerics
        )
    return _loss_after_step(loss, tf.group(step, name=f"{name}_step"), global_step, name)


def _transformed_step(
    optimizer, grads_and_vars, transforms, context, summarize=None, check_numerics=False
):
    """pre_apply chain, then the (possibly conditional) update and variable stages."""
    for transform in transforms:
        grads_and_vars = pre_applied(transform, grads_and_vars, context, "create_train_op")
    if summarize is not None:
        summarize(grads_and_vars)
    if check_numerics:
        grads_and_vars = finite_check.checked_gradients(grads_and_vars, context)
    return _apply.conditional_step(optimizer, grads_and_vars, transforms, context)


def _loss_after_step(loss, step, global_step, name):
    """tf-slim's return value: the loss, depending on the step; listed in TRAIN_OP."""
    with tf.control_dependencies([step]):
        train_op = tf.identity(loss, name=name)
    train_ops = v1.get_collection_ref(keys.TRAIN_OP)
    if train_op not in train_ops:
        train_ops.append(train_op)
    if global_step is not None:
        _warn_if_already_incremented(global_step, train_op)
    return train_op


def _warn_if_already_incremented(global_step, train_op):
    """Warn once per graph and step variable when a second train op increments it."""
    incrementers = registry.cached(
        v1.get_default_graph(), ("global_step_incrementers", global_step.ref()), list
    )
    if incrementers and len(incrementers) == 1:
        warnings.warn(
            f"create_train_op: {train_op.name} and {incrementers[0]} both increment the global "
            f"step {global_step.op.name}; if both run in one training step (a GAN), the step "
            "counts twice. Build all but one with global_step=None.",
            stacklevel=3,
        )
    incrementers.append(train_op.name)


def _checked_global_step(global_step):
    if global_step is _USE_GLOBAL_STEP:
        return v1.train.get_or_create_global_step()
    if global_step is None:
        return None
    if not isinstance(global_step, tf.Variable) or not global_step.dtype.is_integer:
        got = (
            f"a {global_step.dtype.name} variable"
            if isinstance(global_step, tf.Variable)
            else repr(global_step)
        )
        raise TypeError(
            f"create_train_op: `global_step` must be an integer tf.Variable or "
            f"None; got {got}. Omit it to use "
            "tf.compat.v1.train.get_or_create_global_step(), or pass None for no "
            "increment." + _transforms_hint(global_step)
        )
    return global_step


def _transforms_hint(value):
    """The fix when transforms landed in ``global_step`` (``create_train_op(loss, *adamw())``)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(item, Transform) for item in items):
        return ""
    return (
        " These look like transforms: pass them as `transforms=`, e.g. "
        "`optimizer, transforms = tf1norm.adamw(...)` then "
        "`create_train_op(loss, optimizer, transforms=transforms)`."
    )


def _variables_alias(variables, variables_to_train):
    arg = "variables" if variables_to_train is None else "variables_to_train"
    if variables is not None and variables_to_train is not None:
        raise ValueError(
            "create_train_op: got both `variables` and `variables_to_train` (its "
            "tf-slim alias); pass only one."
        )
    variables = _graph_checks.variable_list(
        variables if variables_to_train is None else variables_to_train, "create_train_op", arg
    )
    if variables == []:
        raise ValueError(
            f"create_train_op: `{arg}` is empty; got []. Pass the variables to "
            f"train, or {arg}=None for every trainable variable."
        )
    return variables


def _gradient_summarizer(summarize_gradients, transforms):
    """A function adding tf-slim's per-gradient summaries, or None."""
    if not isinstance(summarize_gradients, bool):
        raise TypeError(
            f"create_train_op: `summarize_gradients` must be a bool; got {summarize_gradients!r}."
        )
    if not summarize_gradients:
        return None
    zero_nonfinite = any(t.handles_nonfinite for t in transforms)

    def summarize(grads_and_vars):
        for grad, variable in grads_and_vars:
            if grad is None:
                continue
            values = grad.values if isinstance(grad, tf.IndexedSlices) else grad
            if zero_nonfinite:
                values = tf.where(tf.math.is_finite(values), values, tf.zeros_like(values))
            name = variable.op.name
            v1.summary.histogram(f"{name}_gradient", values)
            v1.summary.scalar(f"{name}_gradient_norm", tf.linalg.global_norm([values]))

    return summarize


class _TransformingOptimizer:
    """Stands in for SyncReplicasOptimizer's inner optimizer during one build.

    SyncReplicasOptimizer aggregates the workers' gradients and calls
    ``inner.apply_gradients(aggregated, global_step)`` in the op the chief's
    queue runner executes; the whole transform chain runs there, on the
    aggregated gradients, exactly as on one machine.
    """

    def __init__(self, inner, transforms):
        self._inner, self._transforms = inner, transforms

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        del name
        grads_and_vars = list(grads_and_vars)
        context = StepContext(self._inner, global_step, [v for _, v in grads_and_vars])
        return _transformed_step(self._inner, grads_and_vars, self._transforms, context)

    def __getattr__(self, attribute):
        return getattr(self._inner, attribute)


def _sync_replicas_step(optimizer, grads_and_vars, transforms, global_step):
    if global_step is None:
        raise ValueError(
            "create_train_op: SyncReplicasOptimizer needs a global step; pass "
            "global_step=tf.compat.v1.train.get_or_create_global_step()."
        )
    inner = optimizer._opt
    optimizer._opt = _TransformingOptimizer(inner, transforms)
    try:
        return optimizer.apply_gradients(grads_and_vars, global_step=global_step)
    finally:
        optimizer._opt = inner


def _checked_transforms(optimizer, transforms):
    if not isinstance(_checks.not_a_class(optimizer, "create_train_op"), v1.train.Optimizer):
        keras = callable(getattr(optimizer, "apply_gradients", None))
        raise TypeError(
            f"create_train_op: `optimizer` must be a tf.compat.v1.train.Optimizer; "
            f"got {type(optimizer).__name__}. "
            + (
                "Keras optimizers cannot be used in a tf.compat.v1 graph train op; "
                "use tf1norm.make_train_step for them."
                if keras
                else "Pass e.g. tf.compat.v1.train.AdamOptimizer(1e-3)."
            )
        )
    transforms = _graph_checks.instance_list(
        transforms, Transform, "create_train_op", "transforms", "tf1norm.clip_by_norm(5.0)"
    )
    return transforms + _automatic_projections(transforms)


def _automatic_projections(transforms):
    handled = {t.collection for t in transforms if isinstance(t, _ProjectConstraints)}
    recorded = registry.recorded_collections(v1.get_default_graph())
    return [project_constraints(c) for c in recorded if c not in handled]


def _seed_gradient(loss, waits):
    """``dloss/dloss = 1``, computed after ``waits`` (update ops, the loss check).

    Every gradient is a function of this seed, so every variable update waits
    for ``waits`` through one control edge. (An identity of the *loss* under a
    control dependency would not do: tf.gradients never evaluates the forward
    identity, nor a forward check_numerics op. Wrapping all of
    ``compute_gradients`` in the dependency works too, but costs a filtered
    control edge per gradient op: +35% build time on resnet_v1_50.)
    """
    if not waits:
        return None
    with tf.control_dependencies(waits):
        return tf.ones_like(loss, name="gradient_seed")


def _check_some_gradient(grads_and_vars):
    if not any(g is not None for g, _ in grads_and_vars):
        names = [v.op.name for _, v in grads_and_vars]
        raise ValueError(
            f"create_train_op: no gradient flows from the loss to any of the "
            f"variables {names}. Check `variables` and the loss."
        )
