"""``tf1norm bounds``: load a network, compute one or more bound methods, print, plot.

The exact methods (``exact``: branch and bound; ``milp``) run in a worker
thread with a time limit (``--time-limit``, default ``DEFAULT_TIME_LIMIT``
seconds): on expiry they return the best sound bounds found, and the table
marks those rows "not exact (time limit)". Should the worker overrun the
limit by more than ``GRACE`` seconds, the command prints CROWN bounds, also
marked not exact, instead of waiting. Ctrl-C tells the worker to stop and
ends the command at once (exit 130). Progress (bounds settled, open gap)
shows as a tqdm bar on a terminal.
"""

import importlib
import os
import sys
import threading
import time

import numpy as np

from tf1norm.cli.errors import CommandError, UsageError
from tf1norm.cli import inspect as cli_inspect

FAST_METHODS = ("interval", "crown", "alpha-crown", "sample")
EXACT_METHODS = ("exact", "milp")
METHODS = ("interval", "crown", "alpha-crown", "exact", "milp", "sample")
DEFAULT_TIME_LIMIT = 600.0
GRACE = 2.0
DESCRIPTIONS = {
    "interval": "sound bounds (interval propagation)",
    "crown": "sound bounds (CROWN linear relaxation)",
    "alpha-crown": "sound bounds (alpha-CROWN, optimized slopes)",
    "exact": "the true range (branch and bound), up to 1e-6 relative; rows not settled in "
    "time are sound bounds marked not exact",
    "milp": "the true range (one MILP per bound), up to 1e-6 relative; rows not settled in "
    "time are sound bounds marked not exact",
    "sample": (
        "an INNER range of sampled points and box vertices, not a bound: the true range contains it"
    ),
}


def chosen_methods(names):
    """The methods asked for, in table order; ``all`` is every method but the exact ones."""
    wanted = set(FAST_METHODS) if "all" in names else set()
    wanted.update(name for name in names if name != "all")
    return [method for method in METHODS if method in wanted]


def _load_numpy(path):
    import zipfile

    from tf1norm import bounds

    if not zipfile.is_zipfile(path):
        raise CommandError(
            f"cannot read model file {path!r}: it is not a .npz archive (no zip "
            "header); write the network with numpy.savez(path, kernel_0=..., "
            "bias_0=..., activations=[...]), see Network.from_numpy"
        )
    with np.load(path) as data:
        count = sum(1 for k in data.files if k.startswith("kernel_"))
        if not count or "activations" not in data.files:
            raise CommandError(
                f"{path!r} is not a tf1norm network .npz: it needs kernel_0, "
                "bias_0, ... and activations; see Network.from_numpy"
            )
        return bounds.Network.from_numpy(
            [data[f"kernel_{i}"] for i in range(count)],
            [data[f"bias_{i}"] for i in range(count)],
            [str(a) for a in data["activations"]],
        )


def _load_keras(path):
    from tf1norm import bounds

    if path.endswith(".keras"):
        import keras

        return bounds.from_keras(keras.models.load_model(path))
    import tf_keras

    return bounds.from_keras(tf_keras.models.load_model(path))


MODEL_FILES = (".npz", ".keras", ".h5", ".nnet", ".onnx")  # anything else: a checkpoint prefix


def _load_verification_format(path):
    """A network from a ``.nnet`` or ``.onnx`` file (the formats verification benchmarks ship)."""
    from tf1norm import bounds

    try:
        return bounds.from_nnet(path) if path.endswith(".nnet") else bounds.from_onnx(path)
    except ImportError as error:
        raise CommandError(f"cannot read {path!r}: {error}") from error
    except (OSError, ValueError) as error:
        message = cli_inspect.first_line(error)
        raise CommandError(
            message if path in message else f"cannot read {path!r}: {message}"
        ) from error


def load_network(path, input_name=None, output_name=None):
    """A ``bounds.Network`` from a Keras, ``.npz``, ``.nnet``, ``.onnx`` file or TF1 checkpoint."""
    if path.endswith(MODEL_FILES) and not os.path.exists(path):
        raise CommandError(f"no model file {path!r}; check the path")
    if path.endswith((".nnet", ".onnx")):
        return _load_verification_format(path)
    if path.endswith((".npz", ".keras", ".h5")):
        try:
            return _load_numpy(path) if path.endswith(".npz") else _load_keras(path)
        except (OSError, ValueError, KeyError, EOFError) as error:  # zipfile.BadZipFile: OSError
            raise CommandError(
                f"cannot read model file {path!r} ("
                f"{cli_inspect.first_line(error)}); check that it is a complete "
                ".keras, .h5 or tf1norm .npz file"
            ) from error
    checkpoint = cli_inspect.resolve_checkpoint(path)
    graph = cli_inspect.import_graph(checkpoint)
    if not (input_name and output_name):
        raise UsageError(_missing_names_message(graph, path))
    return _network_from_graph(graph, checkpoint, path, input_name, output_name)


def _missing_names_message(graph, path):
    inputs = [name for name, _, _ in cli_inspect.input_candidates(graph)]
    outputs = [name for name, _, _ in cli_inspect.output_candidates(graph)]
    example = f"e.g. --input {inputs[0]} --output {outputs[0]}; " if inputs and outputs else ""
    return (
        f"a TF1 checkpoint needs --input and --output tensor names; {example}"
        f"list the candidates with `tf1norm tensors {path}`"
    )


