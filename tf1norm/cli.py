"""``tf1norm`` command line.

    tf1norm norms CHECKPOINT [--threshold T] [--all]

prints, for every weight tensor of rank >= 2 in a TF checkpoint, the smallest,
median and largest per-output-unit L2 norm (default axes: every axis but the
last, as in ``tf1norm.max_norm``), and flags units above ``--threshold``.
"""

import argparse
import sys

import numpy as np


def _unit_norms(value):
    axes = tuple(range(max(value.ndim - 1, 1)))
    return np.sqrt(np.sum(np.square(value.astype(np.float64)), axis=axes)).ravel()


def norms_table(checkpoint, threshold=None, include_slots=False):
    """Rows ``(name, shape, min, median, max, n_over)`` for a checkpoint's kernels.

    Optimizer slots (names containing ``/Momentum``, ``/Adam`` ...) are skipped
    unless ``include_slots``.
    """
    from tf1norm._tf import tf

    reader = tf.train.load_checkpoint(checkpoint)
    rows = []
    for name, shape in sorted(reader.get_variable_to_shape_map().items()):
        is_slot = "/" in name and name.rsplit("/", 1)[-1][:1].isupper()
        if len(shape) < 2 or (is_slot and not include_slots):
            continue
        norms = _unit_norms(reader.get_tensor(name))
        over = int(np.sum(norms > threshold * (1 + 1e-6))) if threshold else 0
        rows.append((name, tuple(shape), norms.min(), np.median(norms), norms.max(), over))
    return rows


def _print_norms(args):
    rows = norms_table(args.checkpoint, args.threshold, args.all)
    if not rows:
        print(f"no weight tensors of rank >= 2 in {args.checkpoint}")
        return 1
    print(f"{'variable':40s} {'shape':>16s} {'min':>9s} {'median':>9s} {'max':>9s}  over")
    for name, shape, low, mid, high, over in rows:
        print(f"{name:40s} {str(shape):>16s} {low:9.4f} {mid:9.4f} {high:9.4f}  {over}")
    return 2 if any(row[-1] for row in rows) else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tf1norm", description="tf1norm tools")
    commands = parser.add_subparsers(dest="command", required=True)
    norms = commands.add_parser("norms", help="per-unit weight norms of a checkpoint")
    norms.add_argument("checkpoint", help="checkpoint prefix or directory")
    norms.add_argument("--threshold", type=float, help="count units whose norm exceeds it; "
                       "exit status 2 when any does")
    norms.add_argument("--all", action="store_true", help="include optimizer slot variables")
    args = parser.parse_args(argv)
    return _print_norms(args)


if __name__ == "__main__":
    sys.exit(main())
