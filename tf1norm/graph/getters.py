"""Custom getters that reparameterize weights: weight norm and spectral norm.

Use them with ``tf.compat.v1.variable_scope(..., custom_getter=...)``; every
``get_variable`` below the scope (tf-slim layers, ``tf.compat.v1.layers``, your
own) whose name matches ``name_filter`` gets the reparameterized tensor instead
of the raw variable. Extra variables are named after the weight itself
(``<weight>/sn_u``, ``<weight>/wn_g``) and created through the same getter, so
``reuse=True``, ``AUTO_REUSE`` and several towers share them; nothing needs
renaming (seed 004's "variable already exists" cannot happen).
"""

import re

from tf1norm._src import checks as _checks
from tf1norm._math import norms as _norms
from tf1norm._src import eager
from tf1norm.graph import keys
from tf1norm.graph import registry
from tf1norm._src.compat import tf, v1
from tf1norm._math.reparam import spectral_norm, weight_norm_parts

DEFAULT_FILTER = r"(^|/)(kernel|weights|depthwise_weights|pointwise_weights)$"


def compile_filter(name_filter, fn):
    """``name_filter`` compiled, or ValueError naming ``fn``."""
    try:
        return re.compile(name_filter)
    except (TypeError, re.error) as error:
        raise ValueError(
            f"{fn}: `name_filter` must be a regular expression; got {name_filter!r} ({error})."
        ) from error


def _whole(variable):
    """``(tensor, trained variable, name)`` of a variable or a ``PartitionedVariable``.

    A partitioned weight is read as the concatenation of its parts; its
    post-update records hang on the last part (a variable the optimizer
    trains), and it is named by its full name, as ``Saver`` names it.
    """
    if isinstance(variable, tf.Variable):
        return variable, variable, eager.variable_name(variable)
    parts = list(variable)
    return variable.as_tensor(), parts[-1], variable.name


def _gain_initializer(variable):
    """``(initializer, shape)`` of ``g``: the unit norms of ``variable`` at its creation.

    A graph variable's ``initial_value`` (so ``g`` follows the initializer
    run); an eager variable already holds its initial value, read once, when
    ``g`` is created (under ``init_scope``, also while tracing a function).
    """
    if not eager.is_eager(variable):
        return _unit_norms(_initial_value(variable)), None

    def initializer(shape, dtype=None, partition_info=None):
        del shape, partition_info
        with tf.init_scope():
            return tf.cast(_unit_norms(tf.convert_to_tensor(variable)), dtype or variable.dtype)

    return initializer, [variable.shape[-1]]


def _initial_value(variable):
    if isinstance(variable, tf.Variable):
        return variable.initial_value
    axis = [i for i, n in enumerate(variable._get_partitions()) if n > 1] or [0]
    return tf.concat([p.initial_value for p in variable], axis[0])


def _wanted(pattern, name, variable, fn):
    if pattern.search(name) is not None and isinstance(variable, tf.Tensor):
        raise ValueError(
            f"{fn}: the weight {name!r} is already reparameterized by an enclosing "
            "weight_norm_getter or spectral_norm_getter (got the tensor "
            f"{variable.name!r}, not a variable). Nest at most one reparameterizing "
            "getter over a weight, as slim_scope does; use `name_filter` to choose "
            "the weights of each."
        )
    return (
        pattern.search(name) is not None
        and variable.shape.rank is not None
        and variable.shape.rank >= 2
    )


def _extra_variable(getter, name, kwargs, **overrides):
    """A helper variable through the same getter chain, without the weight's extras."""
    keep = {k: kwargs[k] for k in ("dtype", "use_resource", "caching_device") if k in kwargs}
    keep.update(overrides)
    return getter(name, **keep)


class PowerIterationRefresh(registry.Projection):
    """Post-update record: store the ``u`` the step's forward pass computed.

    The power iteration already ran in the training step's forward pass (on
    the weight before the update); assigning its result once per training
    step, inside the train op, costs a ``[1, out]`` copy and keeps evaluation
    runs from moving ``u``.
    """

    transient = True

    def __init__(self, variable, u, u_new):
        super().__init__(variable, None, "sn_u_refresh")
        self.u, self.u_new = u, u_new

    @property
    def key(self):
        return self.u.ref()

    @property
    def target(self):
        return self.u

    def build(self):
        return self.u.assign(self.u_new, read_value=False)


