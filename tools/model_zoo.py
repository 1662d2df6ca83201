"""tf-slim model-zoo networks under tf1norm scopes: shared by the zoo tests and the benchmark.

``build(model, scope)`` creates, in the current default graph, one of
``tf_slim.nets``' networks at full size (224×224 RGB, 10 classes) inside the
network's own arg scope and a ``tf1norm.slim_scope``, and returns its
placeholders, logits and loss. ``SCOPES`` names the three scopes the zoo is
tested with. No weights are downloaded: variables start from the networks'
initializers.
"""

import collections
import contextlib

import tf_slim as slim
from tf_slim.nets import inception, resnet_v1, vgg

import tf1norm
from tf1norm._src.compat import tf, v1

NUM_CLASSES = 10
IMAGE = 224

# name -> (arg scope, network); each network returns (logits, end_points).
MODELS = {
    "vgg_a": (vgg.vgg_arg_scope, vgg.vgg_a),
    "vgg_16": (vgg.vgg_arg_scope, vgg.vgg_16),
    "resnet_v1_50": (resnet_v1.resnet_arg_scope, resnet_v1.resnet_v1_50),
    "resnet_v1_101": (resnet_v1.resnet_arg_scope, resnet_v1.resnet_v1_101),
    "inception_v1": (inception.inception_v1_arg_scope, inception.inception_v1),
}

SCOPES = {
    "max_norm": {"max_norm": 1.0},  # below He-init unit norms (≈√2): active
    "weight_norm": {"weight_norm": True},
    "spectral_norm": {"spectral_norm": {"training": None}},  # filled with the flag in build
}

Built = collections.namedtuple("Built", "images labels training logits loss")


def build(model, scope, batch=2, training=None, image=IMAGE):
    """Build ``model`` under ``slim_scope(**SCOPES[scope])`` in the default graph.

    ``training``: None (default) makes a boolean placeholder (default True)
    that drives dropout, batch norm and the spectral-norm refresh, so one
    graph serves training and evaluation; a Python bool builds the network the
    way most training scripts do (``is_training=True``), without the
    ``tf.cond``s a tensor flag needs. ``logits`` are ``[batch, NUM_CLASSES]``.
    ``image``: height and width (vgg's 7×7 fc6 needs 224; resnet takes e.g. 64).
    ``scope`` None builds the plain network (no ``slim_scope``).
    """
    if model not in MODELS:
        raise ValueError(
            f"model_zoo.build: `model` must be one of {sorted(MODELS)}; got {model!r}."
        )
    if scope is not None and scope not in SCOPES:
        raise ValueError(
            f"model_zoo.build: `scope` must be None or one of {sorted(SCOPES)}; got {scope!r}."
        )
    arg_scope, network = MODELS[model]
    images = v1.placeholder(tf.float32, [batch, image, image, 3], name="images")
    labels = v1.placeholder(tf.int32, [batch], name="labels")
    if training is None:
        training = v1.placeholder_with_default(True, [], name="training")
    elif not isinstance(training, bool):
        raise ValueError(f"model_zoo.build: `training` must be None or a bool; got {training!r}.")
    with slim.arg_scope(arg_scope()), _scope(scope, training):
        logits = _logits(network, model, images, training)
    loss = v1.losses.sparse_softmax_cross_entropy(labels, logits)
    return Built(images, labels, training, logits, loss)


def _scope(scope, training):
    if scope is None:
        return contextlib.nullcontext()
    options = dict(SCOPES[scope])
    if scope == "spectral_norm":
        options["spectral_norm"] = {"training": training}
    return tf1norm.slim_scope(**options)


def _logits(network, model, images, training):
    if model.startswith("resnet"):
        logits, _ = network(images, NUM_CLASSES, is_training=training)
        return tf.reshape(logits, [-1, NUM_CLASSES])  # resnet keeps the 1×1 spatial axes
    logits, _ = network(images, NUM_CLASSES, is_training=training)
    return logits


def plain_logits(model, images):
    """The same network without tf1norm, in evaluation mode (for exported checkpoints)."""
    arg_scope, network = MODELS[model]
    with slim.arg_scope(arg_scope()):
        return _logits(network, model, images, False)


def ancestor_ops(fetch):
    """The ops ``fetch`` (a tensor or op) depends on through inputs and control inputs."""
    start = fetch.op if isinstance(fetch, tf.Tensor) else fetch
    seen, stack = {start}, [start]
    while stack:
        op = stack.pop()
        for parent in [t.op for t in op.inputs] + list(op.control_inputs):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen
