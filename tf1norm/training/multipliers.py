"""``multiply_gradients``: per-variable gradient factors (per-layer learning rates).

Keys are variables or names; a name is a full regular expression over
variable names (without ``:0``), as tf-slim's ``multiply_gradients`` takes
them, and a key that reaches no gradient raises when the step is built.
"""

import math
import numbers
import re

from tf1norm._src import checks as _checks
from tf1norm._src.compat import tf
from tf1norm.training.transforms import Transform, _map_one, variable_name


class _MultiplyGradients(Transform):
    def __init__(self, multipliers):
        self.multipliers = multipliers

    def pre_apply(self, grads_and_vars, context):
        factors = _resolve_multipliers(self.multipliers, grads_and_vars)
        with tf.name_scope("multiply_gradients"):
            return [
                (
                    _map_one(g, lambda t, f=factors.get(v.ref()): t * tf.cast(f, t.dtype))
                    if v.ref() in factors
                    else g,
                    v,
                )
                for g, v in grads_and_vars
            ]


def _resolve_multipliers(multipliers, grads_and_vars):
    """Factor per variable with a gradient; a key that reaches no gradient raises.

    tf-slim raises for a multiplier on a ``None`` gradient: so do we, for a key
    naming the variable exactly. A pattern that also matches variables
    without a gradient (frozen layers) applies to the others.
    """
    variables = [v for _, v in grads_and_vars]
    without_gradient = {v.ref() for g, v in grads_and_vars if g is None}
    factors = {}
    for key, factor in multipliers.items():
        matched = [v for v in variables if _matches(key, v)]
        if not matched:
            names = ", ".join(variable_name(v) for v in variables)
            raise ValueError(
                f"multiply_gradients: key {_key_name(key)!r} matches no trained "
                f"variable. Trained variables: {names}."
            )
        with_gradient = [v for v in matched if v.ref() not in without_gradient]
        if not with_gradient or (_is_exact(key) and len(with_gradient) < len(matched)):
            raise ValueError(
                f"multiply_gradients: key {_key_name(key)!r} names "
                f"{variable_name(matched[0])}, which gets no gradient from the "
                "loss (a multiplier of a None gradient). Remove the key, or train "
                "that variable."
            )
        for variable in with_gradient:
            factors[variable.ref()] = factor
    return factors


def _is_exact(key):
    """A variable, or a name without regular-expression syntax."""
    return not isinstance(key, str) or re.escape(key) == key


def _matches(key, variable):
    if isinstance(key, str):
        return re.fullmatch(key.removesuffix(":0"), variable_name(variable)) is not None
    return key is variable


def _key_name(key):
    return key if isinstance(key, str) else key.name


def multiply_gradients(multipliers):
    """Multiply chosen variables' gradients by a factor (per-layer learning rates).

    Args:
      multipliers: dict from a ``tf.Variable`` or a name to a factor (a number
        or scalar tensor). A name is matched against variable names (without
        ``:0``) as a full regular expression, so ``"conv1/weights"`` and
        ``"conv.*/biases"`` both work. A key that matches no trained variable
        raises at build time.
    """
    if not isinstance(multipliers, dict) or not multipliers:
        raise TypeError(
            f"multiply_gradients: `multipliers` must be a non-empty dict; got "
            f"{multipliers!r}. E.g. {{'conv1/weights': 0.1}}."
        )
    for key, factor in multipliers.items():
        if not isinstance(key, (str, tf.Variable)):
            raise TypeError(
                f"multiply_gradients: `multipliers` keys must be variables or names; "
                f"got {key!r}. E.g. {{'conv1/weights': 0.1}}."
            )
        if isinstance(key, str):
            _checks.regular_expression(key.removesuffix(":0"), "multiply_gradients", "multipliers")
        if not isinstance(factor, (numbers.Real, tf.Tensor, tf.Variable)) or isinstance(
            factor, bool
        ):
            raise TypeError(
                f"multiply_gradients: the factor of {_key_name(key)!r} must be a "
                f"number or a scalar tensor; got {factor!r}. E.g. 0.1."
            )
        if isinstance(factor, numbers.Real) and not math.isfinite(factor):
            raise ValueError(
                f"multiply_gradients: the factor of {_key_name(key)!r} must be "
                f"finite; got {factor!r}. A NaN/Inf factor turns every gradient "
                "of that variable into NaN/Inf."
            )
    return _MultiplyGradients(dict(multipliers))
