"""The Keras route: ``model.fit`` runs the tf1norm transform chain.

``attach_transforms(model, transforms)`` gives one Keras model (Keras 3 or
tf-keras) a ``train_step`` that is Keras's own, except that the optimizer
update becomes the whole chain of :func:`tf1norm.make_train_step`: every
``pre_apply``, the compiled optimizer's ``apply_gradients``, every
``post_apply`` (recorded projections included) and the step counter. Loss
tracking, metrics, loss scaling and distribution stay Keras's.
"""

import functools

from tf1norm._src import graph_checks as _graph_checks
from tf1norm.tf2.step import make_train_step
from tf1norm.training.transforms import Transform


def attach_transforms(model, transforms):
    """Make ``model.fit`` apply ``transforms`` around the compiled optimizer's update.

    Call it before or after ``compile`` (the optimizer is read when
    ``fit`` first traces its train function; recompiling with another
    optimizer starts a new step).

    Args:
      model: a Keras 3 or tf-keras ``Model``.
      transforms: tf1norm transforms, as for ``create_train_op``.

    Returns:
      A function returning the current ``tf1norm.TrainStep`` (None before
      the first ``fit``): its ``global_step`` counts the steps taken and its
      ``persistent`` dict holds e.g. the ``skipped_steps`` counter.

    Raises:
      TypeError: ``model`` has no ``train_step`` (not a Keras model), or a
        transform is not a ``Transform``.

    Example::

        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        tf1norm.attach_transforms(model, [tf1norm.clip_by_global_norm(1.0),
                                          tf1norm.add_decoupled_weight_decay(1e-2)])
        model.fit(x, y, epochs=2)
    """
    keras_step = getattr(model, "train_step", None)
    if not callable(keras_step):
        raise TypeError(
            f"attach_transforms: `model` must be a Keras Model (it has no "
            f"train_step); got {type(model).__name__}."
        )
    transforms = _graph_checks.instance_list(
        transforms, Transform, "attach_transforms", "transforms", "tf1norm.clip_by_norm(5.0)"
    )
    steps = {}

    def current_step():
        optimizer = model.optimizer
        if steps.get("optimizer") is not optimizer:
            steps["optimizer"] = optimizer
            steps["step"] = make_train_step(optimizer, transforms)
            steps["step"].apply_update = optimizer.apply_gradients  # the unpatched method
        return steps["step"]

    def train_step(data):
        step = current_step()
        with _optimizer_routed_to(step):
            return keras_step(data)

    model.train_step = train_step
    model.train_function = None  # rebuilt from the new train_step by the next fit
    return lambda: steps.get("step")


class _optimizer_routed_to:  # noqa: N801  (a context manager, used like a function)
    """While tracing Keras's train_step, ``optimizer.apply_gradients`` runs the chain."""

    def __init__(self, step):
        self.step = step

    def __enter__(self):
        optimizer = self.step.optimizer
        optimizer.apply_gradients = functools.partial(_apply_chain, self.step)

    def __exit__(self, *exc_info):
        del self.step.optimizer.apply_gradients  # back to the class's method


def _apply_chain(step, grads_and_vars, *args, **kwargs):
    del args, kwargs  # Keras passes only (grads_and_vars); tf-keras may add a name
    return step.apply_gradients(list(grads_and_vars))
