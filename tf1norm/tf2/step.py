"""The transform chain as a TF2 step: eager, ``tf.function`` (also ``jit_compile=True``).

``make_train_step(optimizer, transforms)`` returns a :class:`TrainStep` that
runs one training step in the same fixed order as ``create_train_op``:

1. gradients of the loss (``tf.GradientTape``);
2. every transform's ``pre_apply``, in chain order;
3. ``optimizer.apply_gradients``;
4. every transform's ``post_apply``, in chain order (per variable, after that
   variable's update; eager ops run in program order, and ``tf.function``'s
   automatic control dependencies keep that order);
5. the step counter ``global_step`` (int64) is incremented once.

A variable's Keras ``constraint`` stays its last write of the step: decoupled
decay of a constrained variable is subtracted before the update (the same
value, as the decay reads θ_old), and the constraint is applied again after
any other transform that writes variables after the update.

With ``skip_nonfinite()`` in the chain, stages 3-5 sit in a ``tf.cond`` (under
a strategy, whose optimizer update all-reduces, they run with zeroed
gradients and a skipped step writes the old values back; see
``skipping.conditional_update``). Unlike ``create_train_op``, the step does
not wrap the loss in ``check_numerics`` (a NaN loss trains on; add
``skip_nonfinite()``), and the writes of the forward pass (batch-norm moving
statistics, the ``u`` of ``spectral_norm_getter``) are undone on a skipped
step only for the variables named in ``restore_on_skip`` (``attach_transforms``
names the model's non-trainable variables).

Under a ``tf.distribute`` strategy (the step called in ``strategy.run``),
stage 2 sees the gradients summed over the replicas, as one device sees the
gradient of the global batch (so ``clip_by_global_norm`` clips the global
gradient, and every replica takes the same decisions); the optimizer gets
each replica's share ``g / n`` and sums them back, as it always does.

The optimizer is a Keras 3 optimizer (``keras.optimizers.Adam``), a tf-keras
optimizer (``tf.keras.optimizers.Adam`` with tf1norm's ``TF_USE_LEGACY_KERAS``)
or a ``tf.compat.v1.train`` optimizer. The transforms read a
:class:`TF2StepContext`: its ``state`` is fresh each call, while the variables
transforms keep (the ``skipped_steps`` counter) are created on the first call
only and live on the step object, so the step can be wrapped in
``tf.function`` and traced again. Projections recorded in ``tf1norm.registry``
are added at the end of the chain, as ``create_train_op`` adds them.
"""

from tf1norm.graph import registry
from tf1norm._src import checks as _checks
from tf1norm._src import graph_checks as _graph_checks
from tf1norm._src.compat import tf, v1
from tf1norm.training.transforms import StepContext, Transform, _ProjectConstraints
from tf1norm.training import skipping
from tf1norm.training.transforms import map_gradients, pre_applied, project_constraints


class TF2StepContext(StepContext):
    """``StepContext`` of one TF2 step; persistent variables live on the step.

    ``graph`` is the graph projections are recorded for (the outer default
    graph, also inside a ``tf.function``).
    """

    def __init__(self, optimizer, global_step, variables, persistent, graph, loss=None):
        super().__init__(optimizer, global_step, variables, loss)
        self.graph = graph
        self.persistent = persistent

    def make_variable(self, key, create):
        """``create()`` on the first call of the step (outside any function); reuse after."""
        if key not in self.persistent:
            with tf.init_scope():
                self.persistent[key] = create()
        return self.persistent[key]


