"""Constraint objects: callables ``w -> projected w`` with a Keras-style config.

Use them wherever TensorFlow takes a constraint:

* ``tf.compat.v1.get_variable(..., constraint=tf1norm.MaxNorm(2.0))``: every
  ``tf.compat.v1.train`` optimizer assigns ``constraint(var)`` to the variable
  after its update (dense gradients only; TensorFlow refuses constraints on
  sparse updates).
* ``tf.compat.v1.layers.dense(..., kernel_constraint=tf1norm.MaxNorm(2.0))``
  and tf-keras / Keras 3 layers' ``kernel_constraint=``.

Each class calls the pure function of the same name in
``tf1norm._math.projections`` or ``tf1norm._math.range_projections``; arguments
are validated when the object is built, the axes again when it is applied (the
rank is known only then).
"""

import inspect

from tf1norm._src import axis_checks as _axis_checks
from tf1norm._src import checks as _checks
from tf1norm._src import graph_checks as _graph_checks
from tf1norm._src import eager
from tf1norm._math import projections
from tf1norm._math import range_projections


class _ConstraintRoot:
    """The base that ``keras_registration`` swaps for Keras 3's ``Constraint``.

    Keras 3 before 3.14 accepts only ``keras.constraints.Constraint``
    instances as a variable's ``constraint`` (later versions take any
    callable). When Keras 3 loads, ``Constraint``'s base becomes Keras's
    class, so every tf1norm constraint is one; CPython refuses to change the
    bases of a class whose only base is ``object``, hence this empty root.
    """


class Constraint(_ConstraintRoot):
    """Base class: ``__call__(w)`` returns the projected tensor.

    Once Keras 3 is imported, also a subclass of ``keras.constraints.Constraint``.
    """

    def __call__(self, w):
        raise NotImplementedError

    def get_config(self):
        """A dict of constructor arguments (Keras serialization protocol)."""
        return {}

    @classmethod
    def from_config(cls, config):
        """Rebuild the constraint from ``get_config()`` output.

        Raises:
          TypeError: ``config`` is not a dict, or has a key the constructor does not take.
        """
        known = list(inspect.signature(cls).parameters)
        if not isinstance(config, dict):
            raise TypeError(
                f"{cls.__name__}.from_config: `config` must be a dict of "
                f"constructor arguments; got {config!r:.100}. Pass the dict "
                "get_config() returned."
            )
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise TypeError(
                f"{cls.__name__}.from_config: `config` has unknown keys {unknown}; "
                f"got {config!r:.200}. {cls.__name__} takes {known or 'no keys'}: "
                "pass the dict its get_config() returned."
            )
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, repr(self)))


def _config_axes(axes):
    return list(axes) if isinstance(axes, tuple) else axes


class MaxNorm(Constraint):
    """Cap each output unit's L2 norm at ``threshold`` (see ``tf1norm.max_norm``).

    Unlike Keras ``MaxNorm``, weights under the threshold are left bit-exact.
    """

    def __init__(self, threshold=2.0, axes=None):
        self.threshold = _checks.positive_number(threshold, "MaxNorm", "threshold")
        self.axes = _axis_checks.axes_argument(axes, "MaxNorm")

    def __call__(self, w):
        return projections.max_norm_assignment(w, self.threshold, self.axes)

    def get_config(self):
        return {"threshold": self.threshold, "axes": _config_axes(self.axes)}


class UnitNorm(Constraint):
    """Scale each output unit to unit L2 norm (see ``tf1norm.unit_norm``)."""

    def __init__(self, axes=None, epsilon=1e-12):
        self.axes = _axis_checks.axes_argument(axes, "UnitNorm")
        self.epsilon = _checks.positive_number(epsilon, "UnitNorm", "epsilon")

    def __call__(self, w):
        return range_projections.unit_norm(w, self.axes, self.epsilon)

    def get_config(self):
        return {"axes": _config_axes(self.axes), "epsilon": self.epsilon}


class MinMaxNorm(Constraint):
    """Keep each unit's L2 norm in ``[min_value, max_value]`` (``tf1norm.min_max_norm``)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axes=None):
        self.min_value, self.max_value, self.rate = range_projections.check_min_max(
            min_value, max_value, rate, fn="MinMaxNorm"
        )
        self.axes = _axis_checks.axes_argument(axes, "MinMaxNorm")

    def __call__(self, w):
        return range_projections.min_max_norm(
            w, self.min_value, self.max_value, self.rate, self.axes
        )

    def get_config(self):
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axes": _config_axes(self.axes),
        }


class NonNeg(Constraint):
    """Zero negative weights (see ``tf1norm.non_neg``)."""

    def __call__(self, w):
        return range_projections.non_neg(w)


class SpectralNorm(Constraint):
    """Cheap spectral projection ``W ← W / max(1, σ(W))`` (a constraint, not a reparameterization).

    σ is estimated by ``power_iterations`` power-iteration steps from a
    persistent vector ``<weight>/sn_u_state`` that carries over between steps,
    so one iteration per step suffices for slowly changing weights (the
    estimate lags the true σ by the power iteration's error, so σ can exceed 1
    slightly until it has converged). Unlike
    ``spectral_norm_getter`` no gradient flows through σ; this is what Keras 3
    ``SpectralNormalization`` does. Weights must be variables (the optimizer
    calls the constraint with the variable after its update). σ and the
    division are computed in float32 for the half types and on ``W / max|W|``
    for huge or tiny entries (``tf1norm._math.reparam.spectral_projection``), so a
    σ beyond the dtype's range (float16 σ > 65504) still projects, never to 0.
    """

    def __init__(self, power_iterations=1):
        self.power_iterations = _checks.positive_int(
            power_iterations, "SpectralNorm", "power_iterations"
        )

    def __call__(self, w):
        from tf1norm._src.compat import tf
        from tf1norm.graph.getters import power_iteration_vector
        from tf1norm._math.reparam import spectral_projection

        variable = _graph_checks.variable(eager.tf_variable(w), "SpectralNorm")  # Keras 3 too
        u = power_iteration_vector(variable)
        projected, _, u_new = spectral_projection(variable, u.read_value(), self.power_iterations)
        with tf.control_dependencies([u.assign(u_new, read_value=False)]):
            return tf.identity(projected)

    def get_config(self):
        return {"power_iterations": self.power_iterations}


# Saved with a Keras model as "tf1norm>MaxNorm" etc.: tf1norm.graph.keras_registration
# registers these with every Keras once this module has loaded (an import hook).
KERAS_SERIALIZABLE = (MaxNorm, UnitNorm, MinMaxNorm, NonNeg, SpectralNorm)