def spectral_norm_getter(
    power_iterations=1,
    name_filter=DEFAULT_FILTER,
    update="immediate",
    collection=keys.SPECTRAL_NORM,
    training=True,
):
    """Custom getter: matching weights become ``W / σ(W)`` (spectral normalization).

    For each matching weight of rank >= 2 (dense ``[in, out]``, conv kernels
    reshaped to ``[-1, out]``) one non-trainable variable ``<weight>/sn_u`` of
    shape ``[1, out]`` holds the power-iteration vector. Every forward pass
    runs ``power_iterations`` steps from the *stored* ``u`` and divides by the
    resulting σ, with the gradient through σ. When the stored ``u`` changes:

    * ``update="immediate"`` (seed 004, PyTorch's ``spectral_norm`` in
      ``train()`` mode): every run that computes the layer with ``training``
      true stores the refreshed ``u`` (several towers each store it);
    * ``update="collection"`` (Sonnet v1's explicit update op): only
      ``create_train_op`` stores it, once per step, after the update (a record
      in ``tf1norm.registry`` under ``collection``); other runs never do;
    * in TF2 (``u`` an eager variable: a ``track_tf1_style_variables`` layer
      called eagerly or in a ``tf.function``) both modes act like
      ``"collection"``: the forward pass assigns nothing and records the
      refresh under ``collection`` for the TF2 step, which stores it after
      the update (see ``tf1norm.registry``); after each step ``u`` equals
      what ``"immediate"`` would have stored in the graph;
    * ``training=False`` (PyTorch's ``eval()``): never. The layer still
      computes ``W / σ`` from the stored ``u``, so evaluating the same input
      twice gives the same output, and ``export_plain_checkpoint`` writes
      exactly that ``W / σ``.

    Args:
      power_iterations: int >= 1, iterations per forward pass.
      name_filter: regular expression selecting the weights.
      update: ``"immediate"`` or ``"collection"`` (see above).
      collection: registry collection of the ``"collection"`` mode's records.
      training: Python bool, or a scalar boolean tensor (e.g. a placeholder
        fed per run) choosing between storing and not storing ``u``.

    A zero weight has σ = 0; the layer then receives the zero weight itself
    (not NaN) with the identity gradient, and ``u`` is kept: a zero-initialized
    layer trains (its first step is a plain gradient step, see ``spectral_norm``).
    σ of each weight is added to the graph collection ``keys.SPECTRAL_NORM_SIGMA``.

    Raises:
      ValueError: bad ``power_iterations``, ``update``, ``name_filter`` or
        ``training``.
    """
    fn = "spectral_norm_getter"
    if update not in ("immediate", "collection"):
        raise ValueError(f"{fn}: `update` must be 'immediate' or 'collection'; got {update!r}.")
    power_iterations = _checks.positive_int(power_iterations, fn, "power_iterations")
    pattern = compile_filter(name_filter, fn)
    collection = _checks.string(collection, fn, "collection")
    training = _training_flag(training, fn)

    def custom_getter(getter, name, *args, **kwargs):
        variable = getter(name, *args, **kwargs)
        if not _wanted(pattern, name, variable, fn):
            return variable
        u = _extra_variable(
            getter,
            name + "/sn_u",
            kwargs,
            shape=[1, variable.shape[-1]],
            initializer=v1.random_normal_initializer(),
            trainable=False,
        )
        weight, trained, full_name = _whole(variable)
        normalized, sigma, u_new = spectral_norm(weight, u, power_iterations)
        if not tf.executing_eagerly():
            v1.add_to_collection(keys.SPECTRAL_NORM_SIGMA, sigma)
        registry.add_record(
            eager.record_key(u, transient=True),
            keys.SPECTRAL_NORM_WEIGHTS,
            u.ref(),
            SpectralNormRecord(variable, u, normalized, full_name),
        )
        if training is False:
            return normalized
        if training is not True:
            u_new = tf.where(training, u_new, tf.cast(u, u_new.dtype))
        if update == "collection" or eager.is_eager(u):  # TF2: the step stores u
            registry.register_projection(PowerIterationRefresh(trained, u, u_new), collection)
            return normalized
        with tf.control_dependencies([u.assign(u_new, read_value=False)]):
            return tf.identity(normalized)

    return custom_getter


def _training_flag(training, fn):
    """``training`` as True, False or a scalar boolean tensor; ValueError otherwise."""
    if isinstance(training, bool):
        return training
    if (
        isinstance(training, (tf.Tensor, tf.Variable))
        and training.dtype == tf.bool
        and training.shape.rank in (0, None)
    ):
        return training
    raise ValueError(
        f"{fn}: `training` must be a Python bool or a scalar boolean tensor "
        f"(e.g. tf.compat.v1.placeholder_with_default(True, [])); got "
        f"{training!r}."
    )


