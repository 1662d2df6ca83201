"""Keras 3 peers of ``tools/bench_train_op.py``: the same MLPs and batches, in Keras 3.

    python tools/bench_keras_peers.py [--rounds 9] [--steps 20] [--out tools/peers_keras.json]

Runs in its own process (Keras 3 and tf1norm's TF1 graphs are kept apart) and
records, like ``bench_torch_peers``, the median and min-max over interleaved
rounds of each variant's ratio to the plain step compiled the same way
(``train_on_batch`` of a compiled model; ``jit_compile`` False and True):

* max-norm MLPs: SGD(0.01, momentum 0.9), hidden kernels with
  ``keras.constraints.MaxNorm(1.0, axis=0)`` (one norm per output unit)
  against the same model without the constraint;
* full recipe (small MLP, batch 50): ``AdamW(1e-3, weight_decay=1e-2,
  global_clipnorm=5)`` + ``MaxNorm`` against plain ``Adam(1e-3)``.
"""

import argparse
import datetime
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchlib import LARGE, SMALL, cpu_name, measure_rounds, summarize  # noqa: E402


def model(sizes, constraint, optimizer, jit_compile):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((sizes[0],))]
    for units in sizes[1:-1]:
        layers.append(keras.layers.Dense(units, "relu", kernel_constraint=constraint))
    layers.append(keras.layers.Dense(sizes[-1]))
    net = keras.Sequential(layers)
    net.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return net


class Variant:
    """A compiled Keras model; ``steps(count)`` runs ``train_on_batch`` and returns s/step."""

    def __init__(self, name, sizes, batch, optimizer, constraint, jit_compile):
        self.name, self.ops = name, 0
        self.net = model(sizes, constraint, optimizer(), jit_compile)
        rng = np.random.default_rng(0)
        self.x = rng.random((batch, sizes[0]), np.float32)
        self.y = rng.integers(0, sizes[-1], batch)

    def steps(self, count):
        start = time.perf_counter()
        for _ in range(count):
            self.net.train_on_batch(self.x, self.y)
        return (time.perf_counter() - start) / count


def momentum():
    return keras.optimizers.SGD(0.01, momentum=0.9)


def workloads(jit):
    mode = "jit" if jit else "tf.function"
    max_norm = keras.constraints.MaxNorm(1.0, axis=0)
    rows = []
    for key, sizes, batch in [
        ("maxnorm_small_b50", SMALL, 50),
        ("maxnorm_small_b512", SMALL, 512),
        ("maxnorm_large_b50", LARGE, 50),
    ]:
        plain = Variant(f"plain SGD momentum ({mode})", sizes, batch, momentum, None, jit)
        capped = Variant(f"MaxNorm ({mode})", sizes, batch, momentum, max_norm, jit)
        rows.append((key, [plain, capped]))
    adam = lambda: keras.optimizers.Adam(1e-3)  # noqa: E731
    adamw = lambda: keras.optimizers.AdamW(1e-3, weight_decay=1e-2, global_clipnorm=5.0)  # noqa: E731
    full = [
        Variant(f"plain Adam ({mode})", SMALL, 50, adam, None, jit),
        Variant(f"AdamW + global_clipnorm + MaxNorm ({mode})", SMALL, 50, adamw, max_norm, jit),
    ]
    rows.append(("full_small_b50", full))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers_keras.json"),
    )
    args = parser.parse_args(argv)
    record = {
        "peer": f"Keras {keras.__version__}",
        "cpu": f"{cpu_name()}, {os.cpu_count()} cpus",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python tools/bench_keras_peers.py " + " ".join(argv or sys.argv[1:]),
        "workloads": {},
    }
    for jit in (False, True):
        for key, variants in workloads(jit):
            steps = args.steps if "b512" not in key else max(args.steps // 2, 1)
            rows = summarize(variants, measure_rounds(variants, args.rounds, steps, 30))
            record["workloads"].setdefault(key, []).extend(
                {"name": name, "ms": ms, "median": median, "min": low, "max": high}
                for name, ms, median, low, high, _ in rows[1:]
            )
            print(key, [(r[0], round(r[2], 3)) for r in rows])
    with open(args.out, "w") as handle:
        json.dump(record, handle, indent=1)
        handle.write("\n")
    return record


if __name__ == "__main__":
    main()
