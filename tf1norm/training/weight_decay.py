"""Weight decay, three flavours, as transforms.

=========================================  ==========================================
flavour                                    update for one weight θ (gradient g of data loss)
=========================================  ==========================================
L2 in the loss (``l2_regularizer(λ)``)     loss += λ·½‖θ‖²; the optimizer sees g + λθ
``add_l2_to_gradients({θ: λ})``            same, added to the gradient directly
``sgd_decay_step(collection, lr_decay)``   θ ← θ − lr_decay·∇R(θ_old) after the update
                                           (seed 003's secondary SGD step, deterministic)
``add_decoupled_weight_decay(λ)``          θ ← θ − lr·λ·θ_old  (PyTorch AdamW), or
                                           θ ← θ − λ·θ_old (``scale_by_learning_rate=False``,
                                           tf.contrib AdamWOptimizer)
=========================================  ==========================================

``θ_old`` is the value before this step's optimizer update. The decoupled forms
read it in the gradient stage and subtract in the variable stage; because the
``tf.compat.v1.train`` optimizers' updates (GD, Momentum, Adam, Adagrad,
RMSProp) do not depend on θ itself, this equals decaying first and then
updating, which is what ``torch.optim.AdamW`` does. (FTRL and the proximal
optimizers do depend on θ; there the decay is still applied to θ_old, after
the update.)
"""

import re

from tf1norm._src import checks as _checks
from tf1norm._src import graph_checks as _graph_checks
from tf1norm.graph import keys
from tf1norm.graph import registry
from tf1norm._src.compat import tf, v1
from tf1norm.training.transforms import Transform, gradients_after, optimizer_learning_rate
from tf1norm.training.transforms import colocated_with, variable_name


class _DeltaTransform(Transform):
    """Computes ``delta`` per variable before the update; subtracts it after.

    ``subtracts_before_update``: the TF2 step subtracts it *before* the update
    of a variable with a Keras ``constraint`` (the same value, see the module
    doc), so the optimizer's constraint stays the variable's last write.
    """

    subtracts_before_update = True

    def deltas(self, grads_and_vars, context):
        raise NotImplementedError

    def pre_apply(self, grads_and_vars, context):
        pairs = self.deltas(grads_and_vars, context)
        context.state[self] = pairs
        # Each variable's gradient waits for that variable's delta only, so the
        # update of v cannot overwrite θ_old before delta_v has read it, while
        # other variables' updates are not held back.
        delta_of = {v.ref(): d for v, d in pairs}
        return [
            (
                gradients_after([delta_of[v.ref()]], [(g, v)])[0][0]
                if v.ref() in delta_of and g is not None
                else g,
                v,
            )
            for g, v in grads_and_vars
        ]

    def post_apply(self, variables, context):
        wanted = {v.ref() for v in variables}
        ops = []
        for variable, delta in context.state.get(self, []):
            if variable.ref() in wanted:
                with colocated_with(variable):
                    ops.append(variable.assign_sub(delta, read_value=False))
        return ops


def _compile(patterns, fn):
    if isinstance(patterns, str):
        patterns = (patterns,)
    try:
        return [re.compile(p) for p in patterns]
    except (TypeError, re.error) as error:
        raise ValueError(
            f"{fn}: `exclude` must be regular expressions; got {patterns!r} "
            f"({error}). E.g. exclude=('bias', 'BatchNorm')."
        ) from error


class _DecoupledWeightDecay(_DeltaTransform):
    def __init__(self, rate, decay_var_list, exclude, scale_by_learning_rate, learning_rate):
        self.rate = rate
        self.decay_var_list = decay_var_list
        self.exclude = _compile(exclude, "add_decoupled_weight_decay")
        self.scale_by_learning_rate = scale_by_learning_rate
        self.learning_rate = learning_rate

    def _selected(self, grads_and_vars):
        trained = [v for g, v in grads_and_vars if g is not None]
        if self.decay_var_list is not None:
            wanted = {v.ref() for v in self.decay_var_list}
            trained = [v for v in trained if v.ref() in wanted]
        return [v for v in trained if not any(p.search(variable_name(v)) for p in self.exclude)]

    def _coefficient(self, context):
        if not self.scale_by_learning_rate:
            return tf.constant(self.rate, tf.float64)
        rate = self.learning_rate
        if rate is None:
            rate = optimizer_learning_rate(context.optimizer, "add_decoupled_weight_decay")
        return tf.cast(rate, tf.float64) * self.rate

    def deltas(self, grads_and_vars, context):
        with tf.name_scope("decoupled_weight_decay"):
            coefficient = self._coefficient(context)
            cast = {}  # one cast per dtype, not per variable (ops a step dispatches)
            pairs = []
            for v in self._selected(grads_and_vars):
                dtype = v.dtype.base_dtype
                if dtype not in cast:
                    cast[dtype] = tf.cast(coefficient, dtype)
                pairs.append((v, cast[dtype] * _read(v)))
            return pairs


