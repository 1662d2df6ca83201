"""Per-layer hyperparameters from a cuda-convnet layer-params file.

A cuda-convnet layer-params file has one INI section per layer::

    [conv1]
    epsW=0.001
    epsB=0.002
    momW=0.9
    momB=0.9
    wc=0.004

cuda-convnet's update for a weight matrix ``W`` (and likewise for biases with
epsB/momB and no decay) is::

    inc ← momW·inc − epsW·(∂L/∂W) − wc·epsW·W
    W   ← W + inc

where ``∂L/∂W`` is the *batch average*: cuda-convnet sums the per-example
gradients and divides by ``numCases``. Pass the batch-mean loss (e.g.
``tf.reduce_mean`` of the per-example cross-entropy) and tf1norm uses its
gradient as is. The decay term uses W before the update.

As a chain this is ``add_l2_to_gradients({W: wc})`` (g ← g + wc·W) followed by
a momentum optimizer with a per-variable learning rate and momentum
(``PerVariableMomentumOptimizer``): with ``accum ← mom·accum + g`` and
``W ← W − eps·accum``, ``inc = −eps·accum`` reproduces the update exactly.
"""

import configparser
import os

from tf1norm._src import checks as _checks
from tf1norm._src import graph_checks as _graph_checks
from tf1norm._src.compat import tf, v1
from tf1norm.training.weight_decay import add_l2_to_gradients

_KEYS = ("epsW", "epsB", "momW", "momB", "wc")


class PerVariableMomentumOptimizer(v1.train.Optimizer):
    """Momentum with a learning rate and momentum per variable.

    ``accum ← momentum_v·accum + g``; ``var ← var − lr_v·accum`` (TF's
    ``MomentumOptimizer`` rule, one slot ``"momentum"`` per variable).

    Args:
      hyperparameters: ``{variable: (learning_rate, momentum)}``, as a dict or
        an iterable of ``(variable, (learning_rate, momentum))`` pairs.
      use_locking, name: as for TF optimizers.
    """

    def __init__(self, hyperparameters, use_locking=False, name="PerVariableMomentum"):
        super().__init__(use_locking, name)
        self._hyper = dict(_checked_hyperparameters(hyperparameters))

    def _hyper_for(self, var, dtype):
        if var.ref() not in self._hyper:
            raise ValueError(
                f"PerVariableMomentumOptimizer: no hyperparameters for "
                f"{var.op.name}. Add it to the layer-params file or exclude it "
                "from the trained variables."
            )
        lr, momentum = self._hyper[var.ref()]
        return tf.constant(lr, dtype), tf.constant(momentum, dtype)

    def _create_slots(self, var_list):
        for var in var_list:
            self._zeros_slot(var, "momentum", self._name)

    def _resource_apply_dense(self, grad, var):
        lr, momentum = self._hyper_for(var, grad.dtype)
        return tf.raw_ops.ResourceApplyMomentum(
            var=var.handle,
            accum=self.get_slot(var, "momentum").handle,
            lr=lr,
            grad=grad,
            momentum=momentum,
            use_locking=self._use_locking,
        )

    def _apply_dense(self, grad, var):
        lr, momentum = self._hyper_for(var, grad.dtype)
        return tf.raw_ops.ApplyMomentum(
            var=var,
            accum=self.get_slot(var, "momentum"),
            lr=lr,
            grad=grad,
            momentum=momentum,
            use_locking=self._use_locking,
        ).op

    def _resource_apply_sparse(self, grad, var, indices):
        lr, momentum = self._hyper_for(var, grad.dtype)
        return tf.raw_ops.ResourceSparseApplyMomentum(
            var=var.handle,
            accum=self.get_slot(var, "momentum").handle,
            lr=lr,
            grad=grad,
            indices=indices,
            momentum=momentum,
            use_locking=self._use_locking,
        )


