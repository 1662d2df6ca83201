"""Benchmark: the tf1norm TF2 step (``jit_compile=True``) against the bare jit step.

All variants run in one process, interleaved (each round times a block of
steps of every variant, in rotating order); the table gives each variant's
median step time and the median of its per-round ratio to its reference.

MLP 784-300-100-10, batch 50, max-norm 1.0 on the hidden kernels:

* ``bare jit``: ``tf.function(jit_compile=True)``: tape, gradients, Keras 3
  ``SGD(0.01, momentum=0.9).apply_gradients`` (no max-norm);
* ``tf1norm jit``: ``tf1norm.make_train_step`` with the same optimizer and the
  recorded max-norm projections, in ``tf.function(jit_compile=True)``;
* ``keras bare jit`` / ``keras MaxNorm jit``: a Keras 3 ``Sequential`` without
  and with ``kernel_constraint=keras.constraints.MaxNorm(1.0)``, same loop;
* ``TF1 minimize`` / ``TF1 create_train_op``: graph mode, one ``sess.run``.

Full recipe (Adam 1e-3 + ``clip_by_global_norm(5)`` + decoupled decay 1e-2 +
max-norm), same references; Keras's own is ``AdamW(weight_decay=1e-2,
global_clipnorm=5)`` + ``MaxNorm``.

    python tools/bench_tf2_step.py --rounds 30 [--steps 20] [--processes 7]

The last line of each table divides the tf1norm step's ratio by Keras's own
(same process, same rounds): below 1, tf1norm's chain costs less than Keras's.
"""

import argparse
import functools
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import tf1norm  # noqa: E402
from tf1norm._math import projections  # noqa: E402
from tf1norm import registry  # noqa: E402
from tf1norm._src.compat import tf, v1  # noqa: E402

SIZES, BATCH, THRESHOLD = (784, 300, 100, 10), 50, 1.0


def _data():
    rng = np.random.default_rng(0)
    return (
        rng.random((BATCH, SIZES[0]), np.float32),
        rng.integers(0, SIZES[-1], BATCH).astype(np.int32),
    )


def _xent(logits, y):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))


class TF2Variant:
    """A jit-compiled TF2 step over plain variables; ``steps(n)`` -> seconds per step."""

    def __init__(self, name, make_step):
        self.name = name
        rng = np.random.default_rng(1)
        self.params = []
        for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
            self.params += [
                tf.Variable(rng.normal(0, 0.05, (fan_in, fan_out)).astype(np.float32)),
                tf.Variable(np.zeros(fan_out, np.float32)),
            ]
        self.x, self.y = (tf.constant(a) for a in _data())
        self.run = tf.function(make_step(self), jit_compile=True)

    def loss(self):
        h = self.x
        for i in range(0, len(self.params), 2):
            h = tf.matmul(h, self.params[i]) + self.params[i + 1]
            h = tf.nn.relu(h) if i + 2 < len(self.params) else h
        return _xent(h, self.y)

    def steps(self, count):
        start = time.perf_counter()
        for _ in range(count):
            loss = self.run()
        loss.numpy()
        return (time.perf_counter() - start) / count


def bare(optimizer):
    def make(variant):
        def step():
            with tf.GradientTape() as tape:
                loss = variant.loss()
            optimizer.apply_gradients(zip(tape.gradient(loss, variant.params), variant.params))
            return loss

        return step

    return make


def with_tf1norm(optimizer, transforms):
    def make(variant):
        for kernel in variant.params[0:4:2]:  # hidden kernels, as max_norm_regularizer does
            registry.register_projection(
                registry.Projection(
                    kernel,
                    functools.partial(
                        projections.max_norm_assignment, threshold=THRESHOLD, axes=(0,)
                    ),
                    "max_norm",
                    axes=(0,),
                ),
                tf1norm.keys.MAX_NORM,
            )
        train = tf1norm.make_train_step(optimizer, transforms)
        return lambda: train(variant.loss, variant.params)

    return make