def _read(variable):
    """The variable's value: one ``ReadVariableOp`` in a TF1 graph (``read_value`` adds an
    Identity per variable), ``read_value()`` eagerly, in a function and for other variables."""
    if tf.inside_function() or tf.executing_eagerly() or not hasattr(variable, "handle"):
        return variable.read_value()
    return registry.fresh_read(variable)


def add_decoupled_weight_decay(
    rate, decay_var_list=None, exclude=(), scale_by_learning_rate=True, learning_rate=None
):
    """Decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay Regularization").

    With ``scale_by_learning_rate=True`` (default): ``θ ← θ − lr·rate·θ_old``,
    PyTorch's ``AdamW`` rule, where ``lr`` is the optimizer's learning rate at
    this step (its schedule is followed). With ``False``: ``θ ← θ − rate·θ_old``,
    the tf.contrib ``AdamWOptimizer`` rule (its ``weight_decay`` is already
    multiplied by the schedule if you want one). ``θ_old`` is the value before
    this step's update, read in the gradient stage; see the module docstring.

    Args:
      rate: decay rate λ >= 0 (PyTorch's ``weight_decay``; 1e-2 is AdamW's default).
      decay_var_list: variables to decay; default every variable with a gradient.
      exclude: regular expressions; variables whose name matches any are not
        decayed (e.g. ``('bias', 'BatchNorm')``). Default: none, as in PyTorch.
      scale_by_learning_rate: see above.
      learning_rate: override the learning rate read from the optimizer.

    Returns:
      A transform for ``create_train_op``.
    """
    fn = "add_decoupled_weight_decay"
    rate = _checks.positive_number(rate, fn, "rate", allow_zero=True)
    if learning_rate is not None:
        learning_rate = _learning_rate(learning_rate, fn)
    decay_var_list = _graph_checks.variable_list(decay_var_list, fn, "decay_var_list")
    return _DecoupledWeightDecay(
        rate, decay_var_list, exclude, bool(scale_by_learning_rate), learning_rate
    )


def _hyperparameter(value, fn, arg):
    """A number > 0, or a scalar float tensor (float64 for exactness) checked at run time."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return _checks.positive_scalar(value, fn, arg)
    return _checks.positive_number(value, fn, arg)


def _beta(value, arg):
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return _checks.float_tensor(value, "adamw", arg)
    return _checks.fraction_below_one(
        value, "adamw", arg, "Adam's defaults are beta1=0.9, beta2=0.999."
    )


def _learning_rate(value, fn):
    """A number >= 0, or a scalar float tensor checked >= 0 at run time."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return _checks.positive_scalar(value, fn, "learning_rate")
    return _checks.positive_number(value, fn, "learning_rate", allow_zero=True)


class _SgdDecayStep(_DeltaTransform):
    def __init__(self, collection, learning_rate):
        self.collection, self.learning_rate = collection, learning_rate

    def deltas(self, grads_and_vars, context):
        losses = v1.get_collection(self.collection)
        if not losses:
            raise ValueError(
                f"sgd_decay_step: collection {self.collection!r} is empty. Build "
                "the layers with a regularizer (e.g. tf1norm.l2_regularizer) first."
            )
        variables = [v for g, v in grads_and_vars if g is not None]
        with tf.name_scope("sgd_decay_step"):
            grads = tf.gradients(tf.add_n(losses), variables)
            return [
                (v, tf.cast(self.learning_rate, v.dtype.base_dtype) * tf.convert_to_tensor(g))
                for v, g in zip(variables, grads)
                if g is not None
            ]


