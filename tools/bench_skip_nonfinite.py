"""Benchmark: what the NaN/Inf checks and ``skip_nonfinite``'s rollback cost per step.

Variants run in one process, each in its own graph and session, interleaved
(``benchlib.measure``: rotating order, median per-step time and median of the
per-round ratios to the first variant). Momentum (lr 0.01, momentum 0.9) on an
MLP 784-300-100-10 with ``tf.compat.v1.layers.batch_normalization`` after each
hidden layer (4 moving statistics), batch 50:

* ``minimize``: ``optimizer.minimize`` under ``control_dependencies(UPDATE_OPS)``;
* ``create_train_op``: the default, NaN/Inf checks of the loss and of each gradient;
* ``create_train_op, check_numerics=False``: neither check;
* ``skip_nonfinite``: the update in a ``tf.cond``, every moving statistic
  snapshotted before its update and restored on a skip (no step is skipped here).

With ``--build-model resnet_v1_50`` (any tf-slim model of ``tools/model_zoo.py``)
it instead times graph construction: ``create_train_op`` without and with
``skip_nonfinite`` on fresh graphs of the model, interleaved, ``--rounds`` times,
and reports the medians and the median ratio.

    python tools/bench_skip_nonfinite.py [--rounds 30] [--steps 20] [--quick]
    python tools/bench_skip_nonfinite.py --build-model resnet_v1_50 --rounds 3
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_train_op import Variant  # noqa: E402
from benchlib import measure, report  # noqa: E402

import tf1norm  # noqa: E402
from tf1norm._src.compat import tf, v1  # noqa: E402

SIZES = (784, 300, 100, 10)


def bn_mlp_loss(x, y, sizes):
    """Dense → batch norm (training) → ReLU per hidden layer, softmax cross-entropy."""
    net = x
    for i, units in enumerate(sizes[1:-1]):
        net = v1.layers.dense(net, units, use_bias=False, name=f"hidden{i + 1}")
        net = tf.nn.relu(v1.layers.batch_normalization(net, training=True, name=f"bn{i + 1}"))
    logits = v1.layers.dense(net, sizes[-1], name="output")
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))


def momentum():
    return v1.train.MomentumOptimizer(0.01, 0.9)


def minimize(x, y, sizes):
    loss = bn_mlp_loss(x, y, sizes)
    with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
        return [[momentum().minimize(loss, v1.train.get_or_create_global_step())]]


def create(**kwargs):
    def build(x, y, sizes):
        return [[tf1norm.create_train_op(bn_mlp_loss(x, y, sizes), momentum(), **kwargs)]]

    return build


def time_builds(model, rounds):
    """Median build seconds of create_train_op without / with skip_nonfinite, and ratio."""
    import model_zoo
    from bench_model_zoo import _optimizer, _timed

    times = {"create_train_op": [], "skip_nonfinite": []}
    for r in range(rounds):
        for name in sorted(times, reverse=r % 2 == 1):
            with tf.Graph().as_default():
                built = model_zoo.build(model, "max_norm", training=True)
                chain = [tf1norm.skip_nonfinite()] if name == "skip_nonfinite" else []
                seconds, _ = _timed(
                    lambda: tf1norm.create_train_op(built.loss, _optimizer(), transforms=chain)
                )
            times[name].append(seconds)
    ratios = [b / a for a, b in zip(times["create_train_op"], times["skip_nonfinite"])]
    print(
        f"\n{model}: create_train_op {statistics.median(times['create_train_op']):.2f} s, "
        f"with skip_nonfinite {statistics.median(times['skip_nonfinite']):.2f} s "
        f"({statistics.median(ratios):.2f}x, median of {rounds} rounds)"
    )
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 3 steps (smoke test)")
    parser.add_argument("--build-model", help="time graph construction on this model instead")
    args = parser.parse_args(argv)
    if args.build_model:
        return time_builds(args.build_model, args.rounds)
    rounds, steps, warmup = (3, 3, 2) if args.quick else (args.rounds, args.steps, 30)
    print(f"tf {tf.__version__}, {os.cpu_count()} cpus, {rounds} rounds x {steps} steps")
    variants = [
        Variant("minimize", SIZES, 50, minimize),
        Variant("create_train_op", SIZES, 50, create()),
        Variant("create_train_op, check_numerics=False", SIZES, 50, create(check_numerics=False)),
        Variant("skip_nonfinite", SIZES, 50, create(transforms=[tf1norm.skip_nonfinite()])),
    ]
    results = measure(variants, rounds, steps, warmup)
    report("Momentum, MLP 784-300-100-10 + batch norm, batch 50", results)
    return results


if __name__ == "__main__":
    main()
