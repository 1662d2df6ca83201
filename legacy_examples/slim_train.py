"""tf-slim's training loop driving tf1norm: ``slim.learning.train(tf1norm.create_train_op(...))``.

The classic tf-slim program: input tensors from a dataset, a net of
``slim.conv2d``/``slim.fully_connected`` layers, a train op, and
``slim.learning.train(train_op, logdir, number_of_steps=N)`` (a
``Supervisor`` with checkpoint and summary threads). Here the layers are
built inside ``tf1norm.slim_scope(max_norm=...)`` and the train op is
``tf1norm.create_train_op`` with gradient clipping and decoupled weight
decay. As with tf-slim's own ``create_train_op``, the global step is created
and incremented by the train op, the returned tensor is the loss, and the
loop stops after ``number_of_steps``. The model is then restored from the
last checkpoint in a fresh graph and evaluated on the test split.

A TF1 program: eager execution is disabled first (the Supervisor's
background threads would otherwise run eagerly).

    python legacy_examples/slim_train.py [--steps 600] [--logdir DIR]
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402  (the examples' shared module, TensorFlow-free)

data.quiet_tensorflow()  # before TensorFlow: its C++ log lines only with --verbose

import tf1norm  # noqa: E402  (before TensorFlow)
import tensorflow as tf  # noqa: E402  (after tf1norm)

v1 = tf.compat.v1


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=600, help="number_of_steps")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step")
    parser.add_argument("--threshold", type=float, default=2.0, help="max-norm per unit")
    parser.add_argument(
        "--logdir",
        default=None,
        help="checkpoints and summaries (default: a temporary folder, removed at exit)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (data shuffling and initialization)"
    )
    data.add_verbose_argument(parser)
    return parser.parse_args(argv)


def net(images):
    """conv 3×3×16 → pool → fc 64 → fc 10 on 8×8 digits, max-norm on every kernel."""
    import tf_slim as slim

    with tf1norm.slim_scope(max_norm=ARGS.threshold):
        x = slim.conv2d(images, 16, [3, 3], scope="conv1")
        x = slim.max_pool2d(x, [2, 2], scope="pool1")
        x = slim.fully_connected(slim.flatten(x), 64, scope="fc1")
        return slim.fully_connected(x, 10, activation_fn=None, scope="logits")


def train(dataset, args):
    import tf_slim as slim

    with tf.Graph().as_default():
        v1.set_random_seed(args.seed)
        batches = (
            tf.data.Dataset.from_tensor_slices((dataset.x_train, dataset.y_train))
            .shuffle(len(dataset.x_train), seed=args.seed)
            .repeat()
            .batch(args.batch_size)
        )
        x, y = v1.data.make_one_shot_iterator(batches).get_next()
        logits = net(tf.reshape(x, [-1, 8, 8, 1]))
        loss = v1.losses.sparse_softmax_cross_entropy(y, logits)
        train_op = tf1norm.create_train_op(
            loss,
            v1.train.MomentumOptimizer(0.05, 0.9),
            transforms=[tf1norm.clip_by_global_norm(5.0), tf1norm.add_decoupled_weight_decay(1e-4)],
        )
        final_loss = slim.learning.train(
            train_op,
            args.logdir,
            number_of_steps=args.steps,
            log_every_n_steps=max(args.steps // 4, 1),
            save_summaries_secs=600,
            save_interval_secs=600,
        )
    return float(final_loss)


def evaluate(dataset, args):
    """Restore the last checkpoint in a fresh graph: accuracy, global step, unit norms."""
    with tf.Graph().as_default():
        x = tf.constant(dataset.x_test.reshape(-1, 8, 8, 1))
        logits = net(x)
        accuracy = tf.reduce_mean(
            tf.cast(tf.equal(tf.argmax(logits, 1), dataset.y_test), tf.float32)
        )
        kernels = [v for v in v1.global_variables() if v.op.name.endswith("weights")]
        with v1.Session() as sess:
            v1.train.Saver().restore(sess, tf.train.latest_checkpoint(args.logdir))
            acc, values = sess.run([accuracy, kernels])
    step = int(tf.train.load_checkpoint(args.logdir).get_tensor("global_step"))
    norms = {
        k.op.name: float(np.max(np.linalg.norm(v.reshape(-1, v.shape[-1]), axis=0)))
        for k, v in zip(kernels, values)
    }
    return {"accuracy": float(acc), "global_step": step, "largest_norms": norms}


ARGS = None


def main(argv=None):
    global ARGS
    ARGS = args = parse_args(argv)
    v1.disable_eager_execution()
    if args.logdir is not None:
        return run(args)
    with tempfile.TemporaryDirectory(prefix="tf1norm_slim_train_") as logdir:
        args.logdir = logdir  # removed at exit
        return run(args)


def run(args):
    """Train, restore, print and return the result."""
    dataset = data.load(seed=args.seed)
    final_loss = train(dataset, args)
    result = {"final_loss": final_loss, **evaluate(dataset, args)}
    print(
        f"slim.learning.train stopped at global step {result['global_step']} "
        f"(number_of_steps={args.steps}); test accuracy {result['accuracy']:.4f}"
    )
    for name, norm in result["largest_norms"].items():
        print(f"  {name}: largest unit norm {norm:.4f} (threshold {args.threshold})")
    print("result: " + json.dumps(result))
    return result


if __name__ == "__main__":
    main()
