"""``tf1norm bounds``: load a network, compute one or more bound methods, print, plot.

The exact method runs in a worker thread so that Ctrl-C and ``--time-limit``
end the command at once even while SciPy's MILP solver is busy; its progress
(one step per output) shows as a tqdm bar on a terminal.
"""

import importlib
import os
import sys
import threading
import time

import numpy as np

from tf1norm.cli_errors import CommandError, UsageError
from tf1norm import cli_inspect

FAST_METHODS = ("interval", "crown", "alpha-crown", "sample")
METHODS = ("interval", "crown", "alpha-crown", "exact", "sample")
DESCRIPTIONS = {
    "interval": "sound bounds (interval propagation)",
    "crown": "sound bounds (CROWN linear relaxation)",
    "alpha-crown": "sound bounds (alpha-CROWN, optimized slopes)",
    "exact": "the true range (MILP), up to solver tolerance",
    "sample": ("an INNER range of sampled points and box vertices, not a bound: "
               "the true range contains it"),
}


def chosen_methods(names):
    """The methods asked for, in table order; ``all`` is every method but ``exact``."""
    wanted = set(FAST_METHODS) if "all" in names else set()
    wanted.update(name for name in names if name != "all")
    return [method for method in METHODS if method in wanted]


def _load_numpy(path):
    from tf1norm import bounds

    with np.load(path) as data:
        count = sum(1 for k in data.files if k.startswith("kernel_"))
        if not count or "activations" not in data.files:
            raise CommandError(f"{path!r} is not a tf1norm network .npz: it needs kernel_0, "
                               "bias_0, ... and activations; see Network.from_numpy")
        return bounds.Network.from_numpy([data[f"kernel_{i}"] for i in range(count)],
                                         [data[f"bias_{i}"] for i in range(count)],
                                         [str(a) for a in data["activations"]])


def _load_keras(path):
    from tf1norm import bounds

    if path.endswith(".keras"):
        import keras

        return bounds.from_keras(keras.models.load_model(path))
    import tf_keras

    return bounds.from_keras(tf_keras.models.load_model(path))


def load_network(path, input_name=None, output_name=None):
    """A ``tf1norm.bounds.Network`` from a Keras file, an ``.npz`` or a TF1 checkpoint."""
    if path.endswith((".npz", ".keras", ".h5")):
        if not os.path.exists(path):
            raise CommandError(f"no model file {path!r}; check the path")
        return _load_numpy(path) if path.endswith(".npz") else _load_keras(path)
    checkpoint = cli_inspect.resolve_checkpoint(path)
    graph = cli_inspect.import_graph(checkpoint)
    if not (input_name and output_name):
        raise UsageError(_missing_names_message(graph, path))
    return _network_from_graph(graph, checkpoint, path, input_name, output_name)


def _missing_names_message(graph, path):
    inputs = [name for name, _, _ in cli_inspect.input_candidates(graph)]
    outputs = [name for name, _, _ in cli_inspect.output_candidates(graph)]
    example = f"e.g. --input {inputs[0]} --output {outputs[0]}; " if inputs and outputs else ""
    return (f"a TF1 checkpoint needs --input and --output tensor names; {example}"
            f"list the candidates with `tf1norm tensors {path}`")


def _network_from_graph(graph, checkpoint, path, input_name, output_name):
    from tf1norm import bounds

    output = cli_inspect.get_tensor(graph, output_name, "--output", path)
    inputs = cli_inspect.get_tensor(graph, input_name, "--input", path)
    try:
        return bounds.from_graph(output, inputs, bounds.graph_value_reader(checkpoint=checkpoint))
    except (ValueError, KeyError, TypeError) as error:
        raise CommandError(f"cannot trace {output_name!r} back to {input_name!r}: "
                           f"{cli_inspect.first_line(error)}") from error


def input_box(network, lower, upper):
    """Float64 ``(lower, upper)`` of the network's input size; one value fills every input."""
    boxes = []
    for flag, values in (("--lower", lower), ("--upper", upper)):
        values = np.asarray(values, np.float64)
        if values.size not in (1, network.input_size):
            raise UsageError(f"{flag} needs 1 or {network.input_size} values (the network has "
                             f"{network.input_size} inputs); got {values.size}")
        boxes.append(np.broadcast_to(values, (network.input_size,)).copy())
    bad = np.flatnonzero(boxes[0] > boxes[1])
    if bad.size:
        raise UsageError(f"--lower must be <= --upper; input {bad[0]} has lower "
                         f"{boxes[0][bad[0]]:g} > upper {boxes[1][bad[0]]:g}; swap them")
    return boxes


def compute(network, lower, upper, methods, time_limit=None):
    """``{method: (low, high)}`` for each method in ``methods``."""
    from tf1norm import bounds

    results = {}
    for method in methods:
        if method == "exact":
            results[method] = run_exact(network, lower, upper, time_limit)
        else:
            results[method] = bounds.output_bounds(network, lower, upper, method)
    return results


def run_exact(network, lower, upper, time_limit=None):
    """Exact bounds in a worker thread, with a progress bar; Ctrl-C ends the wait at once.

    Raises:
      CommandError: the solve took longer than ``time_limit`` seconds, or failed.
    """
    from tqdm import tqdm

    print(f"exact: 2 MILPs per output for {network.output_size} outputs; Ctrl-C stops, "
          "--time-limit bounds the wait", file=sys.stderr, flush=True)
    outcome = {}
    with tqdm(total=network.output_size, desc="exact", unit="output", disable=None) as bar:
        worker = threading.Thread(target=_solve, args=(network, lower, upper, bar, outcome),
                                  name="tf1norm-exact", daemon=True)
        worker.start()
        _wait(worker, time_limit)
    if worker.is_alive():
        raise CommandError(f"exact: no result within --time-limit {time_limit:g} s "
                           f"({bar.n}/{network.output_size} outputs solved); raise "
                           "--time-limit, or use --method crown or alpha-crown for sound "
                           "bounds in seconds")
    if "error" in outcome:
        raise CommandError(f"exact: {cli_inspect.first_line(outcome['error'])}") \
            from outcome["error"]
    return outcome["value"]


def _solve(network, lower, upper, bar, outcome):
    exact_module = importlib.import_module("tf1norm.bounds.exact")  # the module, not the function
    try:
        outcome["value"] = exact_module.exact(network, lower, upper,
                                              progress=lambda done, total: bar.update(1))
    except Exception as error:  # noqa: BLE001  (re-raised in the waiting thread)
        outcome["error"] = error


def _wait(worker, time_limit):
    """Join ``worker`` in short slices, so Ctrl-C (KeyboardInterrupt) is seen at once."""
    deadline = None if time_limit is None else time.monotonic() + time_limit
    while worker.is_alive() and (deadline is None or time.monotonic() < deadline):
        worker.join(0.1 if deadline is None else min(0.1, max(deadline - time.monotonic(), 0)))


def print_results(network, results, out):
    """One table per method, each headed by what its numbers mean."""
    print(f"{network.input_size} inputs, {network.output_size} outputs", file=out)
    for method, (low, high) in results.items():
        print(f"\nmethod {method}: {DESCRIPTIONS[method]}", file=out)
        print(f"{'output':>6s} {'lower':>14s} {'upper':>14s} {'width':>12s}", file=out)
        for j, (a, b) in enumerate(zip(low, high)):
            print(f"{j:6d} {a:14.6g} {b:14.6g} {b - a:12.6g}", file=out)
