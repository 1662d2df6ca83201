"""Shared benchmark method: variants interleaved in one process, medians and ratios.

A variant is any object with ``name`` and ``steps(count) -> seconds per step``.
Each round runs a block of steps of every variant, rotating which goes first;
the ratio of a variant to the first one is taken per round, and the median of
those ratios is reported with the median step time.
"""

import platform
import statistics

# the MLPs of issue 21 (bench_train_op and its peers)
SMALL, LARGE = (784, 300, 100, 10), (784, 2048, 2048, 10)


def measure(variants, rounds, steps, warmup):
    """``{name: (median seconds per step, median per-round ratio to variants[0])}``."""
    times = measure_rounds(variants, rounds, steps, warmup)
    base = times[variants[0].name]
    return {
        name: (statistics.median(t), statistics.median(a / b for a, b in zip(t, base)))
        for name, t in times.items()
    }


def report(title, results):
    """Print a Markdown table: median step time and time relative to the first variant."""
    print(f"\n{title}")
    first = next(iter(results))
    print(f"| variant | median step (ms) | time relative to {first} |")
    print("| --- | --- | --- |")
    for name, (seconds, ratio) in results.items():
        print(f"| {name} | {seconds * 1e3:.3f} | {ratio:.3f}x |")


def measure_rounds(variants, rounds, steps, warmup):
    """``{name: [seconds per step of each round]}``, rounds interleaved in rotating order."""
    for variant in variants:
        variant.steps(warmup)
    times = {v.name: [] for v in variants}
    for r in range(rounds):
        for variant in variants[r % len(variants) :] + variants[: r % len(variants)]:
            times[variant.name].append(variant.steps(steps))
    return times


def ratios(times, base):
    """Per-round ratios of ``times`` to ``base`` (lists of one time per round)."""
    return [a / b for a, b in zip(times, base)]


def summarize(variants, times):
    """``[(name, median ms, median ratio, min ratio, max ratio, ops)]``, baseline first."""
    base = times[variants[0].name]
    rows = []
    for variant in variants:
        per_round = ratios(times[variant.name], base)
        median_ms = statistics.median(times[variant.name]) * 1e3
        rows.append(
            (variant.name, median_ms, statistics.median(per_round), min(per_round), max(per_round))
            + (variant.ops,)
        )
    return rows


def floor_op(train_op, kernels):
    """After ``train_op``, the least a max-norm projection after the optimizer must do.

    A kernel with a unit over 1.0 at its initial values (under max-norm it is
    projected to the cap and pushed over it again by every update) is written
    once, ``w·s`` assigned with stored per-unit factors of ones: one read and
    one write, no norms. Any other kernel (one under the cap stays under for
    many steps: vgg_a's fc6, the large MLP's first layer) is read once, its sum
    stored in a scalar sink: Grappler turns a stateless read whose result only
    feeds a control edge into a NoOp. Not a projection: a floor.

    Call it before the session initializes the graph's variables (it adds
    two per kernel). The initial values are read in a throwaway session that
    runs the kernels' initializers; the benchmarks set a graph seed, so the
    real session starts from the same values.
    """
    from tf1norm._src.compat import tf, v1

    with v1.Session(graph=train_op.graph) as session:
        session.run([k.initializer for k in kernels])
        norms = session.run(
            [tf.reduce_max(tf.norm(tf.reshape(k, [-1, k.shape[-1]]), axis=0)) for k in kernels]
        )
    passes = []
    for i, (kernel, norm) in enumerate(zip(kernels, norms)):
        # variables, not constants: Grappler drops a multiplication by constant ones
        factor = v1.get_variable(
            f"floor_factor{i}", initializer=tf.ones(kernel.shape[-1:]), trainable=False
        )
        sink = v1.get_variable(f"floor_sink{i}", initializer=0.0, trainable=False)
        with tf.control_dependencies([train_op]):
            if norm > 1.0:
                passes.append(kernel.assign(kernel * factor, read_value=False))
            else:
                passes.append(sink.assign(tf.reduce_sum(kernel), read_value=False))
    return tf.group(*passes)


def cpu_name():
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
