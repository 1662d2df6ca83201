"""Seed 002: MLP 300-100 with max-norm, gradient clipping, momentum, saver.

The seed ("TensorFlow使用记录 (八): 梯度修剪 和 Max-Norm Regularization") trains a
784-300-100-10 network with ``tf.layers.dense(kernel_regularizer=max_norm_reg)``,
clips gradients by value, uses momentum with polynomial learning-rate decay and
runs the collected max-norm assign ops with a second ``sess.run`` after every
step. This port keeps that structure, with ``tf1norm.max_norm_regularizer``
(one norm per hidden unit by default) in place of the hand-written one, and
by default builds the whole step (clip, momentum update, max-norm projection,
global step) as ONE op with ``tf1norm.create_train_op``. ``--two-runs``
reproduces the seed's recipe: optimizer op, then a second ``sess.run`` of the
``max_norm`` collection.

Data: real MNIST with ``--data path/to/mnist.npz``; otherwise scikit-learn's
bundled digits (offline).

    python legacy_examples/seed_002_max_norm_mlp.py [--epochs 20] [--data mnist.npz] [--two-runs]
"""

import argparse
import os
import sys
import tempfile
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402  (the examples' shared module, TensorFlow-free)

data.quiet_tensorflow()  # before TensorFlow: its C++ log lines only with --verbose
warnings.filterwarnings("ignore", message=r".*tf\.layers\.\w+` is deprecated", category=UserWarning)
warnings.filterwarnings("ignore", message=r"`layer\.apply` is deprecated", category=UserWarning)

import tf1norm  # noqa: E402  (before TensorFlow: tf.compat.v1.layers needs it)
import tensorflow as tf  # noqa: E402  (after tf1norm)

v1 = tf.compat.v1


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data", help="path to a Keras mnist.npz (default: sklearn digits)")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=50, help="examples per step")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=0.01,
        help="initial learning rate (polynomial decay to a tenth)",
    )
    parser.add_argument("--threshold", type=float, default=1.0, help="max-norm per hidden unit")
    parser.add_argument("--clip", type=float, default=1.0, help="gradient clip value")
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        help="where to keep the checkpoint (default: a temporary folder, removed at exit)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (data split, shuffling, initialization)"
    )
    parser.add_argument(
        "--two-runs",
        action="store_true",
        help="the seed's recipe: a second sess.run for the max-norm ops",
    )
    data.add_verbose_argument(parser)
    return parser.parse_args(argv)


def build_model(n_inputs, n_classes, args):
    """The seed's graph: placeholders, two max-norm hidden layers, loss, accuracy."""
    layers = tf1norm.require_v1_layers()
    x = v1.placeholder(tf.float32, shape=(None, n_inputs), name="X")
    y = v1.placeholder(tf.int64, shape=(None,), name="y")
    he_init = v1.variance_scaling_initializer(scale=2.0, seed=args.seed)
    max_norm_reg = tf1norm.max_norm_regularizer(threshold=args.threshold)
    with v1.name_scope("dnn"):
        hidden1 = layers.dense(
            x,
            300,
            tf.nn.relu,
            kernel_initializer=he_init,
            kernel_regularizer=max_norm_reg,
            name="hidden1",
        )
        hidden2 = layers.dense(
            hidden1,
            100,
            tf.nn.relu,
            kernel_initializer=he_init,
            kernel_regularizer=max_norm_reg,
            name="hidden2",
        )
        logits = layers.dense(hidden2, n_classes, kernel_initializer=he_init, name="output")
    with v1.name_scope("loss"):
        loss = v1.losses.softmax_cross_entropy(tf.one_hot(y, n_classes), logits)
    with v1.name_scope("eval"):
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
    return {"x": x, "y": y, "loss": loss, "accuracy": accuracy}


