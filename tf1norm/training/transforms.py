"""Composable training-step transforms.

Every training-time feature is one small object with two optional stages:

* ``pre_apply(grads_and_vars, context) -> grads_and_vars`` runs on the
  gradients before the optimizer (clipping, multipliers, noise). A transform
  that needs the *pre-update* weights reads them here and makes the returned
  gradients wait for those reads, so the optimizer cannot overwrite the
  weights first.
* ``post_apply(variables, context) -> [ops]`` builds ops that act on the
  variables *after* the optimizer update: ``create_train_op`` builds them
  under ``tf.control_dependencies`` on the previous stage, so they read the
  new values.

``create_train_op`` runs every ``pre_apply`` in chain order, then
``apply_gradients``, then every ``post_apply`` in chain order, each stage
after the previous one. Transforms keep per-build state in ``context.state``,
so one transform object can serve several graphs.
"""

import contextlib
import math
import numbers

import numpy as np

from tf1norm._src import checks as _checks
from tf1norm.graph import keys
from tf1norm.graph import registry
from tf1norm._src.compat import tf, v1


class StepContext:
    """What transforms can read while one training step is being built.

    Attributes:
      graph: the graph the train op is built in (inside a ``tf.cond`` branch
        the default graph is the branch's function graph, not this one).
      optimizer: the ``tf.compat.v1.train.Optimizer``.
      global_step: the global step variable, or None.
      variables: the variables being trained.
      state: a dict transforms use to pass tensors from pre_apply to post_apply.
      apply_conditions: ``(condition, on_skip)`` pairs; when any condition is
        False the update and every post_apply stage are skipped, every
        variable the step wrote before the decision is restored, and the
        ``on_skip()`` ops run instead.
      gradient_checks: functions ``fn(grads_and_vars) -> bool tensor`` called
        on the gradients the optimizer applies (after every pre_apply); False
        skips the step like a False apply condition.
      loss: the loss tensor, or None (``SyncReplicasOptimizer``'s update).
    """

    def __init__(self, optimizer, global_step, variables, loss=None):
        self.graph = v1.get_default_graph()
        self.optimizer = optimizer
        self.global_step = global_step
        self.variables = list(variables)
        self.loss = loss
        self.state = {}
        self.apply_conditions = []
        self.gradient_checks = []
        self.last_ops = {}  # variable ref -> its latest op of the variable stage

    def make_variable(self, key, create):
        """``create()`` a variable a transform keeps: per build here, once per step in TF2."""
        del key
        return create()

    @property
    def learning_rate(self):
        """The optimizer's learning rate tensor (follows its schedule)."""
        return optimizer_learning_rate(self.optimizer)

    def done(self, variables):
        """Ops after which ``variables`` (those trained) hold this step's values so far.

        For a variable-stage op that reads other variables than its own.
        """
        return [self.last_ops[v.ref()] for v in variables if v.ref() in self.last_ops]

    def add_apply_condition(self, condition, on_skip):
        """Skip the update unless ``condition``; ``on_skip()`` builds the else-ops."""
        self.apply_conditions.append((condition, on_skip))

    def add_gradient_check(self, fn):
        """Skip the update unless ``fn(final grads_and_vars)`` (a bool tensor) is True."""
        self.gradient_checks.append(fn)


def optimizer_learning_rate(optimizer, fn="StepContext.learning_rate"):
    """The learning rate a ``tf.compat.v1.train`` optimizer uses, as a tensor.

    Looks through wrappers (``SyncReplicasOptimizer``, ``CrossShardOptimizer``)
    via their ``_opt`` attribute; calls the rate if it is a callable.

    Raises:
      ValueError: the optimizer keeps its learning rate somewhere unknown
        (the message names ``fn``, the transform that needs the rate).
    """
    if not isinstance(optimizer, v1.train.Optimizer) and hasattr(optimizer, "learning_rate"):
        return tf.convert_to_tensor(optimizer.learning_rate)  # Keras: follows its schedule
    inner = optimizer
    while not _has_rate(inner) and getattr(inner, "_opt", None) is not None:
        inner = inner._opt
    for attribute in ("_learning_rate", "_lr"):
        rate = getattr(inner, attribute, None)
        if rate is not None:
            rate = rate() if callable(rate) else rate
            return tf.convert_to_tensor(rate)
    raise ValueError(
        f"{fn}: cannot find the learning rate of the optimizer (no "
        f"_learning_rate or _lr attribute); got {type(optimizer).__name__}. "
        f"Pass it to {fn} explicitly, e.g. learning_rate=0.001."
    )


