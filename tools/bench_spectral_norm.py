"""Benchmark: spectral normalization cost per training step.

    python tools/bench_spectral_norm.py [--rounds 30] [--quick]

MLP 512-512-512-512-10 (three hidden layers of 512, ReLU), batch 128, Adam 1e-3,
spectral normalization on every dense layer, variants interleaved in one
process (tools/benchlib.py):

* ``bare``: no normalization;
* ``seed 004 recipe``: the seed's power iteration in ``kernel_constraint``
  with its answer's per-layer ``u`` names (a projection applied by the
  optimizer after the update; no gradient through σ);
* ``tf1norm immediate``: ``spectral_norm_getter()`` (W/σ in the forward pass,
  gradient through σ, u refreshed with the forward pass);
* ``tf1norm collection``: ``spectral_norm_getter(update="collection")`` (u
  refreshed once per step by ``create_train_op`` after the update).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import tf1norm  # noqa: E402
from benchlib import measure, report  # noqa: E402
from tf1norm._src.compat import tf, v1  # noqa: E402

SIZES, BATCH = (512, 512, 512, 512, 10), 128


def seed_spectral_norm(w, nombre):
    """Seed 004's answer: one power iteration, u created per layer name, inside a constraint."""
    shape = w.shape.as_list()
    w = tf.reshape(w, [-1, shape[-1]])
    with v1.variable_scope(nombre, reuse=v1.AUTO_REUSE):
        u = v1.get_variable(
            nombre, [1, shape[-1]], initializer=v1.random_normal_initializer(), trainable=False
        )
    v_hat = tf.nn.l2_normalize(tf.matmul(u, w, transpose_b=True))
    u_hat = tf.nn.l2_normalize(tf.matmul(v_hat, w))
    u_hat, v_hat = tf.stop_gradient(u_hat), tf.stop_gradient(v_hat)
    sigma = tf.matmul(tf.matmul(v_hat, w), u_hat, transpose_b=True)
    with tf.control_dependencies([u.assign(u_hat)]):
        return tf.reshape(w / sigma, shape)


class Variant:
    def __init__(self, name, kind):
        self.name = name
        self.graph = tf.Graph()
        rng = np.random.default_rng(0)
        with self.graph.as_default():
            v1.set_random_seed(0)
            x = v1.placeholder(tf.float32, [None, SIZES[0]])
            y = v1.placeholder(tf.int64, [None])
            loss = self._loss(x, y, kind)
            self.train_op = tf1norm.create_train_op(
                loss, v1.train.AdamOptimizer(1e-3), check_numerics=False
            )
            self.sess = v1.Session(graph=self.graph)
            self.sess.run(v1.global_variables_initializer())
        self.feed = {
            x: rng.random((BATCH, SIZES[0]), np.float32),
            y: rng.integers(0, SIZES[-1], BATCH),
        }

    @staticmethod
    def _loss(x, y, kind):
        layers = tf1norm.require_v1_layers()
        getter = {
            "immediate": tf1norm.spectral_norm_getter(),
            "collection": tf1norm.spectral_norm_getter(update="collection"),
        }.get(kind)
        net = x
        with v1.variable_scope("mlp", custom_getter=getter):
            for i, units in enumerate(SIZES[1:]):
                constraint = None
                if kind == "seed":
                    constraint = lambda w, i=i: seed_spectral_norm(w, f"layer_{i}_u")  # noqa: E731
                net = layers.dense(
                    net,
                    units,
                    tf.nn.relu if i < len(SIZES) - 2 else None,
                    kernel_constraint=constraint,
                )
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=net))

    def steps(self, count):
        start = time.perf_counter()
        for _ in range(count):
            self.sess.run(self.train_op, self.feed)
        return (time.perf_counter() - start) / count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 steps (smoke test)")
    args = parser.parse_args(argv)
    rounds, steps, warmup = (2, 2, 1) if args.quick else (args.rounds, 10, 20)
    print(f"tf {tf.__version__}, {os.cpu_count()} cpus, {rounds} rounds x {steps} steps")
    variants = [
        Variant("bare", "bare"),
        Variant("seed 004 recipe", "seed"),
        Variant("tf1norm immediate", "immediate"),
        Variant("tf1norm collection", "collection"),
    ]
    results = measure(variants, rounds, steps, warmup)
    report(
        f"Adam, MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, spectral norm on every layer",
        results,
    )
    return results


if __name__ == "__main__":
    main()