def sgd_decay_step(collection=keys.REGULARIZATION_LOSSES, learning_rate=1.0):
    """Seed 003's "secondary SGD optimizer" weight decay, made deterministic.

    After the main update, every trained variable θ that the losses in
    ``collection`` depend on moves by ``−learning_rate · ∂R/∂θ`` evaluated at
    θ_old, the weights *before* this step's update, every time. With
    ``l2_regularizer(wd)`` (R = wd·½‖θ‖²) and ``learning_rate=1`` that is the
    seed's ``w[t+1] = w[t] − lr·dw − wd·w[t]``. The seed itself built the
    SGD step under ``control_dependencies([train_op])``, which orders the
    update ops but not the reads inside the regularization gradient, so it
    read pre-update weights in some runs and post-update weights in others.

    Do not also add ``collection`` to the loss you train on, or the penalty is
    applied twice.
    """
    collection = _checks.string(collection, "sgd_decay_step", "collection")
    if isinstance(learning_rate, (tf.Tensor, tf.Variable)):
        learning_rate = _checks.positive_scalar(learning_rate, "sgd_decay_step", "learning_rate")
    else:
        learning_rate = _checks.positive_number(learning_rate, "sgd_decay_step", "learning_rate")
    return _SgdDecayStep(collection, learning_rate)


class _AddL2ToGradients(Transform):
    def __init__(self, rates):
        self.rates = rates

    def pre_apply(self, grads_and_vars, context):
        with tf.name_scope("add_l2_to_gradients"):
            return [
                (
                    g + tf.cast(self.rates[v.ref()], g.dtype) * v.read_value()
                    if g is not None and v.ref() in self.rates
                    else g,
                    v,
                )
                for g, v in grads_and_vars
            ]


def add_l2_to_gradients(rates):
    """L2-as-gradient: ``g ← g + λ_θ·θ`` for each variable in ``rates``.

    Equivalent to adding ``λ_θ·½‖θ‖²`` to the loss, without a loss tensor;
    per-variable λ makes it cuda-convnet's ``wc``. Dense gradients only.

    Args:
      rates: ``{tf.Variable: λ}`` with λ >= 0, as a dict or an iterable of
        ``(variable, λ)`` pairs.
    """
    checked = {}
    if isinstance(rates, (str, bytes)) or not hasattr(rates, "__iter__"):
        raise TypeError(
            f"add_l2_to_gradients: `rates` must be a dict {{tf.Variable: rate}}; "
            f"got {rates!r}. E.g. {{w: 1e-4}}."
        )
    for item in rates.items() if isinstance(rates, dict) else rates:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(
                f"add_l2_to_gradients: `rates` must hold (tf.Variable, rate) pairs; "
                f"got {item!r}. E.g. {{w: 1e-4}}."
            )
        variable, rate = item
        if not isinstance(variable, tf.Variable):
            raise TypeError(
                f"add_l2_to_gradients: `rates` keys must be tf.Variable; got "
                f"{variable!r}. Pass the variable itself, e.g. {{w: 1e-4}}."
            )
        checked[variable.ref()] = _checks.positive_number(
            rate, "add_l2_to_gradients", "rates", allow_zero=True
        )
    return _AddL2ToGradients(checked)


def adamw(learning_rate=1e-3, weight_decay=1e-2, beta1=0.9, beta2=0.999, epsilon=1e-8, exclude=()):
    """Preset: ``(AdamOptimizer, [add_decoupled_weight_decay])``, PyTorch's AdamW.

    Note TF1 Adam's ``epsilon`` is PyTorch's ε̂ (added to √v before bias
    correction); the two agree when ε is small relative to √v. TF1 optimizers
    convert Python-float hyperparameters to float32 tensors before casting them
    to the variable dtype (0.9 becomes 0.89999998); for float64 models that must
    match another framework closely, pass float64 tensors.

    Returns:
      ``(optimizer, transforms)``: pass the optimizer positionally and the list
      as ``transforms=`` (unpacking both positionally would put the list in
      ``global_step``).

    Example::

        optimizer, transforms = tf1norm.adamw(1e-3, weight_decay=1e-2, exclude=["bias"])
        train_op = tf1norm.create_train_op(loss, optimizer, transforms=transforms)
    """
    fn = "adamw"
    learning_rate = _learning_rate(learning_rate, fn)
    beta1, beta2 = _beta(beta1, "beta1"), _beta(beta2, "beta2")
    epsilon = _hyperparameter(epsilon, fn, "epsilon")
    _checks.positive_number(weight_decay, fn, "weight_decay", allow_zero=True)
    _compile(exclude, fn)
    optimizer = v1.train.AdamOptimizer(learning_rate, beta1, beta2, epsilon)
    return optimizer, [add_decoupled_weight_decay(weight_decay, exclude=exclude)]
