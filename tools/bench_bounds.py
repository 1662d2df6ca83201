"""Benchmark: time and mean width of each bounds method.

    python tools/bench_bounds.py [--rounds 7] [--exact]
    python tools/bench_bounds.py --reference [--rounds 7]

``--reference``: the side-by-side table of ours against auto_LiRPA on the
reference networks of ``tests/reference_nets.py`` (random ReLU MLPs built
from seeds; auto_LiRPA's bounds and times recorded by
``tools/record_auto_lirpa.py`` into ``tests/fixtures/auto_lirpa_bounds.json``,
so torch is not needed here). Our ``crown`` and ``alpha-crown`` run
interleaved for ``--rounds`` rounds; the table gives median times, mean
output widths and the ratios ours / auto_LiRPA.

A ReLU MLP 784-256-256-256-256-10 trained briefly (tf.compat.v1 graph, Adam)
on scikit-learn's digits resized to 28x28; the box is an L∞ ball of radius
0.01 around a test digit (clipped to [0, 1]). Methods run interleaved for
``--rounds`` rounds; the table gives the median time and the mean output
width. ``exact`` (one MILP per bound) is slow at this size and runs only
with ``--exact``.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "--reference" in sys.argv:  # one BLAS thread, like the recorded auto_LiRPA runs
    for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")
here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(here, ".."), os.path.join(here, "..", "legacy_examples")]

import numpy as np  # noqa: E402

import data  # noqa: E402
from seed_001_output_ranges import trained_mlp  # noqa: E402
from tf1norm import bounds  # noqa: E402
from tf1norm._src.compat import tf  # noqa: E402


def digits_28x28(seed=0):
    dataset = data.load(seed=seed)

    def resize(x):
        images = tf.image.resize(x.reshape(-1, 8, 8, 1), [28, 28]).numpy()
        return np.clip(images.reshape(len(x), -1), 0, 1)

    return resize(dataset.x_train), dataset.y_train, resize(dataset.x_test)


def _reference_timings(rounds):
    """``{(case name, method): (median seconds, mean width)}`` of our methods."""
    sys.path.insert(0, os.path.join(here, "..", "tests"))
    import reference_nets

    nets = {case["name"]: reference_nets.network(case) for case in reference_nets.CASES}
    runs = [(name, method) for name in nets for method in ("crown", "alpha-crown")]
    times, widths = {run: [] for run in runs}, {}
    for r in range(rounds):
        for name, method in runs[r % len(runs) :] + runs[: r % len(runs)]:
            net, lower, upper = nets[name]
            start = time.perf_counter()
            low, high = bounds.output_bounds(net, lower, upper, method)
            times[name, method].append(time.perf_counter() - start)
            widths[name, method] = float(np.mean(high - low))
    return {run: (statistics.median(times[run]), widths[run]) for run in runs}


def reference_table(rounds):
    """Print ours vs the recorded auto_LiRPA figures, width and time per method."""
    import json

    with open(os.path.join(here, "..", "tests", "fixtures", "auto_lirpa_bounds.json")) as handle:
        recorded = json.load(handle)
    ours = _reference_timings(rounds)
    print(
        f"{os.cpu_count()} cpus, {rounds} rounds; auto_LiRPA {recorded['auto_LiRPA']} "
        f"(torch {recorded['torch']}, {recorded['dtype']}, {recorded['threads']} thread, "
        f"median of {recorded['rounds']}) as recorded"
    )
    print(
        "| network, L∞ radius | method | mean width: ours | auto_LiRPA | ratio "
        "| time: ours (ms) | auto_LiRPA (ms) | speed-up |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for case in recorded["cases"]:
        for method in ("crown", "alpha-crown"):
            seconds, width = ours[case["name"], method]
            theirs = case[method]
            their_width = float(np.mean(np.subtract(theirs["high"], theirs["low"])))
            print(
                f"| {case['name']}, {case['radius']:g} | {method} | {width:.4g} | "
                f"{their_width:.4g} | {width / their_width:.3f} | {seconds * 1e3:.1f} | "
                f"{theirs['median_seconds'] * 1e3:.1f} | "
                f"{theirs['median_seconds'] / seconds:.1f}x |"
            )
    return ours


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--exact", action="store_true")
    parser.add_argument(
        "--reference",
        action="store_true",
        help="ours vs recorded auto_LiRPA on the reference networks",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1; got {args.rounds}")
    if args.reference:
        return reference_table(args.rounds)
    x_train, y_train, x_test = digits_28x28()
    net = trained_mlp(x_train, y_train, hidden=(256,) * 4, epochs=3, learning_rate=1e-3)
    lower, upper = np.clip(x_test[0] - 0.01, 0, 1), np.clip(x_test[0] + 0.01, 0, 1)
    methods = ["interval", "crown", "alpha-crown"] + (["exact"] if args.exact else []) + ["sample"]
    times, widths = {m: [] for m in methods}, {}
    for r in range(args.rounds):
        for method in methods[r % len(methods) :] + methods[: r % len(methods)]:
            start = time.perf_counter()
            low, high = bounds.output_bounds(net, lower, upper, method)
            times[method].append(time.perf_counter() - start)
            widths[method] = float(np.mean(high - low))
    print(
        f"tf {tf.__version__}, {os.cpu_count()} cpus, {args.rounds} rounds; ReLU MLP "
        "784-256-256-256-256-10, L∞ radius 0.01 around a digits test input"
    )
    print("| method | median time (ms) | mean output width |")
    print("| --- | --- | --- |")
    for method in methods:
        print(f"| {method} | {statistics.median(times[method]) * 1e3:.1f} | {widths[method]:.4f} |")
    return times, widths


if __name__ == "__main__":
    main()