def pre_applied(transform, grads_and_vars, context, fn):
    """``transform.pre_apply(...)`` as a list of ``(gradient, variable)`` pairs, or TypeError."""
    result = transform.pre_apply(grads_and_vars, context)
    if not isinstance(result, (str, bytes, tf.Tensor, tf.Operation)) and hasattr(
        result, "__iter__"
    ):
        result = list(result)
        if all(isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in result):
            return result
    raise TypeError(
        f"{fn}: `transforms` holds {transform!r}, whose pre_apply must return the "
        f"list of (gradient, variable) pairs; got {result!r:.100}. Return "
        "grads_and_vars (changed or not) from pre_apply."
    )


def post_applied(transform, variables, context):
    """``transform.post_apply(...)`` as a list of ops (None: none), or TypeError."""
    ops = transform.post_apply(variables, context)
    if ops is None:
        return []
    if isinstance(ops, (tf.Operation, tf.Tensor)) or not hasattr(ops, "__iter__"):
        raise TypeError(
            f"create_train_op: `transforms` holds {transform!r}, whose post_apply "
            f"must return a list of ops; got {ops!r:.100}. Return [op], or [] for "
            "none."
        )
    return list(ops)


def _has_rate(optimizer):
    return any(getattr(optimizer, a, None) is not None for a in ("_learning_rate", "_lr"))


def map_gradients(grads_and_vars, fn):
    """Apply ``fn`` to every gradient: dense tensors, and IndexedSlices values only.

    ``None`` gradients pass through unchanged.
    """
    return [(_map_one(grad, fn), var) for grad, var in grads_and_vars]


def _map_one(grad, fn):
    if grad is None:
        return None
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(fn(grad.values), grad.indices, grad.dense_shape)
    return fn(grad)


def gradients_after(dependencies, grads_and_vars):
    """The same gradients, made to wait for ``dependencies`` (identity ops)."""
    if not dependencies:
        return list(grads_and_vars)
    with tf.control_dependencies(dependencies):
        return map_gradients(grads_and_vars, tf.identity)


class Transform:
    """Base class: both stages default to doing nothing.

    Attributes:
      handles_nonfinite: True for transforms that deal with NaN/Inf themselves;
        ``create_train_op`` then skips its ``check_numerics`` on the loss.
      post_apply_per_variable: True (default) when ``post_apply`` acts on each
        variable independently: ``create_train_op`` then calls it once per
        trained variable with ``[variable]``, after that variable's update. Set
        False for a stage that needs all variables at once; it is then called
        once, after every update and previous stage.
    """

    handles_nonfinite = False
    post_apply_per_variable = True

    def pre_apply(self, grads_and_vars, context):
        """Gradient stage: return the (possibly new) ``grads_and_vars``."""
        del context
        return grads_and_vars

    def post_apply(self, variables, context):
        """Variable stage, built after the update: return a list of ops."""
        del variables, context
        return []

    def __repr__(self):
        return f"{type(self).__name__}()"


class _MapGradients(Transform):
    """``fn`` on every gradient, after the run-time ``assertions()`` (if any) pass."""

    def __init__(self, name, fn, assertions=None):
        self.name, self.fn, self.assertions = name, fn, assertions

    def pre_apply(self, grads_and_vars, context):
        with tf.name_scope(self.name):
            checks = self.assertions() if self.assertions else []
            with tf.control_dependencies(checks):
                return map_gradients(grads_and_vars, self.fn)

    def __repr__(self):
        return f"{self.name}(...)"


def _clip_bound(value, fn, arg):
    """A finite number or a scalar float tensor (tf-slim accepts tensors, e.g. schedules)."""
    if isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{fn}: `{arg}` must be finite; got {value!r}. Pass e.g. 1.0.")
        return float(value)
    tensor = _checks.float_tensor(value, fn, arg)
    if tensor.shape.rank not in (None, 0):
        raise ValueError(
            f"{fn}: `{arg}` must be a scalar; got shape {tensor.shape}. Pass one "
            "bound for every gradient."
        )
    return tensor


