"""The Keras route: ``model.fit`` runs the tf1norm transform chain.

``attach_transforms(model, transforms)`` gives one Keras model (Keras 3 or
tf-keras) a ``train_step`` that is Keras's own, except that the optimizer
update becomes the whole chain of :func:`tf1norm.make_train_step`: every
``pre_apply``, the compiled optimizer's ``apply_gradients``, every
``post_apply`` (recorded projections included) and the step counter. Loss
tracking, metrics, loss scaling and distribution stay Keras's.

Under a ``tf.distribute`` strategy each replica traces ``train_step`` in its
own thread, so nothing is patched while tracing: ``make_train_function``
(called by ``fit`` outside any replica context) installs, once per optimizer,
an ``apply_gradients`` that runs the chain only in a thread that is tracing
the attached ``train_step`` and is the optimizer's own everywhere else.
"""

import contextlib
import threading

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
            steps["step"].apply_update = _routed(optimizer)
        return steps["step"]

    def make_train_function(*args, **kwargs):
        current_step()  # outside any replica context: the optimizer is routed here, once
        return keras_make_train_function(*args, **kwargs)

    def train_step(data):
        step = current_step()
        with _chain_active(step, step.snapshot(model.non_trainable_variables)):
            return keras_step(data)

    keras_make_train_function = model.make_train_function
    model.make_train_function = make_train_function
    model.train_step = train_step
    model.train_function = None  # rebuilt from the new train_step by the next fit
    return lambda: steps.get("step")


# The step whose chain ``optimizer.apply_gradients`` runs, per thread: each
# replica of a tf.distribute strategy traces train_step in its own thread.
_ACTIVE = threading.local()


@contextlib.contextmanager
def _chain_active(step, restore):
    """While this thread traces Keras's train_step, the routed optimizer runs ``step``'s chain.

    ``restore``: the snapshots a skipped step writes back (``TrainStep.snapshot``).
    """
    outer = getattr(_ACTIVE, "state", None)
    _ACTIVE.state = (step, restore)
    try:
        yield
    finally:
        _ACTIVE.state = outer


def _routed(optimizer):
    """Route ``optimizer.apply_gradients`` through the active chain (installed once).

    Returns the optimizer's own ``apply_gradients`` (the chain's stage 3).
    Outside ``_chain_active`` (a user's own loop) the optimizer is unchanged.
    """
    own = type(optimizer).apply_gradients.__get__(optimizer)
    if getattr(optimizer.apply_gradients, "_tf1norm_router", False):
        return own

    def apply_gradients(grads_and_vars, *args, **kwargs):
        step, restore = getattr(_ACTIVE, "state", None) or (None, ())
        if step is None or step.optimizer is not optimizer:
            return own(grads_and_vars, *args, **kwargs)
        return step.apply_gradients(list(grads_and_vars), restore=restore)  # a name: unused

    apply_gradients._tf1norm_router = True
    optimizer.apply_gradients = apply_gradients
    return own
