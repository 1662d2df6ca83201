"""Seed 001: the range of each output neuron of a network over an input box.

The seed's answer pointed to verification tools for PyTorch or MATLAB only.
``tf1norm.bounds`` does it for TF models: first the seed's three examples
(inputs in [0, 1]²), then a ReLU MLP trained on the digits in a TF1 graph,
traced from its output tensor and bounded over an L∞ box around a test digit.

    python legacy_examples/seed_001_output_ranges.py [--radius 0.05]
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402  (the examples' shared module, TensorFlow-free)

data.quiet_tensorflow()  # before TensorFlow: its C++ log lines only with --verbose
warnings.filterwarnings("ignore", message=r".*is deprecated", category=UserWarning)

import tf1norm  # noqa: E402
from tf1norm import bounds  # noqa: E402
import tensorflow as tf  # noqa: E402  (after tf1norm)

v1 = tf.compat.v1

SEED_EXAMPLES = [
    ("one linear layer, weights [1, 1]", [np.array([[1.0], [1.0]])]),
    ("one linear layer, weights [-0.5, 1]", [np.array([[-0.5], [1.0]])]),
    ("two all-ones linear layers", [np.ones((2, 2)), np.ones((2, 1))]),
]
METHODS = ("interval", "crown", "alpha-crown", "exact", "sample")


def seed_examples():
    for title, weights in SEED_EXAMPLES:
        net = bounds.Network.from_numpy(weights, activations=["linear"] * len(weights))
        low, high = bounds.output_bounds(net, [0, 0], [1, 1], "exact")
        print(f"  {title:38s} range [{low[0]:g}, {high[0]:g}]")


def trained_mlp(x_train, y_train, hidden=(32, 32), epochs=15, learning_rate=1e-2, seed=0):
    """Train a ReLU MLP in a TF1 graph (Adam, batch 64); return it traced as a Network."""
    with tf.Graph().as_default():
        v1.set_random_seed(seed)
        x = v1.placeholder(tf.float32, [None, x_train.shape[1]], name="X")
        y = v1.placeholder(tf.int64, [None])
        layers = tf1norm.require_v1_layers()
        net = x
        for i, units in enumerate(hidden):
            net = layers.dense(net, units, tf.nn.relu, name=f"hidden{i + 1}")
        logits = layers.dense(net, 10, name="logits")
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
        train_op = tf1norm.create_train_op(loss, v1.train.AdamOptimizer(learning_rate))
        rng = np.random.default_rng(seed)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for _ in range(epochs):
                for xb, yb in data.batches(x_train, y_train, 64, rng):
                    sess.run(train_op, {x: xb, y: yb})
            return bounds.from_graph(logits, x, bounds.graph_value_reader(session=sess))


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--radius",
        type=float,
        default=0.05,
        help="half-width of the L∞ input box around a test image",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (data split and training)")
    data.add_verbose_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    print("The seed's examples, inputs in [0, 1]^2:")
    seed_examples()
    dataset = data.load(seed=args.seed)
    net = trained_mlp(dataset.x_train, dataset.y_train, seed=args.seed)
    digit, label = dataset.x_test[0], int(dataset.y_test[0])
    lower = np.clip(digit - args.radius, 0, 1)
    upper = np.clip(digit + args.radius, 0, 1)
    print(f"\nTrained digits MLP 64-32-32-10, test digit {label}, L∞ radius {args.radius}:")
    results = {}
    for method in METHODS:
        start = time.perf_counter()
        low, high = bounds.output_bounds(net, lower, upper, method)
        elapsed = (time.perf_counter() - start) * 1e3
        others = np.delete(high, label).max()
        certified = "certified" if low[label] > others else "not certified"
        if method == "sample":
            certified = "(inner range, not a bound)"
        print(
            f"  {method:12s} mean width {np.mean(high - low):8.4f}  {elapsed:8.1f} ms  "
            f"logit {label} in [{low[label]:.3f}, {high[label]:.3f}]  {certified}"
        )
        results[method] = (low, high)
    return results


if __name__ == "__main__":
    main()