def _static(value):
    return value if isinstance(value, float) else tf.get_static_value(value)


def _run_time_check(condition_fn, message, *values):
    """Assertion ops for bounds known only at run time (built in the train graph)."""
    if all(_static(v) is not None for v in values):
        return None
    return lambda: [
        tf.debugging.Assert(
            condition_fn(*[tf.cast(v, tf.float32) for v in values]), [message, *values]
        )
    ]


def clip_by_value(clip_value_min, clip_value_max):
    """Clip every gradient element to ``[clip_value_min, clip_value_max]`` (seed 002).

    The bounds are numbers or scalar float tensors (a schedule, a placeholder);
    a tensor bound is checked at run time.

    Raises:
      ValueError: ``clip_value_min >= clip_value_max``.
    """
    fn = "clip_by_value"
    low = _clip_bound(clip_value_min, fn, "clip_value_min")
    high = _clip_bound(clip_value_max, fn, "clip_value_max")
    if _static(low) is not None and _static(high) is not None and not _static(low) < _static(high):
        raise ValueError(
            f"clip_by_value: `clip_value_min` must be < `clip_value_max`; got "
            f"{clip_value_min!r} and {clip_value_max!r}. E.g. (-1.0, 1.0)."
        )
    check = _run_time_check(
        tf.less,
        "clip_by_value: clip_value_min must be < clip_value_max; got (min, max):",
        low,
        high,
    )
    return _MapGradients(
        fn, lambda g: tf.clip_by_value(g, tf.cast(low, g.dtype), tf.cast(high, g.dtype)), check
    )


def _positive_bound(value, fn, arg):
    """``_checks.positive_scalar`` plus the run-time check for an unknown tensor."""
    value = _checks.positive_scalar(value, fn, arg)
    check = _run_time_check(
        lambda v: tf.greater(v, 0.0), f"{fn}: {arg} must be > 0 (and finite); got", value
    )
    return value, check


def clip_by_norm(clip_norm):
    """Rescale each gradient tensor whose L2 norm (whole tensor) exceeds ``clip_norm``.

    For IndexedSlices the norm is taken over the values only. ``clip_norm`` is
    a number or a scalar float tensor (checked > 0 at run time).
    """
    clip_norm, check = _positive_bound(clip_norm, "clip_by_norm", "clip_norm")
    return _MapGradients(
        "clip_by_norm", lambda g: tf.clip_by_norm(g, tf.cast(clip_norm, g.dtype)), check
    )


# context.state key: (global norm, clipped gradient values) of clip_by_global_norm with a
# number: the default finiteness check (``finite_check``) then tests the norm alone
FINITE_WITH_NORM = "tf1norm.finite_with_norm"


class _ClipByGlobalNorm(Transform):
    def __init__(self, clip_norm, check):
        self.clip_norm, self.check = clip_norm, check
        self.global_norm = None

    def pre_apply(self, grads_and_vars, context):
        grads, variables = zip(*grads_and_vars) if grads_and_vars else ((), ())
        with (
            tf.name_scope("clip_by_global_norm"),
            tf.control_dependencies(self.check() if self.check else []),
        ):
            clipped, norm = tf.clip_by_global_norm(list(grads), self.clip_norm)
        self.global_norm = context.state[self] = norm
        if isinstance(self.clip_norm, float):  # a fed clip_norm could be inf: no shortcut
            values = [c.values if isinstance(c, tf.IndexedSlices) else c for c in clipped]
            context.state[FINITE_WITH_NORM] = (norm, [v for v in values if v is not None])
        if not tf.executing_eagerly():  # eager: the global graph would grow every step
            v1.add_to_collection(keys.GRADIENT_GLOBAL_NORM, norm)
        return list(zip(clipped, variables))

    def __repr__(self):
        return f"clip_by_global_norm({self.clip_norm!r})"


