"""Benchmark: cost of the run-time bad-input assertions on a training step.

    python tools/bench_runtime_checks.py [--rounds 20] [--steps 50] [--batch 64]

The checks that run on every step (issue 13):

* ``batch_norm`` in training mode asserts that the batch is not empty before
  its moving-average updates (one ``Assert`` per layer);
* a threshold or learning rate fed at run time (a placeholder or schedule) is
  asserted finite and > 0 where it is used (``max_norm``, ``renorm``,
  ``clip_by_norm``, ``add_decoupled_weight_decay(learning_rate=tensor)``...).

Each comes in two variants built in their own graph and session, interleaved
in one process (``benchlib.measure``): "checked" is the library as it is,
"unchecked" the same graph with the assertion replaced by a pass-through (the
code before the checks). Model: MLP 784-512-512-10 with ``batch_norm`` after
each hidden layer, max-norm 3.0 through ``max_norm_regularizer`` (for the
fed-threshold variant, ``max_norm`` of each kernel with a placeholder
threshold), Momentum 0.01/0.9, batch ``--batch``.
"""

import argparse
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402


@contextlib.contextmanager
def _unchecked():
    """The library with its run-time assertions replaced by pass-throughs."""
    import importlib

    from tf1norm._src import checks as _checks

    batch_norm = importlib.import_module("tf1norm.graph.batch_norm")
    saved = batch_norm._checked_statistics, _checks.asserted_positive
    batch_norm._checked_statistics = lambda mean, variance, *_: (mean, variance)
    _checks.asserted_positive = lambda tensor, fn, arg: tensor
    try:
        yield
    finally:
        batch_norm._checked_statistics, _checks.asserted_positive = saved


class Variant:
    """One graph and session; ``steps(n)`` runs ``n`` training steps."""

    def __init__(self, name, fed_threshold, checked, batch):
        import numpy as np

        import tf1norm
        from tf1norm._src.compat import tf, v1

        self.name = name
        self.graph = tf.Graph()
        with self.graph.as_default(), contextlib.nullcontext() if checked else _unchecked():
            x = v1.placeholder(tf.float32, [batch, 784])
            labels = v1.placeholder(tf.int64, [batch])
            threshold = v1.placeholder_with_default(3.0, [])
            net = x
            for index, units in enumerate((512, 512)):
                kernel = v1.get_variable(f"dense{index}/kernel", [net.shape[-1], units])
                if fed_threshold:
                    kernel = tf1norm.max_norm(kernel, threshold)
                net = tf.nn.relu(tf1norm.batch_norm(net @ kernel, training=True, name=f"bn{index}"))
            logits = tf.compat.v1.layers.dense(net, 10)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )
            self.train_op = tf1norm.create_train_op(loss, v1.train.MomentumOptimizer(0.01, 0.9))
            self.session = v1.Session(
                config=v1.ConfigProto(
                    intra_op_parallelism_threads=1, inter_op_parallelism_threads=1
                )
            )
            self.session.run(v1.global_variables_initializer())
        rng = np.random.default_rng(0)
        self.feed = {
            x: rng.normal(size=(batch, 784)).astype(np.float32),
            labels: rng.integers(0, 10, batch),
        }

    def steps(self, count):
        start = time.perf_counter()
        for _ in range(count):
            self.session.run(self.train_op, self.feed)
        return (time.perf_counter() - start) / count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    from tf1norm.cli.app import quiet_tensorflow

    quiet_tensorflow(verbose=False)
    for fed in (False, True):
        variants = [
            Variant("unchecked", fed, False, args.batch),
            Variant("checked", fed, True, args.batch),
        ]
        results = benchlib.measure(variants, args.rounds, args.steps, warmup=args.steps)
        benchlib.report(
            f"batch_norm x2{' + max_norm(threshold fed) x2' if fed else ''}, "
            f"batch {args.batch}, {args.rounds} rounds x {args.steps} steps",
            results,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
