"""Exact output ranges of 5-input 6x50 ReLU MLPs: branch and bound vs MILP, interleaved.

Each network: seeded He-normal weights (biases N(0, 0.1²)), 5 inputs, six
hidden layers of 50 ReLUs, 5 outputs, over a box of 10% of [-1, 1] (half-width
0.1) around a random centre. Every round solves every network with every
algorithm (order rotated per round), each under ``--time-limit`` seconds, and
reports per algorithm: median seconds per network, how many networks finished
exactly, and the worst remaining gap.

    python tools/bench_exact.py --rounds 3 --networks 4 --time-limit 60 [--algorithms bab]
"""

import argparse
import time

import numpy as np

import tf1norm  # noqa: F401  (before TensorFlow)
from tf1norm import bounds
from tf1norm.bounds.exact import exact


def control_network(seed, width=50, depth=6, inputs=5, outputs=5):
    """The seeded network and its input box (half-width 0.1 around a random centre)."""
    rng = np.random.default_rng(seed)
    sizes = [inputs] + [width] * depth + [outputs]
    weights = [rng.standard_normal((a, b)) * np.sqrt(2 / a) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(b) * 0.1 for b in sizes[1:]]
    centre = rng.uniform(-0.9, 0.9, inputs)
    return bounds.Network.from_numpy(weights, biases), centre - 0.1, centre + 0.1


def unstable_relus(network, lower, upper):
    from tf1norm.bounds.box_crown import BoxBounds

    return int(BoxBounds(network, lower[None], upper[None]).unstable_counts()[0])


def run(args):
    nets = [control_network(seed) for seed in range(args.networks)]
    algorithms = args.algorithms.split(",")
    times = {a: [] for a in algorithms}
    per_net = {(a, i): [] for a in algorithms for i in range(len(nets))}
    solved = {a: 0 for a in algorithms}
    gaps = {a: 0.0 for a in algorithms}
    for round_ in range(args.rounds):
        for index, (net, lower, upper) in enumerate(nets):
            turn = (round_ + index) % len(algorithms)
            order = algorithms[turn:] + algorithms[:turn]
            for algorithm in order:
                start = time.monotonic()
                found = exact(net, lower, upper, time_limit=args.time_limit, algorithm=algorithm)
                times[algorithm].append(time.monotonic() - start)
                per_net[algorithm, index].append((times[algorithm][-1], bool(found.exact.all())))
                solved[algorithm] += bool(found.exact.all())
                gap = max(
                    np.max(found.high - found.attained_high), np.max(found.attained_low - found.low)
                )
                gaps[algorithm] = max(gaps[algorithm], gap)
                print(
                    f"round {round_} net {index} ({unstable_relus(net, lower, upper)} unstable "
                    f"ReLUs) {algorithm:5s} {times[algorithm][-1]:7.2f} s "
                    f"{'exact' if found.exact.all() else 'NOT exact'}",
                    flush=True,
                )
    total = args.rounds * args.networks
    print(
        f"\n{'algorithm':10s} {'median s/net':>12s} {'max s/net':>10s} {'exact':>8s} "
        f"{'worst gap':>10s}"
    )
    for algorithm in algorithms:
        print(
            f"{algorithm:10s} {np.median(times[algorithm]):12.2f} {max(times[algorithm]):10.2f} "
            f"{solved[algorithm]:4d}/{total:<3d} {gaps[algorithm]:10.2g}"
        )
    print(f"\n{'network':28s} " + " ".join(f"{a + ' median s':>16s}" for a in algorithms))
    for index, (net, lower, upper) in enumerate(nets):
        cells = []
        for algorithm in algorithms:
            runs = per_net[algorithm, index]
            exact_runs = sum(done for _, done in runs)
            cells.append(f"{np.median([t for t, _ in runs]):9.2f} ({exact_runs}/{len(runs)})")
        print(
            f"{f'{index} ({unstable_relus(net, lower, upper)} unstable ReLUs)':28s} "
            + " ".join(f"{c:>16s}" for c in cells)
        )
    if {"bab", "milp"} <= set(algorithms):
        ratio = np.median(times["milp"]) / np.median(times["bab"])
        print(f"median time milp / bab: {ratio:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--networks", type=int, default=4)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument(
        "--algorithms",
        default="bab,milp",
        help="comma-separated subset of bab,milp (default: both)",
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