class TrainStep:
    """One ordered training step built from tf1norm transforms (see the module doc).

    Attributes:
      optimizer: the optimizer given to ``make_train_step``.
      transforms: the chain (projections recorded later are added per call).
      global_step: int64 step counter, created on the first call.
      persistent: the variables transforms created, by transform.
      apply_update: the function stage 3 calls with the gradients; default
        None, the optimizer's ``apply_gradients`` (the Keras route sets it).
    """

    def __init__(self, optimizer, transforms):
        self.optimizer = optimizer
        self.transforms = transforms
        self.global_step = None
        self.persistent = {}
        self.apply_update = None

    def __call__(self, loss_fn, variables=None, restore_on_skip=()):
        """Compute ``loss_fn()`` under a tape and take one step; return the loss.

        Args:
          loss_fn: callable with no arguments returning a scalar float loss.
          variables: the variables to train, or a callable returning them,
            called after ``loss_fn`` (a Keras layer builds its variables on
            its first call); default every trainable variable the loss read.
          restore_on_skip: variables the forward pass writes (batch-norm
            moving statistics, spectral-norm ``u``: e.g.
            ``model.non_trainable_variables``), or a callable returning them;
            read before ``loss_fn`` and written back when ``skip_nonfinite``
            skips the step.

        Returns:
          The loss tensor (value before the update).

        Raises:
          TypeError: ``loss_fn`` is not callable, or its loss is not floating.
          ValueError: no variable gets a gradient, or the loss is not a scalar
            (an unknown rank is checked when the step runs).
        """
        if not callable(loss_fn):
            raise TypeError(
                f"TrainStep: `loss_fn` must be a callable returning the loss; got "
                f"{loss_fn!r}. E.g. step(lambda: loss(model(x), y))."
            )
        restore = self.snapshot(restore_on_skip() if callable(restore_on_skip) else restore_on_skip)
        with tf.GradientTape() as tape:
            loss = _checks.scalar_loss(loss_fn(), "TrainStep", "loss_fn()")
        if variables is None:
            variables = [v for v in tape.watched_variables() if v.trainable]
        variables = list(variables() if callable(variables) else variables)
        self.apply_gradients(zip(tape.gradient(loss, variables), variables), loss, restore)
        return loss

    def snapshot(self, variables):
        """The values of ``variables`` now, for ``apply_gradients(restore=)``.

        [] without a skip.
        """
        if not any(t.handles_nonfinite for t in self.transforms):
            return []
        return skipping.snapshot(variables)

    def apply_gradients(self, grads_and_vars, loss=None, restore=()):
        """Stages 2-5 for gradients computed elsewhere (a Keras ``train_step``).

        ``loss`` (optional) is what ``skip_nonfinite`` also checks; ``restore``
        (from ``snapshot``) is written back when it skips the step.
        Returns a bool tensor: True when the update was applied.
        """
        pairs = [(g, v) for g, v in grads_and_vars]
        if not any(g is not None for g, _ in pairs):
            names = [v.name for _, v in pairs]
            raise ValueError(
                f"TrainStep: no gradient flows from the loss to any of the "
                f"variables {names}. Check `variables` and the loss."
            )
        originals = {_tf_variable(v).ref(): v for _, v in pairs}
        pairs = _all_reduced([(g, _tf_variable(v)) for g, v in pairs])
        self.build([originals[v.ref()] for g, v in pairs if g is not None])
        context = TF2StepContext(
            self.optimizer,
            self.global_step,
            [v for _, v in pairs],
            self.persistent,
            _record_graph(),
            loss,
        )
        chain = self.transforms + _automatic_projections(self.transforms, context.graph)
        for transform in chain:
            pairs = pre_applied(transform, pairs, context, "make_train_step")
        applied = skipping.conditional_update(
            context,
            pairs,
            lambda final: self._update(final, originals, chain, context),
            restore,
            _replicas(several=False),
            lambda: self._written(context.variables),
        )
        if tf.executing_eagerly():
            registry.clear_step_records()  # the next forward pass records afresh
        return applied

    def build(self, variables):
        """Create the step counter and the optimizer's slots for ``variables`` now.

        The first step does it by itself (outside any function, so the update
        may sit in a ``tf.cond`` or an XLA cluster); call it yourself to
        restore a checkpoint before the first step.
        """
        with tf.init_scope():
            if self.global_step is None:
                self.global_step = tf.Variable(
                    0, dtype=tf.int64, trainable=False, name="global_step"
                )
            if isinstance(self.optimizer, v1.train.Optimizer):
                self.optimizer._create_slots([_tf_variable(v) for v in variables])
            elif not getattr(self.optimizer, "built", getattr(self.optimizer, "_built", False)):
                self.optimizer.build(list(variables))

    def _written(self, variables):
        """Every variable the update writes: trained, the optimizer's, the step counter."""
        optimizer_variables = self.optimizer.variables
        if callable(optimizer_variables):  # tf.compat.v1.train: a method
            optimizer_variables = optimizer_variables()
        return list(variables) + list(optimizer_variables) + [self.global_step]

    def _update(self, pairs, originals, chain, context):
        apply_update = self.apply_update or self.optimizer.apply_gradients
        v1_optimizer = isinstance(self.optimizer, v1.train.Optimizer)
        constrained = {
            v.ref()
            for v in context.variables
            if getattr(originals[v.ref()], "constraint", None) is not None
        }
        for transform in _before_update(chain):
            transform.post_apply([v for v in context.variables if v.ref() in constrained], context)
        apply_update(
            [
                (g, v if v1_optimizer else originals[v.ref()])
                for g, v in _shares(pairs)
                if g is not None
            ]
        )
        for transform in chain:
            variables = context.variables
            if transform in _before_update(chain):
                variables = [v for v in variables if v.ref() not in constrained]
            if transform.post_apply_per_variable:
                for variable in variables:
                    transform.post_apply([variable], context)
            else:
                transform.post_apply(variables, context)
        _constrain_last(
            [originals[v.ref()] for g, v in pairs if g is not None], chain, v1_optimizer
        )
        self.global_step.assign_add(1)

    def __repr__(self):
        return f"TrainStep({type(self.optimizer).__name__}, {self.transforms!r})"


