"""``create_train_op``'s default gradient check: one decision for all gradients.

A NaN or Inf in any gradient the optimizer would apply raises
``InvalidArgumentError`` naming the (first) variable it belongs to, before any
variable is written. The common, finite step pays one reduction per gradient
and a handful of ops for the whole step:

* with ``clip_by_global_norm`` (a number ``clip_norm``) producing the final
  gradients, nothing per gradient: the clipped gradients are all finite
  exactly when the global norm is (TensorFlow sets every clipped gradient to
  NaN when the norm is not finite, and a finite norm bounds each clipped
  entry by ``clip_norm``), so ``is_finite(global_norm)`` decides;
* otherwise one ``Sum`` per gradient (a single read, no full-size
  temporary): a sum is finite when every entry is, and NaN or Inf when one
  is not, except when finite entries overflow the sum.

Only when that cheap test fails does one never-inlined function call look at
every gradient entry by entry (so an overflowing sum of finite entries does
not raise) and pick the message naming the first variable with a NaN or Inf.
The per-gradient ``is_finite`` + ``reduce_all`` + ``Assert`` of earlier
versions dispatched 6 ops per variable and a full-size boolean temporary.
"""

from tf1norm._math import norms as _norms
from tf1norm._src.compat import tf
from tf1norm.training.transforms import FINITE_WITH_NORM, map_gradients


def checked_gradients(grads_and_vars, context=None):
    """``grads_and_vars`` with every gradient waiting for one finiteness assertion.

    Args:
      grads_and_vars: the gradients the optimizer applies (after every transform).
      context: the step's ``StepContext``; its ``FINITE_WITH_NORM`` entry (set
        by ``clip_by_global_norm``) lets the global norm stand for the check.

    Returns:
      The same pairs; each gradient an identity after the assertion.
    """
    present = [(g, v) for g, v in grads_and_vars if g is not None]
    if not present:
        return list(grads_and_vars)
    with tf.name_scope("check_gradients"):
        values = [_values(g) for g, _ in present]
        messages = [_message(v) for _, v in present]
        cheap = _norm_decides(values, context)
        if cheap is None:
            cheap = _sums_finite(values)
        message = tf.cond(
            cheap,
            lambda: tf.constant(""),
            _norms.cold_call(lambda: first_nonfinite_message(values, messages)),
        )
        check = tf.debugging.Assert(tf.equal(message, ""), [message], summarize=1)
    with tf.control_dependencies([check]):
        return map_gradients(grads_and_vars, tf.identity)


def _message(variable):
    return (
        f"create_train_op: the gradient of {variable.op.name} is inf or nan (after "
        "the gradient transforms); add tf1norm.skip_nonfinite() to skip such steps"
    )


def _values(grad):
    return grad.values if isinstance(grad, tf.IndexedSlices) else grad


def _sums_finite(values):
    """Scalar: every gradient's sum is finite (float32 sums; one read of each gradient)."""
    sums = [tf.cast(tf.reduce_sum(v), tf.float32) for v in values]
    return tf.reduce_all(tf.math.is_finite(tf.stack(sums)))


def _norm_decides(values, context):
    """``is_finite(global norm)`` when every value is (an identity of) a clipped gradient."""
    recorded = None if context is None else context.state.get(FINITE_WITH_NORM)
    if recorded is None:
        return None
    norm, clipped = recorded
    clipped = {t.ref() for t in clipped}
    if all(_identity_of(v, clipped) for v in values):
        return tf.math.is_finite(norm)
    return None


def _identity_of(tensor, refs):
    """True if ``tensor`` is one of ``refs`` or an ``Identity`` chain (waits) of one."""
    while tensor.ref() not in refs:
        if tensor.op.type != "Identity" or not tensor.op.inputs:
            return False
        tensor = tensor.op.inputs[0]
    return True


def first_nonfinite_message(values, messages):
    """The message of the first tensor in ``values`` with a NaN or Inf, else ``""``."""
    finite = tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in values])
    first = tf.argmax(tf.cast(tf.logical_not(finite), tf.int32), output_type=tf.int32)
    return tf.where(tf.reduce_all(finite), tf.constant(""), tf.gather(messages, first))