def _checked_hyperparameters(hyperparameters):
    """``(variable.ref(), (lr, momentum))`` pairs, each checked, or TypeError/ValueError."""
    fn = "PerVariableMomentumOptimizer"
    if isinstance(hyperparameters, (str, bytes)) or not hasattr(hyperparameters, "__iter__"):
        raise TypeError(
            f"{fn}: `hyperparameters` must be a dict {{variable: (learning_rate, "
            f"momentum)}}; got {hyperparameters!r}."
        )
    pairs = hyperparameters.items() if isinstance(hyperparameters, dict) else hyperparameters
    for item in pairs:
        variable, values = _pair(item, fn)
        yield variable.ref(), _learning_rate_and_momentum(values, variable.op.name, fn)


def _pair(item, fn):
    if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], tf.Variable)):
        raise TypeError(
            f"{fn}: `hyperparameters` must map tf.Variable to (learning_rate, "
            f"momentum); got the entry {item!r}. E.g. {{w: (0.01, 0.9)}}."
        )
    return item


def _learning_rate_and_momentum(values, name, fn):
    if not (isinstance(values, (tuple, list)) and len(values) == 2):
        raise TypeError(
            f"{fn}: `hyperparameters` of {name} must be a pair (learning_rate, "
            f"momentum); got {values!r}. E.g. (0.01, 0.9)."
        )
    learning_rate = _checks.positive_number(
        values[0], f"{fn} ({name})", "learning_rate", allow_zero=True
    )
    return learning_rate, checked_momentum(values[1], f"{fn} ({name})", "momentum")


def checked_momentum(value, fn, arg):
    """A momentum in [0, 1); at 1 or above the step grows without bound."""
    return _checks.fraction_below_one(
        value,
        fn,
        arg,
        "A momentum >= 1 makes the accumulated step grow without bound; cuda-convnet uses 0.9.",
    )


class LayerParams:
    """Parsed layer-params: the optimizer and transforms that implement them.

    Attributes:
      sections: ``{layer: {key: float}}`` as parsed.
      assignments: ``{variable name: (layer, 'W' or 'B')}``.
      optimizer: a ``PerVariableMomentumOptimizer``.
      transforms: ``[add_l2_to_gradients({W: wc})]``.
    """

    def __init__(self, sections, variables):
        self.sections = sections
        variables = _graph_checks.variable_list(variables, "LayerParams", "variables") or []
        hyper, decay, self.assignments = [], [], {}
        for variable in variables:
            layer, kind = _layer_of(variable, sections)
            params = sections[layer]
            hyper.append((variable, (params["eps" + kind], params["mom" + kind])))
            if kind == "W" and params["wc"]:
                decay.append((variable, params["wc"]))
            self.assignments[variable.op.name] = (layer, kind)
        _check_every_section_used(sections, self.assignments)
        self.optimizer = PerVariableMomentumOptimizer(hyper)
        self.transforms = [add_l2_to_gradients(decay)] if decay else []

    def create_train_op(self, loss, transforms=(), **kwargs):
        """``tf1norm.create_train_op`` with this optimizer; ``transforms`` run first."""
        from tf1norm.training.train import create_train_op

        return create_train_op(
            loss, self.optimizer, transforms=list(transforms) + self.transforms, **kwargs
        )


def _layer_of(variable, sections):
    scopes = variable.op.name.split("/")[:-1]
    layers = [s for s in scopes if s in sections]
    if len(layers) != 1:
        problem = "is in no" if not layers else f"is in several ({layers})"
        raise ValueError(
            f"layer_params: variable {variable.op.name} {problem} layer section "
            f"of the file (sections: {sorted(sections)}). Name a section after "
            "the variable's scope, or pass `variables=` to train fewer variables."
        )
    return layers[0], ("B" if variable.shape.rank == 1 else "W")


def _check_every_section_used(sections, assignments):
    used = {layer for layer, _ in assignments.values()}
    unused = sorted(set(sections) - used)
    if unused:
        raise ValueError(
            f"layer_params: sections {unused} match no trained variable (variables: "
            f"{sorted(assignments)}). Check the section names against the scopes."
        )


def _read_sections(path_or_dict):
    if isinstance(path_or_dict, dict):
        raw = {layer: _section_dict(layer, values) for layer, values in path_or_dict.items()}
    elif isinstance(path_or_dict, (str, os.PathLike)):
        raw = _read_file(os.fspath(path_or_dict))
    else:
        raise TypeError(
            f"layer_params: `path_or_dict` must be a path or a dict; got "
            f"{type(path_or_dict).__name__}."
        )
    return {
        layer: _parse_section(layer, values)
        for layer, values in raw.items()
        if any(k in values for k in _KEYS)
    }


