"""3-D convolutions with batch norm on the fused kernel, on synthetic clips.

Each clip is 8 frames of 16x16 pixels in which a bright 3x3 square moves
left, right, up or down (the class) over noise. A small 3-D conv net with
``tf1norm.slim_layers.batch_norm`` (``tf1norm.batch_norm`` under
``arg_scope``) learns the direction; the moving averages (in ``UPDATE_OPS``) are
run by ``create_train_op`` and used at test time. Generated, nothing downloaded.

    python legacy_examples/conv3d_batch_norm.py [--steps 150]
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
from tf1norm import slim_layers  # noqa: E402
import tensorflow as tf  # noqa: E402  (after tf1norm)

v1 = tf.compat.v1

MOVES = ((0, -1), (0, 1), (-1, 0), (1, 0))  # left, right, up, down


def make_clips(count, rng, frames=8, size=16):
    """Clips [count, frames, size, size, 1] and direction labels [count]."""
    labels = rng.integers(0, len(MOVES), count)
    clips = rng.normal(0.0, 0.3, (count, frames, size, size, 1)).astype(np.float32)
    for clip, label in zip(clips, labels):
        dy, dx = MOVES[label]
        y, x = rng.integers(5, size - 5, 2) - np.array([dy, dx]) * frames // 2
        for t in range(frames):
            row, col = np.clip([y + dy * t, x + dx * t], 0, size - 3)
            clip[t, row : row + 3, col : col + 3, 0] += 2.0
    return clips, labels


def network(clips, is_training):
    with (
        slim.arg_scope(
            [slim.conv3d], normalizer_fn=slim_layers.batch_norm, activation_fn=tf.nn.relu
        ),
        slim.arg_scope([slim_layers.batch_norm], is_training=is_training, decay=0.9, scale=True),
    ):
        net = slim.conv3d(clips, 8, [3, 3, 3], scope="conv1")
        net = slim.max_pool3d(net, [2, 2, 2], scope="pool1")
        net = slim.conv3d(net, 16, [3, 3, 3], scope="conv2")
    net = tf.reduce_mean(net, axis=[1, 2, 3])
    return slim.fully_connected(net, len(MOVES), activation_fn=None, scope="logits")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=150, help="training steps")
    parser.add_argument("--batch-size", type=int, default=32, help="clips per batch")
    parser.add_argument("--seed", type=int, default=0, help="random seed (data and initialization)")
    data.add_verbose_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    test_clips, test_labels = make_clips(256, rng)
    with tf.Graph().as_default():
        v1.set_random_seed(args.seed)
        clips = v1.placeholder(tf.float32, [None, 8, 16, 16, 1])
        labels = v1.placeholder(tf.int64, [None])
        is_training = v1.placeholder_with_default(False, [])
        logits = network(clips, is_training)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        )
        train_op = tf1norm.create_train_op(loss, v1.train.AdamOptimizer(3e-3))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), labels), tf.float32))
        fused = sum(op.type == "FusedBatchNormV3" for op in v1.get_default_graph().get_operations())
        print(
            f"fused batch-norm ops: {fused}, "
            f"UPDATE_OPS: {len(v1.get_collection(v1.GraphKeys.UPDATE_OPS))}, "
            f"check_train_op: {tf1norm.check_train_op(train_op) or 'ok'}"
        )
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for step in range(1, args.steps + 1):
                batch, batch_labels = make_clips(args.batch_size, rng)
                sess.run(train_op, {clips: batch, labels: batch_labels, is_training: True})
                if step % 50 == 0 or step == args.steps:
                    acc = sess.run(accuracy, {clips: test_clips, labels: test_labels})
                    print(f"step {step:4d}  test accuracy (moving statistics) {acc:.4f}")
            moving = sess.run(v1.global_variables("conv1/BatchNorm/moving_variance")[0])
    print(f"conv1 moving variance (first 4 channels): {np.round(moving[:4], 3)}")
    return {"accuracy": float(acc)}


if __name__ == "__main__":
    main()