def _network_from_graph(graph, checkpoint, path, input_name, output_name):
    from tf1norm import bounds

    output = cli_inspect.get_tensor(graph, output_name, "--output", path)
    inputs = cli_inspect.get_tensor(graph, input_name, "--input", path)
    try:
        return bounds.from_graph(output, inputs, bounds.graph_value_reader(checkpoint=checkpoint))
    except ValueError as error:
        if hasattr(error, "problem"):  # a truncated checkpoint, as `tf1norm norms` says it
            raise CommandError(error.problem) from None
        raise CommandError(
            f"cannot trace {output_name!r} back to {input_name!r}: {cli_inspect.first_line(error)}"
        ) from error
    except (KeyError, TypeError) as error:
        raise CommandError(
            f"cannot trace {output_name!r} back to {input_name!r}: {cli_inspect.first_line(error)}"
        ) from error


def input_box(network, lower, upper):
    """Float64 ``(lower, upper)`` of the network's input size; one value fills every input."""
    boxes = []
    for flag, values in (("--lower", lower), ("--upper", upper)):
        values = np.asarray(values, np.float64)
        if values.size not in (1, network.input_size):
            raise UsageError(
                f"{flag} needs 1 or {network.input_size} values (the network has "
                f"{network.input_size} inputs); got {values.size}"
            )
        boxes.append(np.broadcast_to(values, (network.input_size,)).copy())
    bad = np.flatnonzero(boxes[0] > boxes[1])
    if bad.size:
        raise UsageError(
            f"--lower must be <= --upper; input {bad[0]} has lower "
            f"{boxes[0][bad[0]]:g} > upper {boxes[1][bad[0]]:g}; swap them"
        )
    return boxes


def compute(network, lower, upper, methods, time_limit=None):
    """``{method: (low, high)}`` for each method in ``methods``."""
    from tf1norm import bounds

    results = {}
    for method in methods:
        if method in EXACT_METHODS:
            results[method] = run_exact(network, lower, upper, time_limit, method)
        else:
            results[method] = bounds.output_bounds(network, lower, upper, method)
    return results


def run_exact(network, lower, upper, time_limit=None, method="exact"):
    """Exact bounds in a worker thread, with a progress bar and a time limit.

    Args:
      time_limit: seconds; ``None`` means ``DEFAULT_TIME_LIMIT``.
      method: ``"exact"`` (branch and bound) or ``"milp"``.

    Returns:
      An ``ExactRange`` (rows past the time limit are sound and marked not exact).

    Raises:
      KeyboardInterrupt: Ctrl-C (the worker is told to stop first).
      CommandError: the solver failed.
    """
    from tqdm import tqdm

    limit = DEFAULT_TIME_LIMIT if time_limit is None else time_limit
    print(
        f"{method}: {_strategy(network, method)} for {network.output_size} outputs; "
        f"time limit {limit:g} s (--time-limit), Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    outcome, stop = {}, threading.Event()
    with tqdm(total=2 * network.output_size, desc=method, unit="bound", disable=None) as bar:
        options = dict(
            time_limit=limit,
            progress=bar,
            should_stop=stop.is_set,
            algorithm="milp" if method == "milp" else "auto",
        )
        worker = threading.Thread(
            target=_solve,
            args=(network, lower, upper, options, outcome),
            name="tf1norm-exact",
            daemon=True,
        )
        worker.start()
        try:
            _wait(worker, limit + GRACE)
        finally:
            stop.set()
    if worker.is_alive():
        return _fallback(network, lower, upper, limit)
    if "error" in outcome:
        raise CommandError(f"{method}: {cli_inspect.first_line(outcome['error'])}") from outcome[
            "error"
        ]
    return outcome["value"]


def _strategy(network, method):
    if method == "milp" or network.input_size > 16:
        return "one MILP per bound"
    return "branch and bound on the input box (CROWN bounds, MILP leaves)"


def _fallback(network, lower, upper, limit):
    """CROWN bounds marked not exact, when the worker overran the time limit."""
    from tf1norm import bounds

    low, high = bounds.output_bounds(network, lower, upper, "crown")
    size = network.output_size
    print(
        f"exact: still running {GRACE:g} s after the time limit; showing CROWN bounds",
        file=sys.stderr,
        flush=True,
    )
    return bounds.ExactRange(
        low, high, exact=np.zeros(size, bool), status=["time limit"] * size, seconds=limit + GRACE
    )


def _solve(network, lower, upper, options, outcome):
    exact_module = importlib.import_module("tf1norm.bounds.exact")  # the module, not the function
    try:
        outcome["value"] = exact_module.exact(network, lower, upper, **options)
    except Exception as error:  # noqa: BLE001  (re-raised in the waiting thread)
        outcome["error"] = error


def _wait(worker, time_limit):
    """Join ``worker`` in short slices, so Ctrl-C (KeyboardInterrupt) is seen at once."""
    deadline = None if time_limit is None else time.monotonic() + time_limit
    while worker.is_alive() and (deadline is None or time.monotonic() < deadline):
        worker.join(0.1 if deadline is None else min(0.1, max(deadline - time.monotonic(), 0)))


def print_results(network, results, out):
    """One table per method, each headed by what its numbers mean.

    Exact methods add a column saying, per row, "exact" or why not
    ("not exact (time limit)").
    """
    print(f"{network.input_size} inputs, {network.output_size} outputs", file=out)
    for method, result in results.items():
        low, high = result
        status = getattr(result, "status", None)
        print(f"\nmethod {method}: {DESCRIPTIONS[method]}", file=out)
        print(
            f"{'output':>6s} {'lower':>14s} {'upper':>14s} {'width':>12s}"
            + ("  status" if status is not None else ""),
            file=out,
        )
        for j, (a, b) in enumerate(zip(low, high)):
            print(f"{j:6d} {a:14.6g} {b:14.6g} {b - a:12.6g}" + _label(status, j), file=out)


def _label(status, row):
    if status is None:
        return ""
    return "  exact" if status[row] == "exact" else f"  not exact ({status[row]})"
