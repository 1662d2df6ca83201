"""Prove a TF2 port equal to its TF1 graph program, step by step; map TF1 names.

``compare_steps(build_tf1, build_tf2, batches)`` runs the TF1 graph version
and the TF2 version of one model side by side, each under its own
``tf.compat.v1.keras.utils.DeterministicRandomTestTool`` (so both draw the same
initial weights) with the TF1 side's op seeds replayed to the TF2 side's random
ops (so both draw the same dropout masks; ``migration_seeds``), and reports
after every step the largest *relative* difference of every variable,
optimizer slot, ``u``/``g`` and the global step:

    relative difference = max |a - b| / max(max |a|, max |b|)   (0 when both are 0)

``tf1_variable_map(variables, optimizer, step)`` names the TF2 variables as a
TF1 ``Saver`` names them (``dense/kernel``, ``dense/kernel/Adam``,
``beta1_power``, ``global_step``); the comparison and the checkpoint functions
``restore_tf1_checkpoint`` / ``convert_checkpoint`` (from
``tf1norm.tf2.migration_checkpoints``, also ``tf1norm convert-checkpoint``) use it.
"""

import math
import warnings

import numpy as np

from tf1norm._src.compat import tf, v1
from tf1norm.tf2.migration_checkpoints import convert_checkpoint  # noqa: F401  (public here)
from tf1norm.tf2.migration_checkpoints import restore_tf1_checkpoint  # noqa: F401
from tf1norm.tf2 import migration_seeds
from tf1norm.training.transforms import variable_name

# Keras Adam slot lists and the name TF1's AdamOptimizer gives the same slot.
_KERAS_ADAM_SLOTS = (("_momentums", "Adam"), ("_velocities", "Adam_1"))


def tf1_variable_map(variables, optimizer=None, step=None, name_fn=None):
    """``{TF1 checkpoint name: TF2 variable}`` for a model trained by a TF2 step.

    Args:
      variables: the model's variables (trainable or not: moving statistics,
        ``u``, ``g``), tf or Keras 3 variables.
      optimizer: a ``tf.compat.v1.train`` optimizer (every slot and non-slot
        variable is named as TF1 names it) or a Keras Adam (``m``/``v`` become
        ``<var>/Adam``/``<var>/Adam_1``); None: no optimizer variables.
      step: a ``tf1norm.TrainStep``; its counter is named ``global_step``.
      name_fn: maps a TF2 variable to its TF1 name; default the variable's
        name without ``:0`` (the names ``track_tf1_style_variables`` keeps).

    Returns:
      A dict in a stable order: model variables, slots, non-slot variables,
      ``global_step``.

    Raises:
      TypeError: ``optimizer`` is a Keras optimizer other than Adam.
    """
    name_fn = name_fn or _default_name
    names = {}
    for variable in variables:
        names[name_fn(variable)] = variable
    if optimizer is not None:
        names.update(_optimizer_names(optimizer, list(variables), name_fn))
    if step is not None and step.global_step is not None:
        names["global_step"] = step.global_step
    return names


def _default_name(variable):
    inner = getattr(variable, "value", variable)
    return variable_name(inner if isinstance(inner, tf.Variable) else variable)


def _optimizer_names(optimizer, variables, name_fn):
    if isinstance(optimizer, v1.train.Optimizer):
        return _v1_optimizer_names(optimizer, variables, name_fn)
    if type(optimizer).__name__ != "Adam":
        raise TypeError(
            f"tf1_variable_map: Keras optimizer {type(optimizer).__name__} has no "
            "known TF1 slot names (Keras Adam has); use a tf.compat.v1.train "
            "optimizer in the TF2 step for a name-for-name port."
        )
    names = {}
    for variable in variables:
        index = _keras_slot_index(optimizer, variable)
        if index is None:
            continue
        for attribute, suffix in _KERAS_ADAM_SLOTS:
            names[f"{name_fn(variable)}/{suffix}"] = getattr(optimizer, attribute)[index]
    return names