def make_train_step(optimizer, transforms=()):
    """A TF2 training step running ``transforms`` in ``create_train_op``'s order.

    Args:
      optimizer: a Keras 3, tf-keras or ``tf.compat.v1.train`` optimizer.
      transforms: iterable of tf1norm transforms (the same objects
        ``create_train_op`` takes).

    Returns:
      A :class:`TrainStep`: ``step(loss_fn, variables=None)`` takes one step
      and returns the loss; ``step.apply_gradients(grads_and_vars)`` takes it
      from precomputed gradients. Both may be called eagerly or inside a
      ``tf.function`` (with ``jit_compile=True`` when the optimizer allows).

    Raises:
      TypeError: ``optimizer`` has no ``apply_gradients``, a transform is
        not a ``Transform``, or it is ``sgd_decay_step`` (TF1 only).

    Example::

        step = tf1norm.make_train_step(keras.optimizers.Adam(1e-3),
                                       [tf1norm.clip_by_global_norm(5.0),
                                        tf1norm.add_decoupled_weight_decay(1e-2)])

        @tf.function(jit_compile=True)
        def train(x, y):
            return step(lambda: loss_fn(model(x), y), lambda: model.trainable_variables)
    """
    if not callable(
        getattr(_checks.not_a_class(optimizer, "make_train_step"), "apply_gradients", None)
    ):
        raise TypeError(
            f"make_train_step: `optimizer` must have apply_gradients (a Keras or "
            f"tf.compat.v1.train optimizer); got {optimizer!r}."
        )
    transforms = _graph_checks.instance_list(
        transforms, Transform, "make_train_step", "transforms", "tf1norm.clip_by_norm(5.0)"
    )
    for transform in transforms:
        if type(transform).__name__ == "_SgdDecayStep":
            raise TypeError(
                "make_train_step: sgd_decay_step reads a graph collection of "
                "penalty tensors, which TF2 does not keep; use "
                "add_decoupled_weight_decay(rate, scale_by_learning_rate=False) "
                "(θ ← θ − rate·θ_old, the same step for an L2 penalty) or "
                "add_l2_to_gradients."
            )
    return TrainStep(optimizer, transforms)


