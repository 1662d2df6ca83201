"""Benchmark: cost of max-norm and of the full recipe per training step.

Variants run in one process, each in its own graph and session, interleaved:
every round times a block of steps of each variant in rotating order. For
each round the ratio variant/bare is taken; the table reports the median
per-step time of each variant and the median of the per-round ratios.

    python tools/bench_train_op.py [--rounds 9] [--steps 20] [--quick]

Each row prints the median per-step time, the median and min-max over rounds
of the ratio to the baseline, and the ops the step dispatches
(``tools/op_counts.py``) against the baseline's. Peer rows (PyTorch, Keras 3)
are read from ``tools/peers_torch.json`` and ``tools/peers_keras.json``
(written by ``tools/bench_torch_peers.py`` and ``tools/bench_keras_peers.py``,
in their own processes) and printed beside the matching workload.

Momentum (lr 0.01, momentum 0.9) on MLP 784-300-100-10 (batch 50 and 512) and
784-2048-2048-10 (batch 50), max-norm 1.0 on the hidden layers:

* ``bare``: ``optimizer.minimize(loss, global_step)``, one ``sess.run``;
* ``seed recipe``: the same op, then ``sess.run(get_collection("max_norm"))``;
* ``tf1norm``: ``create_train_op`` with ``max_norm_regularizer``, one ``sess.run``;
* ``floor``: the bare step, then one pass (``w·s`` assigned, no norms) over each
  hidden kernel that has a unit over 1.0 at every step, one read of the others:
  less than any max-norm projection can do (``floor_pass``).

Full recipe (small MLP, batch 50, Adam 1e-3): ``bare Adam`` against
``create_train_op`` with ``clip_by_global_norm(5)``, ``add_decoupled_weight_decay(1e-2)``
and max-norm.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import json  # noqa: E402

from benchlib import (  # noqa: E402
    LARGE,
    SMALL,
    cpu_name,
    floor_op,
    measure_rounds,
    summarize,
)
from op_counts import step_op_count  # noqa: E402

import tf1norm  # noqa: E402
from tf1norm._src.compat import tf, v1  # noqa: E402


class Variant:
    """One graph + session + the fetch lists run per step."""

    def __init__(self, name, sizes, batch, build):
        self.name = name
        self.graph = tf.Graph()
        rng = np.random.default_rng(0)
        self.feed_values = (
            rng.random((batch, sizes[0]), np.float32),
            rng.integers(0, sizes[-1], batch),
        )
        with self.graph.as_default():
            v1.set_random_seed(0)
            self.x = v1.placeholder(tf.float32, (None, sizes[0]))
            self.y = v1.placeholder(tf.int64, (None,))
            self.runs = build(self.x, self.y, sizes)
            self.ops = sum(step_op_count(f) for fetches in self.runs for f in fetches)
            self.sess = v1.Session(graph=self.graph)
            self.sess.run(v1.global_variables_initializer())
        self.feed = {self.x: self.feed_values[0], self.y: self.feed_values[1]}

    def steps(self, count):
        start = time.perf_counter()
        for _ in range(count):
            for fetches in self.runs:
                self.sess.run(fetches, self.feed)
        return (time.perf_counter() - start) / count


def mlp_loss(x, y, sizes, regularizer=None):
    net = x
    for i, units in enumerate(sizes[1:-1]):
        net = v1.layers.dense(
            net, units, tf.nn.relu, kernel_regularizer=regularizer, name=f"hidden{i + 1}"
        )
    logits = v1.layers.dense(net, sizes[-1], name="output")
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))


def momentum():
    return v1.train.MomentumOptimizer(0.01, 0.9)


def bare(x, y, sizes, optimizer=momentum):
    loss = mlp_loss(x, y, sizes)
    return [[optimizer().minimize(loss, v1.train.get_or_create_global_step())]]


def seed_recipe(x, y, sizes):
    loss = mlp_loss(x, y, sizes, tf1norm.max_norm_regularizer(1.0))
    train_op = momentum().minimize(loss, v1.train.get_or_create_global_step())
    return [[train_op], v1.get_collection("max_norm")]


def tf1norm_max_norm(x, y, sizes, check_numerics=True):
    loss = mlp_loss(x, y, sizes, tf1norm.max_norm_regularizer(1.0))
    step = v1.train.get_or_create_global_step()
    return [[tf1norm.create_train_op(loss, momentum(), step, check_numerics=check_numerics)]]


def floor_pass(x, y, sizes):
    """The bare step, then the least any max-norm projection must do after it.

    ``benchlib.floor_op`` on the hidden kernels: the small MLP's both (glorot
    columns start at norm ~1.2) are written once per step; of the large MLP
    only hidden2 (~1.0 at the start), hidden1 (~0.74) is read. Not a
    projection: the floor under the max-norm rows of this table.
    """
    loss = mlp_loss(x, y, sizes)
    train_op = momentum().minimize(loss, v1.train.get_or_create_global_step())
    kernels = [v for v in v1.trainable_variables() if v.name.startswith("hidden")]
    return [[floor_op(train_op, [v for v in kernels if v.shape.rank == 2])]]


def adam():
    return v1.train.AdamOptimizer(1e-3)


def full_recipe(x, y, sizes):
    loss = mlp_loss(x, y, sizes, tf1norm.max_norm_regularizer(1.0))
    chain = [tf1norm.clip_by_global_norm(5.0), tf1norm.add_decoupled_weight_decay(1e-2)]
    return [
        [
            tf1norm.create_train_op(
                loss, adam(), v1.train.get_or_create_global_step(), transforms=chain
            )
        ]
    ]


PEER_FILES = ("peers_torch.json", "peers_keras.json")


def workloads():
    """``[(title, peer key, baseline + variants)]``: every row of issue 21's table."""
    rows = []
    for title, key, sizes, batch in [
        ("max-norm, MLP 784-300-100-10, batch 50", "maxnorm_small_b50", SMALL, 50),
        ("max-norm, MLP 784-300-100-10, batch 512", "maxnorm_small_b512", SMALL, 512),
        ("max-norm, MLP 784-2048-2048-10, batch 50", "maxnorm_large_b50", LARGE, 50),
    ]:
        variants = [
            Variant("bare Momentum", sizes, batch, bare),
            Variant("seed recipe (two sess.run)", sizes, batch, seed_recipe),
            Variant("tf1norm max-norm", sizes, batch, tf1norm_max_norm),
            Variant("floor: one write per kernel over, no norms", sizes, batch, floor_pass),
        ]
        if batch == 50:
            variants.append(
                Variant(
                    "tf1norm max-norm, check_numerics=False",
                    sizes,
                    batch,
                    lambda x, y, s: tf1norm_max_norm(x, y, s, check_numerics=False),
                )
            )
        rows.append((title, key, variants))
    full = [
        Variant("bare Adam", SMALL, 50, lambda x, y, s: bare(x, y, s, adam)),
        Variant("tf1norm full recipe", SMALL, 50, full_recipe),
    ]
    title = "full recipe (Adam + clip_by_global_norm + decoupled decay + max-norm), batch 50"
    rows.append((title, "full_small_b50", full))
    return rows


