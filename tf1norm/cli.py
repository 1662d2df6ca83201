"""``tf1norm`` command line.

    tf1norm norms CHECKPOINT [--threshold T] [--all]

prints, for every weight tensor of rank >= 2 in a TF checkpoint, the smallest,
median and largest per-output-unit L2 norm (default axes: every axis but the
last, as in ``tf1norm.max_norm``), and flags units above ``--threshold``.

    tf1norm bounds MODEL --lower L [L ...] --upper U [U ...] [--method crown]
                   [--input NAME --output NAME]

prints lower and upper bounds of every output over the input box. MODEL is a
Keras model file (``.keras`` for Keras 3, ``.h5`` for tf-keras), a NumPy
network (``.npz`` with ``kernel_0, bias_0, ...`` and ``activations``), or a
TF1 checkpoint prefix whose ``.meta`` graph is traced from ``--output`` back
to ``--input``. One ``--lower``/``--upper`` value applies to every input.
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


def load_network(path, input_name=None, output_name=None):
    """A ``tf1norm.bounds.Network`` from a Keras file, an ``.npz`` or a TF1 checkpoint."""
    from tf1norm import bounds

    if path.endswith(".npz"):
        with np.load(path) as data:
            count = sum(1 for k in data.files if k.startswith("kernel_"))
            return bounds.Network.from_numpy([data[f"kernel_{i}"] for i in range(count)],
                                             [data[f"bias_{i}"] for i in range(count)],
                                             [str(a) for a in data["activations"]])
    if path.endswith(".keras"):
        import keras

        return bounds.from_keras(keras.models.load_model(path))
    if path.endswith(".h5"):
        import tf_keras

        return bounds.from_keras(tf_keras.models.load_model(path))
    if not (input_name and output_name):
        raise SystemExit("tf1norm bounds: a TF1 checkpoint needs --input and --output tensor "
                         "names, e.g. --input X:0 --output dnn/output/BiasAdd:0")
    return _network_from_checkpoint(path, input_name, output_name)


def _network_from_checkpoint(path, input_name, output_name):
    from tf1norm import bounds
    from tf1norm._tf import tf, v1

    with tf.Graph().as_default() as graph:
        v1.train.import_meta_graph(path + ".meta")
        return bounds.from_graph(graph.get_tensor_by_name(output_name),
                                 graph.get_tensor_by_name(input_name),
                                 bounds.graph_value_reader(checkpoint=path))


def _box(values, size, name):
    values = np.asarray(values, np.float64)
    if values.size == 1:
        return np.full(size, values[0])
    if values.size != size:
        raise SystemExit(f"tf1norm bounds: --{name} needs 1 or {size} values; got {values.size}")
    return values


def _print_bounds(args):
    from tf1norm import bounds

    network = load_network(args.model, args.input, args.output)
    lower = _box(args.lower, network.input_size, "lower")
    upper = _box(args.upper, network.input_size, "upper")
    if args.method == "exact":
        from tf1norm.bounds.network import check_box
        from tf1norm.bounds.exact import exact

        lower, upper = check_box(network, lower, upper)
        low, high = exact(network, lower, upper, progress=lambda done, total: print(
            f"  exact: output {done}/{total} solved", file=sys.stderr, flush=True))
    else:
        low, high = bounds.output_bounds(network, lower, upper, args.method)
    print(f"method {args.method}, {network.input_size} inputs, {network.output_size} outputs")
    print(f"{'output':>6s} {'lower':>14s} {'upper':>14s} {'width':>12s}")
    for j, (a, b) in enumerate(zip(low, high)):
        print(f"{j:6d} {a:14.6g} {b:14.6g} {b - a:12.6g}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tf1norm", description="tf1norm tools")
    commands = parser.add_subparsers(dest="command", required=True)
    ranges = commands.add_parser("bounds", help="output bounds of a network over an input box")
    ranges.add_argument("model", help=".keras, .h5, .npz or a TF1 checkpoint prefix")
    ranges.add_argument("--lower", type=float, nargs="+", required=True)
    ranges.add_argument("--upper", type=float, nargs="+", required=True)
    ranges.add_argument("--method", default="crown",
                        choices=["interval", "crown", "alpha-crown", "exact", "sample"])
    ranges.add_argument("--input", help="input placeholder name (TF1 checkpoints)")
    ranges.add_argument("--output", help="output tensor name (TF1 checkpoints)")
    norms = commands.add_parser("norms", help="per-unit weight norms of a checkpoint")
    norms.add_argument("checkpoint", help="checkpoint prefix or directory")
    norms.add_argument("--threshold", type=float, help="count units whose norm exceeds it; "
                       "exit status 2 when any does")
    norms.add_argument("--all", action="store_true", help="include optimizer slot variables")
    args = parser.parse_args(argv)
    return _print_bounds(args) if args.command == "bounds" else _print_norms(args)


if __name__ == "__main__":
    sys.exit(main())