def _section_dict(layer, values):
    if not isinstance(values, dict):
        raise TypeError(
            f"layer_params: `path_or_dict` section {layer!r} must be a dict of "
            f"keys {list(_KEYS)}; got {values!r}. E.g. {{'fc': {{'epsW': 0.01, "
            "'epsB': 0.02, 'momW': 0.9, 'momB': 0.9, 'wc': 0.0}}."
        )
    return dict(values)


def _read_file(path):
    """``{section: {key: text}}`` of a layer-params file; errors name the file."""
    fix = "Pass a path to a cuda-convnet layer-params file (INI text) or a dict of sections."
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ValueError(f"layer_params: `path_or_dict`: no file at {path!r}. {fix}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(
            f"layer_params: `path_or_dict`: cannot read {path!r} "
            f"({type(error).__name__}: {error}). {fix}"
        ) from None
    parser = configparser.ConfigParser()
    parser.optionxform = str  # cuda-convnet keys are case-sensitive: epsW, momB
    try:
        parser.read_string(text, source=path)
    except configparser.Error as error:
        problem = " ".join(str(error).split())
        raise ValueError(
            f"layer_params: `path_or_dict`: {path!r} is not a valid layer-params "
            f"file: {problem}. Each layer needs a [section] header and key=value "
            "lines."
        ) from None
    return {section: dict(parser[section]) for section in parser.sections()}


def _parse_section(layer, values):
    missing = [k for k in _KEYS if k not in values]
    if missing:
        raise ValueError(
            f"layer_params: section [{layer}] lacks {missing}; a weight layer "
            f"needs all of {list(_KEYS)} (e.g. wc=0 for no decay)."
        )
    parsed = {}
    for key in _KEYS:
        try:
            parsed[key] = float(values[key])
        except ValueError:
            raise ValueError(
                f"layer_params: [{layer}] {key}={values[key]!r} is not one number; "
                "layers with several inputs are not supported."
            ) from None
        _checks.positive_number(parsed[key], f"layer_params [{layer}]", key, allow_zero=True)
    for key in ("momW", "momB"):
        checked_momentum(parsed[key], f"layer_params [{layer}]", key)
    for key in ("epsW", "epsB", "wc"):
        _check_step_size(parsed[key], layer, key)
    return parsed


_LARGEST_STEP = 1e3  # eps or wc above this diverges at once; cuda-convnet uses ~1e-3


def _check_step_size(value, layer, key):
    if value > _LARGEST_STEP:
        raise ValueError(
            f"layer_params [{layer}]: `{key}` must be <= {_LARGEST_STEP:g}; got "
            f"{value!r}. A step this large overflows the weights on the first "
            "update (cuda-convnet files use values near 1e-3)."
        )


def layer_params(path_or_dict, variables=None):
    """Per-layer learning rate, momentum and weight decay à la cuda-convnet.

    Sections are matched to variables by scope: ``[conv1]`` covers every
    trained variable with a ``conv1`` component in its name; rank-1 variables
    use epsB/momB, the others epsW/momW/wc. Sections with none of the five keys
    (pooling, response-normalization layers) are ignored.

    Args:
      path_or_dict: path to a layer-params file, or ``{layer: {key: value}}``.
      variables: variables to train; default the trainable variables.

    Returns:
      A ``LayerParams``; ``.create_train_op(loss)`` builds the train op.

    Raises:
      ValueError: a variable in no or several sections, a section that matches
        nothing, a missing or negative key, an unreadable file.

    Example::

        params = tf1norm.layer_params("layers.cfg")
        train_op = params.create_train_op(tf.reduce_mean(xent))
    """
    sections = _read_sections(path_or_dict)
    variables = (
        v1.trainable_variables()
        if variables is None
        else _graph_checks.variable_list(variables, "layer_params", "variables")
    )
    return LayerParams(sections, variables)
