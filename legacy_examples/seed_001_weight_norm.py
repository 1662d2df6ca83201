"""Seed 001: is ``kernel_constraint=l2_normalize`` weight normalization?

No. The seed's constraint is a projection: after every update each filter is
rescaled to unit norm, so all norms are pinned at 1 (``tf1norm.unit_norm`` /
``UnitNorm``). Weight normalization (Salimans & Kingma) reparameterizes
``w = g·v/‖v‖`` and trains both ``g`` and ``v``, so each filter's norm is the
learned gain ``g``. This script trains the same small conv net on the digits
both ways and runs the check the seed's answer suggests: print the filter norms.

    python legacy_examples/seed_001_weight_norm.py [--epochs 8]
"""

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402  (the examples' shared module, TensorFlow-free)

data.quiet_tensorflow()  # before TensorFlow: its C++ log lines only with --verbose
warnings.filterwarnings("ignore", message=r".*is deprecated", category=UserWarning)

import tf1norm  # noqa: E402  (before TensorFlow)
import tensorflow as tf  # noqa: E402  (after tf1norm)

v1 = tf.compat.v1


def conv_net(images, constraint=None):
    layers = tf1norm.require_v1_layers()
    net = layers.conv2d(
        images,
        16,
        3,
        padding="same",
        activation=tf.nn.relu,
        kernel_constraint=constraint,
        name="conv1",
    )
    net = layers.max_pooling2d(net, 2, 2)
    net = layers.conv2d(
        net,
        16,
        3,
        padding="same",
        activation=tf.nn.relu,
        kernel_constraint=constraint,
        name="conv2",
    )
    return layers.dense(layers.flatten(net), 10, name="logits")


def train(dataset, args, mode):
    """mode 'unit_norm' (the seed's projection) or 'weight_norm' (the reparameterization)."""
    rng = np.random.default_rng(args.seed)
    with tf.Graph().as_default():
        v1.set_random_seed(args.seed)
        x = v1.placeholder(tf.float32, [None, 8, 8, 1])
        y = v1.placeholder(tf.int64, [None])
        if mode == "weight_norm":
            with tf1norm.slim_scope(weight_norm=True):
                logits = conv_net(x)
        else:
            logits = conv_net(x, constraint=tf1norm.UnitNorm())
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
        train_op = tf1norm.create_train_op(loss, v1.train.AdamOptimizer(3e-3))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
        images = lambda a: a.reshape(-1, 8, 8, 1)  # noqa: E731
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            if mode == "weight_norm":
                first = dataset.x_train[:256]
                # Adam's step is about lr per entry whatever the gradient's size, so
                # growing v to |g|·sqrt(fan_in) (the default, which keeps SGD and
                # Momentum stable) would slow the filters' directions down ~sqrt(fan_in)x.
                tf1norm.weight_norm_data_init(sess, {x: images(first)}, rescale_direction=False)
            for _ in range(args.epochs):
                for xb, yb in data.batches(dataset.x_train, dataset.y_train, 32, rng):
                    sess.run(train_op, {x: images(xb), y: yb})
            acc = sess.run(accuracy, {x: images(dataset.x_test), y: dataset.y_test})
            norms = {}
            for name in ("conv1", "conv2"):
                kernel = v1.global_variables(f"{name}/kernel")[0]
                effective = _effective_kernel(kernel)
                norms[name] = np.linalg.norm(sess.run(effective).reshape(-1, 16), axis=0)
    return float(acc), norms


def _effective_kernel(kernel):
    """The kernel the layer computes with: w = g·v/‖v‖ under weight norm, else the variable."""
    for record in tf1norm.registry.get_records(tf1norm.keys.WEIGHT_NORM):
        if record.v is kernel:
            return record.w
    return kernel


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=8, help="training epochs per model")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (data split and initialization)"
    )
    data.add_verbose_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    dataset = data.load(seed=args.seed)
    results = {}
    for mode in ("unit_norm", "weight_norm"):
        acc, norms = train(dataset, args, mode)
        results[mode] = {"accuracy": acc, "norms": norms}
        print(f"{mode:12s} test accuracy {acc:.4f}")
        for layer, values in norms.items():
            print(f"   {layer} filter norms: min {values.min():.3f}  max {values.max():.3f}")
    print(
        "kernel_constraint=unit_norm pins every filter norm at 1 (a projection); weight "
        "normalization learns each filter's norm g (a reparameterization)."
    )
    return results


if __name__ == "__main__":
    main()
