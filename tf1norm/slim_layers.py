"""tf-slim adapters (``arg_scope``-able). The core package never imports tf_slim.

    from tf1norm import slim_layers
    with slim.arg_scope([slim_layers.batch_norm], is_training=is_training):
        net = slim_layers.batch_norm(slim.conv3d(clips, 32, [3, 3, 3]))
"""

import tf_slim

from tf1norm import batch_norm as _batch_norm


@tf_slim.add_arg_scope
def batch_norm(inputs, is_training=True, momentum=0.99, epsilon=1e-3, center=True, scale=True,
               activation_fn=None, reuse=None, scope=None, outputs_collections=None):
    """``tf1norm.batch_norm`` with tf-slim's argument names, usable in ``arg_scope``.

    Variables are those of ``tf.compat.v1.layers.batch_normalization`` (``gamma``,
    ``beta``, ``moving_mean``, ``moving_variance``) under ``scope``; moving
    averages go to ``UPDATE_OPS``. ``activation_fn`` is applied afterwards.
    """
    outputs = _batch_norm(inputs, training=is_training, momentum=momentum, epsilon=epsilon,
                          center=center, scale=scale, name=scope, reuse=reuse)
    if activation_fn is not None:
        outputs = activation_fn(outputs)
    return tf_slim.utils.collect_named_outputs(outputs_collections, outputs.op.name, outputs)