def clip_by_global_norm(clip_norm):
    """Scale all gradients together so their joint L2 norm is at most ``clip_norm``.

    The pre-clip norm is exposed as ``transform.global_norm`` (the tensor of
    the most recent build) and added to the collection
    ``tf1norm.keys.GRADIENT_GLOBAL_NORM`` for summaries. IndexedSlices count
    their values only. ``clip_norm`` is a number or a scalar float tensor
    (checked > 0 at run time).
    """
    return _ClipByGlobalNorm(*_positive_bound(clip_norm, "clip_by_global_norm", "clip_norm"))


def variable_name(variable):
    """``variable.op.name``, also for an eager variable (which has no ``op``)."""
    try:
        return variable.op.name
    except AttributeError:
        return variable.name.split(":")[0]


def colocated_with(variable):
    """``colocate_with(variable.op)`` in a graph; nothing in eager mode or a tf.function."""
    if tf.inside_function() or tf.executing_eagerly():
        return contextlib.nullcontext()
    return variable.graph.colocate_with(variable.op)


class _GradientNoise(Transform):
    def __init__(self, scale, decay, seed):
        self.scale, self.decay, self.seed = scale, decay, seed

    def pre_apply(self, grads_and_vars, context):
        with tf.name_scope("add_gradient_noise"):
            stddev = tf.constant(self.scale, tf.float32)
            if self.decay:
                if context.global_step is None:
                    raise ValueError(
                        "add_gradient_noise: `decay` needs a global step; pass "
                        "global_step= to create_train_op or set decay=0."
                    )
                step = tf.cast(context.global_step, tf.float32)
                stddev = stddev * tf.pow(1.0 + step, -self.decay / 2.0)
            return map_gradients(
                grads_and_vars,
                lambda g: (
                    g
                    + tf.random.normal(
                        tf.shape(g), stddev=tf.cast(stddev, g.dtype), dtype=g.dtype, seed=self.seed
                    )
                ),
            )


def add_gradient_noise(scale, decay=0.0, seed=None):
    """Add Gaussian noise with stddev ``scale * (1 + t) ** (-decay / 2)`` to gradients.

    ``t`` is the global step; ``decay=0.55`` is the annealing of Neelakantan
    et al., "Adding gradient noise improves learning for very deep networks"
    (2015), whose variance is ``scale² / (1 + t) ** decay``.
    """
    scale = _checks.positive_number(scale, "add_gradient_noise", "scale")
    decay = _checks.positive_number(decay, "add_gradient_noise", "decay", allow_zero=True)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(
            f"add_gradient_noise: `seed` must be None or an int; got {seed!r}. E.g. seed=0."
        )
    return _GradientNoise(scale, decay, seed)


class _ProjectConstraints(Transform):
    def __init__(self, collection):
        self.collection = collection

    def post_apply(self, variables, context):
        by_variable = context.state.get(self)
        if by_variable is None:  # indexed once per step build: linear in the model
            by_variable = context.state[self] = {}
            recorded = registry.get_projections(self.collection, context.graph)
            for projection in registry.group_partitions(recorded):
                if getattr(projection, "adopted", False):
                    continue  # the variable's constraint: the optimizer applies it
                for variable in projection.variables:
                    by_variable.setdefault(variable.ref(), []).append(projection)
        return [
            op
            for v in variables
            for p in by_variable.get(v.ref(), ())
            for op in self._build(p, context)
        ]

    def _build(self, projection, context):
        """One variable's projection ops; a partitioned one once, after every part's update."""
        if len(projection.variables) == 1:
            return [projection.build()]
        key = (self, projection.key)
        if key not in context.state:
            with tf.control_dependencies(context.done(projection.variables)):
                context.state[key] = [tf.group(*projection.build())]
        return context.state[key]

    def __repr__(self):
        return f"project_constraints({self.collection!r})"


def project_constraints(collection=keys.MAX_NORM):
    """Rebuild, after the update, every projection a factory recorded in ``collection``.

    ``max_norm_regularizer`` records ``(variable, projection)``; this builds a
    fresh assign op per record of a trained variable, under the control
    dependencies of that variable's update, so it reads the updated weights.
    Recorded variables that the train op does not train are left alone. ``create_train_op`` adds
    this transform by itself at the end of the chain for every recorded
    collection that the chain does not already project.
    """
    return _ProjectConstraints(_checks.string(collection, "project_constraints", "collection"))
