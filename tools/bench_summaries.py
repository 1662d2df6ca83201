"""Benchmark: cost of tf1norm.summarize_chain per training step.

Variants run in one process, each in its own graph and session, interleaved
(``benchlib.measure``): every round times a block of ``--steps`` steps of each
variant in rotating order; the table reports the median per-step time and the
median of the per-round ratios to the first variant.

    python tools/bench_summaries.py [--rounds 30] [--steps 100] [--every 100] [--quick]

Momentum (lr 0.01, momentum 0.9) on MLP 784-300-100-10, batch 50 (the
smallest step, so the largest relative cost), ``clip_by_global_norm(5)`` and
max-norm 1.0 on the hidden layers:

* ``chain``: ``create_train_op`` with that chain;
* ``chain + summaries, never fetched``: ``summarize_chain()`` appended; only
  the train op is run (the cost of building it in);
* ``chain + summaries every N``: the same, with the merged summary fetched in
  the same ``sess.run`` as the train op every ``--every`` steps and written
  with a ``FileWriter`` (histograms included);
* ``chain + summaries every step``: the same every step, to show what one
  summary step costs before it is spread over ``--every`` steps.

A block of ``--steps`` (default 100) steps holds exactly ``steps / every``
summary steps, so each per-round ratio includes the summary's share.
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_train_op import SMALL, Variant, mlp_loss, momentum  # noqa: E402
from benchlib import measure, report  # noqa: E402

import tf1norm  # noqa: E402
from tf1norm._src.compat import tf, v1  # noqa: E402


def chain_step(x, y, sizes, summarize=None):
    loss = mlp_loss(x, y, sizes, tf1norm.max_norm_regularizer(1.0))
    chain = [tf1norm.clip_by_global_norm(5.0)] + ([summarize] if summarize else [])
    return [[tf1norm.create_train_op(loss, momentum(), transforms=chain)]]


class SummaryVariant(Variant):
    """Runs the train op; every ``every``-th step also fetches and writes the summary."""

    def __init__(self, name, sizes, batch, every, logdir):
        self.summarize = tf1norm.summarize_chain()
        super().__init__(name, sizes, batch, self.build)
        self.every, self.count = every, 0
        with self.graph.as_default():
            self.writer = v1.summary.FileWriter(logdir)

    def build(self, x, y, sizes):
        runs = chain_step(x, y, sizes, self.summarize)
        self.summary_op = self.summarize.summary_op  # built before the session
        return runs

    def steps(self, count):
        train_op = self.runs[0][0]
        start = time.perf_counter()
        for _ in range(count):
            if self.count % self.every == 0:
                _, summary = self.sess.run([train_op, self.summary_op], self.feed)
                self.writer.add_summary(summary, self.count)
            else:
                self.sess.run(train_op, self.feed)
            self.count += 1
        return (time.perf_counter() - start) / count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=100, help="steps per timed block")
    parser.add_argument("--every", type=int, default=100, help="write the summary every N steps")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 10 steps (smoke test)")
    args = parser.parse_args(argv)
    rounds, steps, warmup = (3, 10, 2) if args.quick else (args.rounds, args.steps, 100)
    every = min(args.every, steps) if args.quick else args.every
    print(
        f"tf {tf.__version__}, {os.cpu_count()} cpus, {rounds} rounds x {steps} steps, "
        f"summary every {every} steps"
    )
    with tempfile.TemporaryDirectory() as logdir:
        variants = [
            Variant("chain", SMALL, 50, chain_step),
            SummaryVariant(
                "chain + summaries, never fetched", SMALL, 50, 10**12, os.path.join(logdir, "never")
            ),
            SummaryVariant(
                f"chain + summaries every {every}", SMALL, 50, every, os.path.join(logdir, "every")
            ),
            SummaryVariant(
                "chain + summaries every step", SMALL, 50, 1, os.path.join(logdir, "always")
            ),
        ]
        results = measure(variants, rounds, steps, warmup)
        for variant in variants[1:]:
            variant.writer.close()
    report("Momentum, MLP 784-300-100-10, batch 50: clip_by_global_norm(5) + max-norm 1.0", results)
    return results


if __name__ == "__main__":
    main()