def peer_rows(key):
    """Peer results recorded for workload ``key``: ``[(label, median, min, max)]``."""
    rows = []
    for file_name in PEER_FILES:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), file_name)
        if not os.path.exists(path):
            continue
        with open(path) as handle:
            record = json.load(handle)
        for row in record.get("workloads", {}).get(key, []):
            rows.append((f"{record['peer']}: {row['name']}", row["median"], row["min"], row["max"]))
    return rows


def print_table(title, rows, peers):
    base_ops = rows[0][5]
    print(f"\n{title}")
    print("| variant | median step (ms) | ratio median (min-max) | ops per step |")
    print("| --- | --- | --- | --- |")
    for name, ms, median, low, high, ops in rows:
        print(f"| {name} | {ms:.3f} | {median:.2f}x ({low:.2f}-{high:.2f}) | {ops} ({base_ops}) |")
    for label, median, low, high in peers:
        print(f"| {label} (recorded) | | {median:.2f}x ({low:.2f}-{high:.2f}) | |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 3 steps (smoke test)")
    args = parser.parse_args(argv)
    rounds, steps, warmup = (3, 3, 2) if args.quick else (args.rounds, args.steps, 30)
    print(
        f"tf {tf.__version__}, {cpu_name()}, {os.cpu_count()} cpus, "
        f"{rounds} rounds x {steps} steps (ratio: to the first row, per round)"
    )
    results = {}
    for title, key, variants in workloads():
        block = steps if "batch 512" not in title else max(steps // 2, 1)
        results[key] = summarize(variants, measure_rounds(variants, rounds, block, warmup))
        print_table(title, results[key], peer_rows(key))
        for variant in variants:
            variant.sess.close()
    return results


if __name__ == "__main__":
    main()