class KerasVariant(TF2Variant):
    """A Keras 3 Sequential trained by a jit tf.function (its constraints in ``apply``)."""

    def __init__(self, name, optimizer, constraint):
        import keras

        self.name = name
        self.model = keras.Sequential(
            [keras.Input((SIZES[0],))]
            + [
                keras.layers.Dense(
                    n,
                    activation="relu" if i < 2 else None,
                    kernel_constraint=constraint() if i < 2 else None,
                )
                for i, n in enumerate(SIZES[1:])
            ]
        )
        self.x, self.y = (tf.constant(a) for a in _data())
        self.run = tf.function(functools.partial(self._step, optimizer), jit_compile=True)

    def _step(self, optimizer):
        with tf.GradientTape() as tape:
            loss = _xent(self.model(self.x), self.y)
        weights = self.model.trainable_variables
        optimizer.apply(tape.gradient(loss, weights), weights)
        return loss


class TF1Variant:
    """A graph and session; ``build(loss, global_step)`` returns the op run per step."""

    def __init__(self, name, build):
        self.name = name
        self.graph = tf.Graph()
        x_value, y_value = _data()
        with self.graph.as_default():
            v1.set_random_seed(0)
            x, y = v1.placeholder(tf.float32, x_value.shape), v1.placeholder(tf.int32, (BATCH,))
            reg = tf1norm.max_norm_regularizer(THRESHOLD)
            layers = tf1norm.require_v1_layers()
            h = layers.dense(x, SIZES[1], tf.nn.relu, kernel_regularizer=reg)
            h = layers.dense(h, SIZES[2], tf.nn.relu, kernel_regularizer=reg)
            loss = _xent(layers.dense(h, SIZES[3]), y)
            self.op = build(loss, v1.train.get_or_create_global_step())
            self.sess = v1.Session(graph=self.graph)
            self.sess.run(v1.global_variables_initializer())
        self.feed = {x: x_value, y: y_value}

    def steps(self, count):
        start = time.perf_counter()
        for _ in range(count):
            self.sess.run(self.op, self.feed)
        return (time.perf_counter() - start) / count


def max_norm_variants():
    import keras

    sgd = lambda: keras.optimizers.SGD(0.01, momentum=0.9)  # noqa: E731
    momentum = lambda: v1.train.MomentumOptimizer(0.01, 0.9)  # noqa: E731
    return [
        TF2Variant("bare jit", bare(sgd())),
        TF2Variant("tf1norm jit", with_tf1norm(sgd(), [])),
        KerasVariant("keras bare jit", sgd(), lambda: None),
        KerasVariant("keras MaxNorm jit", sgd(), lambda: keras.constraints.MaxNorm(THRESHOLD)),
        TF1Variant("TF1 minimize", lambda loss, step: momentum().minimize(loss, step)),
        TF1Variant(
            "TF1 create_train_op",
            lambda loss, step: tf1norm.create_train_op(loss, momentum(), global_step=step),
        ),
    ]


def _recipe():
    return [tf1norm.clip_by_global_norm(5.0), tf1norm.add_decoupled_weight_decay(1e-2)]


def full_recipe_variants():
    import keras

    adam = lambda: keras.optimizers.Adam(1e-3)  # noqa: E731
    return [
        TF2Variant("bare jit", bare(adam())),
        TF2Variant("tf1norm jit", with_tf1norm(adam(), _recipe())),
        KerasVariant("keras bare jit", adam(), lambda: None),
        KerasVariant(
            "keras AdamW+global_clipnorm+MaxNorm jit",
            keras.optimizers.AdamW(1e-3, weight_decay=1e-2, global_clipnorm=5.0),
            lambda: keras.constraints.MaxNorm(THRESHOLD),
        ),
        TF1Variant(
            "TF1 minimize", lambda loss, step: v1.train.AdamOptimizer(1e-3).minimize(loss, step)
        ),
        TF1Variant(
            "TF1 create_train_op",
            lambda loss, step: tf1norm.create_train_op(
                loss, v1.train.AdamOptimizer(1e-3), global_step=step, transforms=_recipe()
            ),
        ),
    ]


