"""Session hooks for legacy loops run by ``MonitoredTrainingSession``."""

from tf1norm._src import checks as _checks
from tf1norm.graph import keys
from tf1norm._src.compat import v1


class ConstraintHook(v1.train.SessionRunHook):
    """Run a collection's projection ops after every training step.

    ``after_run`` is called once the step's ``sess.run`` has finished, so the
    ops read the updated weights: the hook version of seed 002's second
    ``sess.run(tf.get_collection("max_norm"))``. Not needed with
    ``create_train_op``, whose train op already projects after its update.

    Args:
      collection: collection whose ops to run (default ``"max_norm"``).

    Raises:
      ValueError: (in ``begin``) the collection is empty when the session is
        created, i.e. nothing would ever be projected.

    Example::

        with tf.compat.v1.train.MonitoredTrainingSession(hooks=[
                tf1norm.ConstraintHook(),
                tf.compat.v1.train.StopAtStepHook(last_step=100)]) as sess:
            while not sess.should_stop():
                sess.run(train_op)
    """

    def __init__(self, collection=keys.MAX_NORM):
        self.collection = _checks.string(collection, "ConstraintHook", "collection")
        self._ops = []

    def begin(self):
        self._ops = v1.get_collection(self.collection)
        if not self._ops:
            raise ValueError(
                f"ConstraintHook: collection {self.collection!r} is empty. Build "
                "the layers with tf1norm.max_norm_regularizer (or the factory "
                "that fills this collection) before creating the session."
            )

    def after_run(self, run_context, run_values):
        del run_values
        run_context.session.run(self._ops)