class SpectralNormRecord:
    """A spectrally normalized weight: ``w``, its ``u``, and ``w / σ`` from the stored ``u``.

    ``normalized`` does not store ``u`` when run: ``export_plain_checkpoint``
    fetches it.
    """

    def __init__(self, variable, u, normalized, name=None):
        self.variable, self.u, self.normalized = variable, u, normalized
        self.name = name or variable.op.name  # the checkpoint name of the weight


class WeightNormRecord:
    """A weight-normalized weight: direction ``v``, gains ``g``, and ``w`` as the layer sees it.

    ``v`` may be a ``PartitionedVariable``; ``direction`` is then the
    concatenation of its parts and ``name`` its full (checkpoint) name.
    ``plain`` is ``(w before the range guard, scalar bool: w equals it)``
    (``reparam.weight_norm_parts``), or None.
    """

    def __init__(self, v, g, w, direction=None, name=None, epsilon=1e-12):
        self.v, self.g, self.w = v, g, w
        self.direction = v if direction is None else direction
        self.name = name or v.op.name
        self.epsilon = epsilon
        self.plain = None


def _unit_norms(value):
    """``‖v‖`` per output unit in ``value``'s dtype, overflow/underflow-safe.

    See ``tf1norm._math.norms``.
    """
    axes = tuple(range(value.shape.rank - 1))
    return tf.cast(_norms.safe_norm(value, axes, keepdims=False), value.dtype)


def weight_norm_getter(name_filter=DEFAULT_FILTER, epsilon=1e-12):
    """Custom getter: matching weights become ``g · v / ‖v‖`` (weight normalization).

    The layer's own variable (e.g. ``dense/kernel``) holds the direction ``v``;
    a trainable ``<weight>/wn_g`` of shape ``[out]`` is created and initialised
    to ``‖v‖`` per output unit (norm over every axis but the last), so at
    initialization the layer computes exactly the function it would without
    weight normalization. Gradients flow to ``g`` and ``v``. Pairs are recorded
    (``keys.WEIGHT_NORM``) for ``weight_norm_data_init`` and the checkpoint
    helpers.
    """
    pattern = compile_filter(name_filter, "weight_norm_getter")
    epsilon = _checks.positive_number(epsilon, "weight_norm_getter", "epsilon")

    def custom_getter(getter, name, *args, **kwargs):
        variable = getter(name, *args, **kwargs)
        if not _wanted(pattern, name, variable, "weight_norm_getter"):
            return variable
        initial, shape = _gain_initializer(variable)
        extra = {} if shape is None else {"shape": shape}
        g = _extra_variable(
            getter,
            name + "/wn_g",
            kwargs,
            initializer=initial,
            trainable=kwargs.get("trainable", True),
            **extra,
        )
        direction, _, full_name = _whole(variable)
        normalized, plain, plain_ok = weight_norm_parts(direction, g, epsilon=epsilon)
        record = WeightNormRecord(variable, g, normalized, direction, full_name, epsilon)
        record.plain = (plain, plain_ok)
        registry.add_record(eager.record_key(g, transient=True), keys.WEIGHT_NORM, g.ref(), record)
        return normalized

    return custom_getter


def power_iteration_vector(variable):
    """The persistent ``u`` ([1, out]) of ``variable`` for constraints and regularizers.

    Created once per graph (outside any ``tf.cond`` branch, via ``init_scope``)
    as a non-trainable resource variable named ``<weight>/sn_u_state``; for an
    eager variable (TF2, Keras) once per variable, kept on the variable.
    """

    def build():
        with tf.init_scope(), v1.get_default_graph().name_scope(""):  # absolute name
            return v1.Variable(
                v1.random_normal_initializer(seed=0)(
                    [1, variable.shape[-1]], variable.dtype.base_dtype
                ),
                trainable=False,
                use_resource=True,
                name=eager.variable_name(variable) + "/sn_u_state",
            )

    if eager.is_eager(variable):
        return eager.attached(variable, "sn_u_state", build)
    return registry.cached(variable.graph, ("sn_u_state", variable.ref()), build)


def spectral_sigma(variable, power_iterations=1, defer=False):
    """``(σ, refresh_op)`` for a variable, one power iteration from its persistent ``u``.

    With ``defer=True`` and an eager variable (a loss computed in the forward
    pass of a TF2 model) nothing is assigned: the refresh is recorded under
    ``keys.SPECTRAL_NORM`` for the TF2 step and ``refresh_op`` is a no-op.
    """
    u = power_iteration_vector(variable)
    _, sigma, u_new = spectral_norm(variable, u.read_value(), power_iterations)
    if defer and eager.is_eager(variable):
        registry.register_projection(PowerIterationRefresh(variable, u, u_new), keys.SPECTRAL_NORM)
        return sigma, tf.no_op()
    return sigma, u.assign(u_new, read_value=False)