def build_train_op(loss, steps, args):
    """Momentum + polynomial decay + clip_by_value; one op, or the seed's pair."""
    global_step = v1.train.get_or_create_global_step()
    learning_rate = v1.train.polynomial_decay(
        args.learning_rate, global_step, steps, end_learning_rate=args.learning_rate / 10, power=0.9
    )
    optimizer = v1.train.MomentumOptimizer(learning_rate, momentum=0.9)
    if not args.two_runs:
        train_op = tf1norm.create_train_op(
            loss,
            optimizer,
            global_step=global_step,
            transforms=[tf1norm.clip_by_value(-args.clip, args.clip)],
        )
        return train_op, [], learning_rate
    grads_and_vars = optimizer.compute_gradients(loss)
    clipped = [(tf.clip_by_value(g, -args.clip, args.clip), v) for g, v in grads_and_vars]
    with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
        train_op = optimizer.apply_gradients(clipped, global_step=global_step)
    return train_op, v1.get_collection("max_norm"), learning_rate


def largest_hidden_unit_norm(sess):
    """Max over hidden layers of each unit's incoming-weight L2 norm."""
    kernels = [p.variable for p in tf1norm.registry.get_projections(tf1norm.keys.MAX_NORM)]
    return max(float(np.max(np.linalg.norm(k, axis=0))) for k in sess.run(kernels))


def train(dataset, args):
    """Train, save, restore; return the metrics printed."""
    rng = np.random.default_rng(args.seed)
    steps = args.epochs * (len(dataset.x_train) // args.batch_size)
    with tf.Graph().as_default():
        v1.set_random_seed(args.seed)
        model = build_model(dataset.x_train.shape[1], 10, args)
        train_op, clip_all_weights, learning_rate = build_train_op(model["loss"], steps, args)
        problems = tf1norm.check_train_op(train_op)
        print(
            f"train op: {'one sess.run per step' if not args.two_runs else 'seed recipe'}; "
            f"check_train_op: {[p.kind for p in problems] or 'ok'}"
        )
        saver = v1.train.Saver()
        test_feed = {model["x"]: dataset.x_test, model["y"]: dataset.y_test}
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for epoch in range(args.epochs):
                for x_batch, y_batch in data.batches(
                    dataset.x_train, dataset.y_train, args.batch_size, rng
                ):
                    sess.run(train_op, {model["x"]: x_batch, model["y"]: y_batch})
                    if clip_all_weights:
                        sess.run(clip_all_weights)  # the seed's second sess.run
                acc, loss = sess.run([model["accuracy"], model["loss"]], test_feed)
                norm = largest_hidden_unit_norm(sess)
                print(
                    f"epoch {epoch:2d}  lr {sess.run(learning_rate):.5f}  test accuracy "
                    f"{acc:.4f}  test loss {loss:.4f}  largest hidden-unit norm {norm:.4f}"
                )
            path = saver.save(sess, os.path.join(args.checkpoint_dir, "model.ckpt"))
        with v1.Session() as sess:
            saver.restore(sess, path)
            restored = sess.run(model["accuracy"], test_feed)
            norm = largest_hidden_unit_norm(sess)
    print(
        f"restored from {path}: test accuracy {restored:.4f}, "
        f"largest hidden-unit norm {norm:.4f} (threshold {args.threshold})"
    )
    return {"accuracy": float(restored), "largest_norm": norm, "checkpoint": path}


def main(argv=None):
    args = parse_args(argv)
    dataset = data.load(args.data, seed=args.seed)
    print(
        f"data: {dataset.name}, {len(dataset.x_train)} train / {len(dataset.x_test)} test, "
        f"{dataset.x_train.shape[1]} features"
    )
    if args.checkpoint_dir is not None:
        return train(dataset, args)
    with tempfile.TemporaryDirectory(prefix="tf1norm_seed002_") as directory:
        args.checkpoint_dir = directory  # removed on exit: pass --checkpoint-dir to keep it
        return train(dataset, args)


if __name__ == "__main__":
    main()