# (variant, its reference) pairs whose per-round ratios the table reports
PAIRS = (
    ("bare jit", "bare jit"),
    ("tf1norm jit", "bare jit"),
    ("keras bare jit", "keras bare jit"),
    (None, "keras bare jit"),
    ("TF1 minimize", "TF1 minimize"),
    ("TF1 create_train_op", "TF1 minimize"),
)


def measure(variants, rounds, steps, warmup, title):
    """Interleaved rounds; ``{name: [seconds per step per round]}``."""
    for variant in variants:
        variant.steps(warmup)
    times = {v.name: [] for v in variants}
    for r in tqdm(range(rounds), desc=title, leave=False):
        for variant in variants[r % len(variants) :] + variants[: r % len(variants)]:
            times[variant.name].append(variant.steps(steps))
    return times


def ratios(times):
    """``{row name: median per-round ratio to its reference}`` plus ``"vs keras"``."""
    names = list(times)
    result = {}
    for (name, reference), actual in zip(PAIRS, names):
        name = name or actual
        result[name] = statistics.median(a / b for a, b in zip(times[name], times[reference]))
    result["vs keras"] = statistics.median(
        (ours / bare) / (theirs / keras_bare)
        for ours, bare, theirs, keras_bare in zip(
            times["tf1norm jit"], times["bare jit"], times[names[3]], times["keras bare jit"]
        )
    )
    return result


def report(title, times):
    print(f"\n{title}")
    print("| variant | median step (ms) | ratio to its reference (median per round) |")
    print("| --- | --- | --- |")
    found = ratios(times)
    for (name, reference), actual in zip(PAIRS, times):
        name = name or actual
        print(
            f"| {name} | {statistics.median(times[name]) * 1e3:.3f} | {found[name]:.3f}x "
            f"(vs {reference}) |"
        )
    print(
        f"tf1norm jit's ratio divided by {list(times)[3]}'s (median per round): "
        f"{found['vs keras']:.3f}"
    )
    print("RATIOS " + json.dumps({"title": title, "ratios": found}))


def across_processes(args):
    """Run the benchmark in ``--processes`` fresh interpreters, one after another.

    XLA's compiled step is ~10% faster or slower from one process to the next
    (stable within a process), so one process can mislead; this prints each
    process's ratios and their median.
    """
    import subprocess

    runs = {}
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--rounds",
        str(args.rounds),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
    ]
    for index in range(args.processes):
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        for line in output.splitlines():
            if line.startswith("RATIOS "):
                record = json.loads(line[len("RATIOS ") :])
                for name, value in record["ratios"].items():
                    runs.setdefault(record["title"], {}).setdefault(name, []).append(value)
        print(f"process {index + 1}/{args.processes} done", file=sys.stderr, flush=True)
    for title, table in runs.items():
        print(f"\n{title}: per-process ratios, median across {args.processes} processes")
        print("| variant | per process | median |")
        print("| --- | --- | --- |")
        for name, values in table.items():
            print(
                f"| {name} | {' '.join(f'{v:.3f}' for v in values)} | "
                f"{statistics.median(values):.3f} |"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=20, help="steps per variant per round")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps (compilation)")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="repeat in this many fresh processes and report the medians",
    )
    args = parser.parse_args(argv)
    if min(args.rounds, args.steps, args.processes) < 1 or args.warmup < 1:
        parser.error("--rounds, --steps, --processes and --warmup must be >= 1")
    if args.processes > 1:
        across_processes(args)
        return
    print(
        f"tf {tf.__version__}; MLP {'-'.join(map(str, SIZES))}, batch {BATCH}; "
        f"{args.rounds} rounds x {args.steps} steps"
    )
    for title, build in (
        ("max-norm (momentum 0.9, lr 0.01)", max_norm_variants),
        (
            "full recipe (Adam + clip_by_global_norm + decoupled decay + max-norm)",
            full_recipe_variants,
        ),
    ):
        report(title, measure(build(), args.rounds, args.steps, args.warmup, title))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("\ninterrupted")