def _keras_slot_index(optimizer, variable):
    """Index of ``variable``'s slots in a Keras 3 or tf-keras optimizer, or None."""
    if hasattr(optimizer, "_get_variable_index"):  # Keras 3
        try:
            return optimizer._get_variable_index(variable)
        except KeyError:
            return None
    return optimizer._index_dict.get(optimizer._var_key(variable))  # tf-keras


def _v1_optimizer_names(optimizer, variables, name_fn):
    names = {}
    for variable in variables:
        own = variable_name(variable)
        for slot_name in optimizer.get_slot_names():
            slot = optimizer.get_slot(variable, slot_name)
            if slot is not None:
                suffix = variable_name(slot)[len(own) + 1 :]
                names[f"{name_fn(variable)}/{suffix}"] = slot
    for slot in sorted(optimizer._non_slot_dict.values(), key=variable_name):
        names[variable_name(slot)] = slot
    return names


def relative_difference(a, b):
    """``max|a - b| / max(max|a|, max|b|)``, 0 when both are all zeros (float64)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return math.inf
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    return 0.0 if scale == 0.0 else float(np.max(np.abs(a - b), initial=0.0)) / scale


class StepComparison:
    """What ``compare_steps`` found.

    Attributes:
      per_step: the largest relative difference over all compared variables,
        after each step.
      per_variable: ``{TF1 name: relative difference after the last step}``.
      worst_per_step: ``[(TF1 name, difference)]``: the variable behind each
        ``per_step`` entry.
      only_tf1: TF1 variables the TF2 map does not name (not compared).
      only_tf2: names in the TF2 map with no TF1 variable (not compared).
      tf1_values, tf2_values: ``{name: NumPy value}`` of each side after the
        last step (e.g. to evaluate the TF1 model's final weights).
      random_mismatches: why the two sides could not draw the same random
        numbers (empty when they could; see ``random_ops_match``).
    """

    def __init__(self):
        self.per_step, self.worst_per_step, self.per_variable = [], [], {}
        self.only_tf1, self.only_tf2 = [], []
        self.tf1_values, self.tf2_values = {}, {}
        self.random_mismatches = []

    @property
    def random_ops_match(self):
        """True when every random op of the TF2 step drew TF1's random numbers."""
        return not self.random_mismatches

    @property
    def max_difference(self):
        """Largest relative difference over every step and variable."""
        return max(self.per_step, default=0.0)

    def record(self, tf1_values, tf2_values):
        """Add one step: ``{name: value}`` from both sides."""
        self.tf1_values, self.tf2_values = tf1_values, tf2_values
        common = [n for n in tf1_values if n in tf2_values]
        self.only_tf1 = sorted(set(tf1_values) - set(tf2_values))
        self.only_tf2 = sorted(set(tf2_values) - set(tf1_values))
        self.per_variable = {n: relative_difference(tf1_values[n], tf2_values[n]) for n in common}
        worst = max(self.per_variable.items(), key=lambda item: item[1], default=("", 0.0))
        self.worst_per_step.append(worst)
        self.per_step.append(worst[1])

    def __str__(self):
        lines = [
            f"step {i + 1:3d}: max relative difference {d:.3g} ({name})"
            for i, (name, d) in enumerate(self.worst_per_step)
        ]
        if self.only_tf1:
            lines.append(f"not compared (TF1 only): {', '.join(self.only_tf1)}")
        if self.only_tf2:
            lines.append(f"not compared (TF2 only): {', '.join(self.only_tf2)}")
        lines += [f"random ops do not match: {reason}" for reason in self.random_mismatches]
        return "\n".join(lines)


def compare_steps(build_tf1, build_tf2, batches, steps=10, mode="num_random_ops"):
    """Run ``steps`` steps of a TF1 graph program and of its TF2 port; compare every variable.

    Both sides run under ``DeterministicRandomTestTool(mode=mode)``, so the
    same model code draws the same initial weights on both, and the op seeds
    the TF1 side hands out are replayed to the TF2 side's random ops in the
    same order (``migration_seeds.ReplayedSeeds``), so dropout
    (``tf.nn.dropout``, ``tf.compat.v1.layers.dropout``, tf-keras ``Dropout``)
    draws the same masks on both, step after step, also when ``tf.function``
    traces the step twice. Random ops that take no op seed (stateless ops,
    Keras 3 ``keras.layers.Dropout``) cannot be matched: the report's
    ``random_ops_match`` is then False, ``str(report)`` says why, and a
    ``UserWarning`` is issued, since the differences then include different
    random draws.

    Args:
      build_tf1: ``build_tf1(inputs) -> train_op``, called in a fresh
        ``tf.Graph`` with one placeholder per array of a batch; ``train_op``
        (e.g. from ``tf1norm.create_train_op``) performs one step per run.
      build_tf2: ``build_tf2() -> (step_fn, variable_map)``: ``step_fn(*batch)``
        performs one step (eager or a ``tf.function``); ``variable_map`` is
        ``{TF1 name: TF2 variable}`` (``tf1_variable_map``) or a callable
        returning it, called after each step (slots are created lazily).
      batches: sequence of tuples of NumPy arrays; step ``i`` uses
        ``batches[i % len(batches)]``.
      steps: number of steps (>= 1).
      mode: ``DeterministicRandomTestTool`` mode: ``"num_random_ops"`` (the
        n-th random op gets op seed n) or ``"constant"`` (every op seed 0).

    Returns:
      A :class:`StepComparison` (``str()`` of it is a per-step report).

    Raises:
      ValueError: ``steps`` < 1, ``batches`` is empty, or ``mode`` is not one
        of the two modes.

    Example::

        report = tf1norm.migration.compare_steps(build_tf1, build_tf2, batches, steps=10)
        print(report)
        assert report.random_ops_match and report.max_difference <= 1e-6
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"compare_steps: `steps` must be an integer >= 1; got {steps!r}.")
    seeds = migration_seeds.ReplayedSeeds(mode)
    batches = [tuple(np.asarray(a) for a in batch) for batch in batches]
    if not batches:
        raise ValueError("compare_steps: `batches` is empty; pass at least one tuple of arrays.")
    tf1_values = _run_tf1(build_tf1, batches, steps, seeds)
    comparison = StepComparison()
    for step_values in _run_tf2(build_tf2, batches, steps, seeds):
        comparison.record(tf1_values[len(comparison.per_step)], step_values)
    comparison.random_mismatches = seeds.mismatches
    if comparison.random_mismatches:
        warnings.warn(_random_warning(comparison.random_mismatches), UserWarning, stacklevel=2)
    return comparison


def _random_warning(reasons):
    return (
        "compare_steps: the TF1 and TF2 sides cannot draw the same random numbers, so "
        "the reported differences include different random draws: " + "; ".join(reasons) + "."
    )


def _run_tf1(build_tf1, batches, steps, seeds):
    """``[{name: value}]`` after each step of the graph program."""
    with tf.Graph().as_default(), seeds.record():
        inputs = [
            v1.placeholder(a.dtype, a.shape, name=f"input_{i}") for i, a in enumerate(batches[0])
        ]
        train_op = build_tf1(inputs)
        variables = {variable_name(v): v for v in v1.global_variables()}
        values = []
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for i in range(steps):
                sess.run(train_op, dict(zip(inputs, batches[i % len(batches)])))
                values.append(sess.run(variables))
    return values


def _run_tf2(build_tf2, batches, steps, seeds):
    """Yield ``{name: value}`` after each TF2 step."""
    with seeds.replay():
        step_fn, variable_map = build_tf2()
        for i in range(steps):
            seeds.begin_step()
            step_fn(*[tf.constant(a) for a in batches[i % len(batches)]])
            named = variable_map() if callable(variable_map) else variable_map
            yield {name: np.asarray(_read(v)) for name, v in named.items()}


def _read(variable):
    value = variable.numpy() if hasattr(variable, "numpy") else variable
    return value
