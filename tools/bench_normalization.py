"""Benchmarks for batch norm on 5-D input and for embedding max-norm.

    python tools/bench_normalization.py [--rounds 15] [--only bn|embedding] [--quick]

Every variant lives in its own graph and session in this process; each round
runs a block of steps of every variant in rotating order; the table gives the
median step time and the median over rounds of the ratio to the first variant.

Batch norm: x = [8, 9, 60, 80, 32] (NDHWC), one step = forward + backward
(gradients for x, gamma, beta) + the moving-average updates, for
``tf.compat.v1.layers.batch_normalization`` with its default (``fused=None``),
with ``fused=False``, and ``tf1norm.batch_norm``.

Embedding: a 1,000,000 x 128 float32 table, 1,024 ids per step, SGD with
max-norm 1.0 on the rows: ``tf1norm.embedding_lookup(max_norm=)`` (projects
the looked-up rows after the update) against the same step followed by a dense
max-norm projection of the whole table; and the sparse variant's cost for 256,
1,024 and 4,096 ids.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from benchlib import measure, report  # noqa: E402

import tf1norm  # noqa: E402
from tf1norm._src.compat import tf, v1  # noqa: E402


class Variant:
    """A graph, a session and a ``step()`` that runs one training step."""

    def __init__(self, name, build):
        self.name = name
        self.graph = tf.Graph()
        with self.graph.as_default():
            v1.set_random_seed(0)
            self.fetches, self.feed_fn = build()
            self.sess = v1.Session(graph=self.graph)
            self.sess.run(v1.global_variables_initializer())

    def steps(self, count):
        start = time.perf_counter()
        for _ in range(count):
            self.sess.run(self.fetches, self.feed_fn())
        return (time.perf_counter() - start) / count


BN_SHAPE = (8, 9, 60, 80, 32)


def batch_norm_step(kind):
    def build():
        x = v1.get_variable(
            "x", initializer=np.random.default_rng(0).standard_normal(BN_SHAPE).astype(np.float32)
        )
        if kind == "tf1norm":
            y = tf1norm.batch_norm(x, training=True, name="bn")
        else:
            y = v1.layers.batch_normalization(x, training=True, fused=kind, name="bn")
        upstream = tf.constant(
            np.random.default_rng(1).standard_normal(BN_SHAPE).astype(np.float32)
        )
        grads = tf.gradients(y, [x] + v1.trainable_variables()[1:], grad_ys=upstream)
        return [grads, v1.get_collection(v1.GraphKeys.UPDATE_OPS)], dict

    return build


TABLE, DIM = 1_000_000, 128


def embedding_step(kind, n_ids):
    rng = np.random.default_rng(0)

    def build():
        table = v1.get_variable(
            "table", [TABLE, DIM], initializer=v1.random_normal_initializer(stddev=0.2, seed=0)
        )
        ids = v1.placeholder(tf.int64, [n_ids])
        if kind == "sparse":
            rows = tf1norm.embedding_lookup(table, ids, max_norm=1.0)
        else:
            rows = tf.nn.embedding_lookup(table, ids)
        loss = tf.reduce_sum(tf.square(rows - 1.0))
        train_op = tf1norm.create_train_op(
            loss, v1.train.GradientDescentOptimizer(0.1), check_numerics=False
        )
        if kind == "dense":
            with tf.control_dependencies([train_op]):
                train_op = table.assign(tf1norm.max_norm(table, 1.0, axes=1), read_value=False)
        return [train_op], lambda: {ids: rng.integers(0, TABLE, n_ids)}

    return build


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", choices=("bn", "embedding"))
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1 step (smoke test)")
    args = parser.parse_args(argv)
    rounds, steps = (2, 1) if args.quick else (args.rounds, 3)
    from tensorflow.python.util import _pywrap_util_port

    onednn = "on" if _pywrap_util_port.IsMklEnabled() else "off"
    print(
        f"tf {tf.__version__}, {os.cpu_count()} cpus, oneDNN {onednn} "
        f"(TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}), "
        f"{rounds} rounds x {steps} steps"
    )
    results = {}
    if args.only in (None, "bn"):
        variants = [
            Variant("tf1norm.batch_norm", batch_norm_step("tf1norm")),
            Variant("layers.batch_normalization default", batch_norm_step(None)),
            Variant("layers.batch_normalization fused=False", batch_norm_step(False)),
        ]
        results["bn"] = measure(variants, rounds, steps, warmup=3)
        report(
            f"Batch norm, x = {list(BN_SHAPE)}, forward + backward + moving averages", results["bn"]
        )
    if args.only in (None, "embedding"):
        variants = [
            Variant("sparse, 1024 ids", embedding_step("sparse", 1024)),
            Variant("dense projection, 1024 ids", embedding_step("dense", 1024)),
        ]
        results["embedding"] = measure(variants, rounds, steps, warmup=3)
        report(f"Embedding {TABLE:,} x {DIM}, SGD + max-norm 1.0", results["embedding"])
        del variants
        variants = [
            Variant(f"sparse, {n} ids", embedding_step("sparse", n)) for n in (1024, 256, 4096)
        ] + [
            Variant(f"no max-norm, {n} ids", embedding_step("plain", n)) for n in (1024, 256, 4096)
        ]
        results["ids"] = measure(variants, rounds, steps * 5, warmup=3)
        report("Sparse max-norm step cost against the number of ids", results["ids"])
    return results


if __name__ == "__main__":
    main()
