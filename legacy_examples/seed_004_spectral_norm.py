"""Seed 004: spectral normalization for ``layers.dense`` built in a loop.

The seed put the power iteration inside ``kernel_constraint``; every layer's
call created a ``u`` variable under the same name ("variable already exists"),
and the workaround renamed variables by hand per layer. With
``tf1norm.spectral_norm_getter`` each weight gets its own ``<weight>/sn_u``
through the variable scope, the layer computes with ``W/σ`` (gradient through
σ), and the loop needs no names at all. Trains on the digits and prints each
layer's σ and the spectral norm of the weight the layer actually uses.

    python legacy_examples/seed_004_spectral_norm.py [--epochs 10]
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


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    parser.add_argument(
        "--hidden", type=int, nargs="+", default=[128, 64, 32], help="hidden layer widths"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (data split and initialization)"
    )
    data.add_verbose_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    dataset = data.load(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    layers = tf1norm.require_v1_layers()
    with tf.Graph().as_default():
        v1.set_random_seed(args.seed)
        x = v1.placeholder(tf.float32, [None, dataset.x_train.shape[1]])
        y = v1.placeholder(tf.int64, [None])
        net = x
        with v1.variable_scope("mlp", custom_getter=tf1norm.spectral_norm_getter()):
            for units in args.hidden:  # the seed's loop, unchanged: no per-layer names
                net = layers.dense(net, units, activation=tf.nn.relu)
        logits = layers.dense(net, 10, name="logits")
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
        train_op = tf1norm.create_train_op(loss, v1.train.AdamOptimizer(3e-3))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
        sigmas = v1.get_collection(tf1norm.keys.SPECTRAL_NORM_SIGMA)
        kernels = [
            v
            for v in v1.trainable_variables()
            if v.shape.rank == 2 and v.op.name.startswith("mlp/")
        ]
        print(
            "variables:",
            ", ".join(
                v.op.name
                for v in v1.global_variables()
                if "Adam" not in v.op.name and "power" not in v.op.name
            ),
        )
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for epoch in range(args.epochs):
                for xb, yb in data.batches(dataset.x_train, dataset.y_train, 32, rng):
                    sess.run(train_op, {x: xb, y: yb})
            acc = sess.run(accuracy, {x: dataset.x_test, y: dataset.y_test})
            for _ in range(300):  # each forward pass is one more power iteration on u:
                # 50 left 0.8% when the top two singular values were close
                estimated = sess.run([logits, sigmas], {x: dataset.x_test[:1]})[1]
            raw = sess.run(kernels)
    print(f"test accuracy {acc:.4f}")
    used = []
    for kernel, sigma, value in zip(kernels, estimated, raw):
        true_sigma = np.linalg.svd(value, compute_uv=False)[0]
        used.append(true_sigma / sigma)
        print(
            f"  {kernel.op.name:22s} σ(W) {true_sigma:7.3f}  power-iteration σ {sigma:7.3f}  "
            f"σ(W/σ) {used[-1]:.4f}"
        )
    print(
        f"Lipschitz bound of the hidden stack (product of σ(W/σ), ReLU is 1-Lipschitz): "
        f"{np.prod(used):.4f}"
    )
    return {"accuracy": float(acc), "normalized_sigmas": used}


if __name__ == "__main__":
    main()
