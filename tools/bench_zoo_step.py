"""Per-step cost of tf1norm's scopes on tf-slim's model zoo, against the plain slim step.

For each model, the five variants below are built once, each in its own graph and
session (batch 2, Momentum 0.01/0.9, ``is_training=True``):

* ``plain``: the network without tf1norm, ``slim.learning.create_train_op``;
* ``max-norm``: ``slim_scope(max_norm=1)`` and ``tf1norm.create_train_op``;
* ``weight norm``: ``slim_scope(weight_norm=True)`` and ``tf1norm.create_train_op``;
* ``spectral norm``: ``slim_scope(spectral_norm=True)`` and ``tf1norm.create_train_op``;
* ``max-norm floor``: the plain step, then the least any max-norm projection
  must do after it (``benchlib.floor_op``): one pass ``w·s`` assigned (stored
  per-unit factors, no norms) over each kernel with a unit over 1.0 at its
  initial values, one read of the others. Not a projection: the floor under
  the max-norm row.

tf1norm's train op keeps its default checks (``check_numerics=True``). Every
round runs a block of steps of each variant in rotating order and keeps
the block's median step; the per-round ratio to ``plain`` is reported as its
median and min-max over rounds. The op count is the number of graph ops the
train op depends on (its ancestors, i.e. what one step can run), beside the
plain step's, so a regression in op count is visible without timing.

Used by ``tools/bench_model_zoo.py --step``.
"""

import statistics
import time

import numpy as np
import tf_slim as slim

import benchlib
import model_zoo

import tf1norm
from tf1norm._src.compat import tf, v1

# variant name -> model_zoo scope (None: the plain network and slim's train op)
VARIANTS = {
    "plain": None,
    "max-norm": "max_norm",
    "weight norm": "weight_norm",
    "spectral norm": "spectral_norm",
    "max-norm floor": "floor",
}
# resnet at 64×64 keeps its step in the range of the others; vgg needs 224 (7×7 fc6)
IMAGE = {"resnet_v1_50": 64, "resnet_v1_101": 64}


class StepVariant:
    """One model built under one scope, in its own graph and session."""

    def __init__(self, name, model, scope, batch=2, seed=0):
        self.name, self.graph = name, tf.Graph()
        image = IMAGE.get(model, model_zoo.IMAGE)
        with self.graph.as_default():
            v1.set_random_seed(seed)
            model_scope = None if scope == "floor" else scope
            built = model_zoo.build(model, model_scope, batch=batch, training=True, image=image)
            optimizer = v1.train.MomentumOptimizer(0.01, 0.9)
            if scope in (None, "floor"):
                self.train_op = slim.learning.create_train_op(built.loss, optimizer)
            else:
                self.train_op = tf1norm.create_train_op(built.loss, optimizer)
            if scope == "floor":
                kernels = [v for v in v1.trainable_variables() if v.shape.rank >= 2]
                self.train_op = benchlib.floor_op(self.train_op, kernels)
            self.session = v1.Session(graph=self.graph)
            self.session.run(v1.global_variables_initializer())
            self.op_count = len(model_zoo.ancestor_ops(self.train_op))
        rng = np.random.default_rng(seed)
        self.feed = {
            built.images: rng.standard_normal((batch, image, image, 3)).astype(np.float32),
            built.labels: rng.integers(0, model_zoo.NUM_CLASSES, batch),
        }

    def steps(self, count):
        """Median seconds of ``count`` steps (robust to a neighbour's burst on a shared machine)."""
        times = []
        for _ in range(count):
            start = time.perf_counter()
            self.session.run(self.train_op, self.feed)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def close(self):
        self.session.close()


def measure_model(model, rounds, steps, warmup=2, variants=None):
    """``{variant: (per-step seconds per round, per-round ratios to plain, op count)}``."""
    names = list(variants or VARIANTS)
    if names[0] != "plain":
        names = ["plain"] + [n for n in names if n != "plain"]
    built = [StepVariant(n, model, VARIANTS[n]) for n in names]
    try:
        for variant in built:
            variant.steps(warmup)
        times = {v.name: [] for v in built}
        for r in range(rounds):
            for variant in built[r % len(built) :] + built[: r % len(built)]:
                times[variant.name].append(variant.steps(steps))
            print(
                f"  {model} round {r + 1}/{rounds}: "
                + ", ".join(f"{k} {v[-1] * 1e3:.0f} ms" for k, v in times.items()),
                flush=True,
            )
    finally:
        for variant in built:
            variant.close()
    base = times["plain"]
    return {
        v.name: (times[v.name], [a / b for a, b in zip(times[v.name], base)], v.op_count)
        for v in built
    }


def report(model, results):
    """Print one Markdown table per model: median step, ratio median (min-max), op count."""
    size = IMAGE.get(model, model_zoo.IMAGE)
    print(f"\n{model} (batch 2, {size}×{size}, Momentum)")
    print("| variant | median step (ms) | ratio to plain: median (min-max) | ops per step |")
    print("| --- | --- | --- | --- |")
    base_ops = results["plain"][2]
    for name, (times, ratios, ops) in results.items():
        print(
            f"| {name} | {statistics.median(times) * 1e3:.1f} | "
            f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}-{max(ratios):.2f}) | "
            f"{ops:,} ({ops / base_ops:.2f}×) |"
        )
