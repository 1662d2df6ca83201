"""Seed 003: "How to define per-layer weight decay in TensorFlow?"

The seed asks for cuda-convnet's per-layer ``epsW/epsB/momW/momB/wc`` and points
out that L2 regularization is not weight decay for any optimizer but plain SGD;
its workaround bolts a secondary SGD optimizer onto the train op. This script:

1. trains a small conv net on the digits with a cuda-convnet layer-params
   file (``digits-layers.cfg``) through ``tf1norm.layer_params``;
2. trains one MLP three ways from the same initial weights with Adam:
   L2 in the loss (coupled), the seed's secondary SGD step
   (``tf1norm.sgd_decay_step``, deterministic) and decoupled decay
   (``tf1norm.add_decoupled_weight_decay``, AdamW), and prints how the weight
   norms and accuracies differ.

    python legacy_examples/seed_003_weight_decay.py [--epochs 10] [--layers FILE]
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
import tf_slim as slim  # noqa: E402
import tensorflow as tf  # noqa: E402  (after tf1norm)

v1 = tf.compat.v1

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=10, help="training epochs per model")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step")
    parser.add_argument(
        "--layers",
        default=os.path.join(HERE, "digits-layers.cfg"),
        help="cuda-convnet layer-params file for part 1",
    )
    parser.add_argument("--decay", type=float, default=0.05, help="λ for part 2")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (data split and initialization)"
    )
    data.add_verbose_argument(parser)
    return parser.parse_args(argv)


def conv_net(images):
    net = slim.conv2d(images, 16, [3, 3], scope="conv1")
    net = slim.max_pool2d(net, [2, 2], scope="pool1")
    net = slim.fully_connected(slim.flatten(net), 64, scope="fc1")
    return slim.fully_connected(net, 10, activation_fn=None, scope="fc2")


def mlp(x):
    net = slim.fully_connected(x, 128, scope="fc1")
    return slim.fully_connected(net, 10, activation_fn=None, scope="fc2")


def run(dataset, args, build_logits, make_train_op, image_shape=None):
    """Train with ``make_train_op(loss)``; return (accuracy, weight norms by name)."""
    rng = np.random.default_rng(args.seed)
    reshape = (lambda x: x.reshape((-1,) + image_shape)) if image_shape else (lambda x: x)
    with tf.Graph().as_default():
        v1.set_random_seed(args.seed)
        x = v1.placeholder(tf.float32, (None,) + (image_shape or dataset.x_train.shape[1:]))
        y = v1.placeholder(tf.int64, (None,))
        logits = build_logits(x)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
        train_op = make_train_op(loss)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
        weights = [v for v in v1.trainable_variables() if v.shape.rank > 1]
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for _ in range(args.epochs):
                for xb, yb in data.batches(dataset.x_train, dataset.y_train, args.batch_size, rng):
                    sess.run(train_op, {x: reshape(xb), y: yb})
            acc = sess.run(accuracy, {x: reshape(dataset.x_test), y: dataset.y_test})
            norms = {
                v.op.name: float(np.linalg.norm(w)) for v, w in zip(weights, sess.run(weights))
            }
    return float(acc), norms


def part_one(dataset, args):
    def make_train_op(loss):
        params = tf1norm.layer_params(args.layers)
        for name, (layer, kind) in sorted(params.assignments.items()):
            p = params.sections[layer]
            print(
                f"  {name:16s} eps={p['eps' + kind]:<6g} mom={p['mom' + kind]:<4g} "
                f"wc={p['wc'] if kind == 'W' else 0:g}"
            )
        return params.create_train_op(loss)

    print(f"1. cuda-convnet layer params from {os.path.basename(args.layers)}:")
    acc, _ = run(dataset, args, conv_net, make_train_op, image_shape=(8, 8, 1))
    print(f"   conv net test accuracy after {args.epochs} epochs: {acc:.4f}\n")
    return acc


def part_two(dataset, args):
    lam = args.decay
    recipes = {
        "L2 in the loss (coupled)": lambda loss: tf1norm.create_train_op(
            loss
            + lam * sum(tf.nn.l2_loss(v) for v in v1.trainable_variables() if v.shape.rank > 1),
            v1.train.AdamOptimizer(1e-3),
        ),
        "seed 003 SGD decay step": lambda loss: tf1norm.create_train_op(
            loss,
            v1.train.AdamOptimizer(1e-3),
            transforms=[tf1norm.sgd_decay_step(learning_rate=1e-3)],
        ),
        "decoupled (AdamW)": lambda loss: tf1norm.create_train_op(
            loss,
            v1.train.AdamOptimizer(1e-3),
            transforms=[tf1norm.add_decoupled_weight_decay(lam, exclude=["biases"])],
        ),
    }
    applies = {  # the exact update of each kernel w per step (g: gradient of the data loss)
        "L2 in the loss (coupled)": f"w -= Adam(g + {lam}·w)",
        "seed 003 SGD decay step": (f"w -= Adam(g); w -= 1e-3·{lam}·w_old  (SGD on {lam}·½‖w‖²)"),
        "decoupled (AdamW)": f"w -= Adam(g); w -= 1e-3·{lam}·w_old",
    }
    print(
        f"2. Adam, lr 1e-3, decay λ={lam}, same initial weights. Rows 2 and 3 apply the same "
        "update by construction\n   (the check below proves it); row 1 is what L2 in the loss "
        "does under Adam:"
    )
    results = {}
    for name, make in recipes.items():
        regularized = name == "seed 003 SGD decay step"
        build = (lambda x: _regularized_mlp(x, lam)) if regularized else mlp
        results[name] = run(dataset, args, build, make)
        acc, norms = results[name]
        shown = "  ".join(f"‖{k}‖={v:.3f}" for k, v in norms.items())
        print(f"   {name:26s} applies {applies[name]}")
        print(f"   {'':26s} accuracy {acc:.4f}  {shown}")
    coupled, decoupled = results["L2 in the loss (coupled)"][1], results["decoupled (AdamW)"][1]
    ratio = {k: decoupled[k] / coupled[k] for k in coupled}
    print(
        "   decoupled / coupled weight norms: "
        + "  ".join(f"{k} {v:.2f}" for k, v in ratio.items())
    )
    same = results["seed 003 SGD decay step"] == results["decoupled (AdamW)"]
    print(
        "   The SGD decay step at learning rate lr on an L2 penalty λ·½‖w‖² is the update "
        f"w -= lr·λ·w_old, i.e. AdamW: identical results: {same}. Coupled L2 passes λ·w "
        "through Adam's per-weight normalization, so it decays each weight differently."
    )
    return results


def _regularized_mlp(x, lam):
    with slim.arg_scope([slim.fully_connected], weights_regularizer=tf1norm.l2_regularizer(lam)):
        return mlp(x)


def main(argv=None):
    args = parse_args(argv)
    dataset = data.load(seed=args.seed)
    print(f"data: {dataset.name}, {len(dataset.x_train)} train / {len(dataset.x_test)} test\n")
    return {"layer_params_accuracy": part_one(dataset, args), "decay": part_two(dataset, args)}


if __name__ == "__main__":
    main()
