"""Seed 000: "Renormalize weight matrix using TensorFlow" (Torch's renorm).

The seed's answers hand-roll ``clip_by_norm`` row/column clipping and a
``renorm`` that imitates Torch. This prints the seed's matrices computed with
``tf1norm.max_norm`` (tf.clip_by_norm axes meaning, bit-exact when under the
threshold) and ``tf1norm.renorm`` (exactly torch.renorm).

    python legacy_examples/seed_000_renorm.py [--verbose]
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402  (the examples' shared module, TensorFlow-free)

data.quiet_tensorflow()  # before TensorFlow: its C++ log lines only with --verbose

import tf1norm  # noqa: E402
import tensorflow as tf  # noqa: E402  (after tf1norm)

v1 = tf.compat.v1


def main(argv=None):
    del argv
    with tf.Graph().as_default():
        x = tf.constant([0.0, 0.0, 3.0, 4.0, 30.0, 40.0, 300.0, 400.0], shape=(4, 2))
        results = {
            "x (rows have norms 0, 5, 50, 500; columns ~302, ~402)": x,
            "max_norm(x, 10, axes=1)  # clip rows": tf1norm.max_norm(x, 10, axes=1),
            "max_norm(x, 350, axes=0)  # clip columns": tf1norm.max_norm(x, 350, axes=0),
            "renorm(x, p=2, axis=0, maxnorm=10)  # torch.renorm rows": tf1norm.renorm(x, 2, 0, 10),
            "renorm(x, p=2, axis=1, maxnorm=350)  # torch.renorm columns": tf1norm.renorm(
                x, 2, 1, 350
            ),
        }
        with v1.Session() as sess:
            values = sess.run(results)
    np.set_printoptions(precision=8, suppress=True)
    for title, value in values.items():
        print(title)
        print(value)
        print()
    return values


if __name__ == "__main__":
    main()