def _tf_variable(variable):
    """The ``tf.Variable`` behind a Keras 3 variable (the transforms need ``ref()``)."""
    if isinstance(variable, tf.Variable):
        return variable
    inner = getattr(variable, "value", None)
    if isinstance(inner, tf.Variable):
        return inner
    raise TypeError(
        f"TrainStep: cannot train {variable!r}; expected a tf.Variable or a Keras "
        "variable of the TensorFlow backend."
    )


def _replicas(several=True):
    """The replica context when the step runs in ``strategy.run``, else None.

    ``several``: only when there are several replicas in sync (a
    ParameterServerStrategy worker's step is its own single replica, but
    its optimizer still synchronizes, so it cannot sit in a ``tf.cond``).
    """
    replica = tf.distribute.get_replica_context()
    if replica is None or not tf.distribute.has_strategy():
        return None
    if several and replica.num_replicas_in_sync == 1:
        return None
    return replica


def _all_reduced(pairs):
    """Under a tf.distribute strategy, each replica's gradients summed over the replicas.

    Every optimizer (Keras 3, tf-keras, ``tf.compat.v1.train``) sums the
    replicas' gradients itself; summing here first lets every transform see
    the gradient a single device would (so ``clip_by_global_norm`` clips the
    global gradient) and take the same decision on every replica.
    """
    replica = _replicas()
    present = [i for i, (g, _) in enumerate(pairs) if g is not None]
    if replica is None or not present:
        return pairs
    summed = replica.all_reduce(tf.distribute.ReduceOp.SUM, [pairs[i][0] for i in present])
    pairs = list(pairs)
    for i, grad in zip(present, summed):
        pairs[i] = (grad, pairs[i][1])
    return pairs


def _shares(pairs):
    """Each replica's share ``g / n`` of the summed gradients: the optimizer sums them back.

    Exact for a power-of-two replica count; otherwise within float round-off.
    """
    replica = _replicas()
    if replica is None:
        return pairs
    n = replica.num_replicas_in_sync
    return map_gradients(pairs, lambda g: g / tf.cast(n, g.dtype))


def _before_update(chain):
    """The transforms whose write may precede the update (decoupled decay: ``θ − c·θ_old``)."""
    return [t for t in chain if getattr(t, "subtracts_before_update", False)]


def _constrain_last(variables, chain, v1_optimizer):
    """Each variable's Keras ``constraint`` again, as the step's last write of it.

    Keras optimizers apply ``variable.constraint`` right after their update;
    decoupled decay of a constrained variable runs before the update (see
    ``_before_update``), but another transform's write after it would leave
    the variable off its constraint set. A ``tf.compat.v1.train`` optimizer
    applies the constraint of a ``tf.Variable`` but never sees a Keras 3
    variable's.
    """
    early = _before_update(chain)
    writes_after = any(_writes_variables(t) and t not in early for t in chain)
    for variable in variables:
        constraint = getattr(variable, "constraint", None)
        if constraint is None:
            continue
        if writes_after or (v1_optimizer and not isinstance(variable, tf.Variable)):
            variable.assign(constraint(variable))


def _writes_variables(transform):
    """True for a transform whose post_apply writes variables (recorded projections aside)."""
    return type(transform).post_apply is not Transform.post_apply and not isinstance(
        transform, _ProjectConstraints
    )


def _record_graph():
    """The graph projections are recorded for: the outermost default graph."""
    with tf.init_scope():
        return v1.get_default_graph()


def _automatic_projections(transforms, graph):
    handled = {t.collection for t in transforms if isinstance(t, _ProjectConstraints)}
    recorded = registry.recorded_collections(graph)
    return [project_constraints(c) for c in recorded if c not in handled]
