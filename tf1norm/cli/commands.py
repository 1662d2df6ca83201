"""The ``tf1norm`` subcommands; each takes the parsed arguments and an output stream.

Each returns the exit status; errors are raised as ``UsageError`` (status 2)
or ``CommandError`` (status 1) for ``tf1norm.cli.app.main`` to print.
"""

import glob
import os

from tf1norm.cli import bounds as cli_bounds
from tf1norm.cli import inspect as cli_inspect
from tf1norm.cli.errors import CommandError, UsageError


def norms(args, out):
    """Print min/median/max unit norms per kernel; status 1 if any unit exceeds --threshold."""
    checkpoint = cli_inspect.resolve_checkpoint(args.checkpoint)
    rows = cli_inspect.norms_table(checkpoint, args.threshold, args.all, args.exclude)
    if not rows:
        raise CommandError(
            f"no weight tensors of rank >= 2 in {checkpoint!r}"
            + (" after --exclude; loosen the patterns" if args.exclude else "")
        )
    print(f"{'variable':40s} {'shape':>16s} {'min':>9s} {'median':>9s} {'max':>9s}  over", file=out)
    for name, shape, low, mid, high, over in rows:
        print(f"{name:40s} {str(shape):>16s} {low:9.4f} {mid:9.4f} {high:9.4f}  {over}", file=out)
    flagged = [row[0] for row in rows if row[-1]]
    if flagged:
        print(
            f"{sum(row[-1] for row in rows)} units above --threshold {args.threshold:g} in "
            f"{', '.join(flagged)} (leave a layer out with --exclude REGEX)",
            file=out,
        )
    return 1 if flagged else 0


def _print_tensor_rows(title, rows, out):
    print(f"{title}:", file=out)
    for name, shape, dtype in rows:
        print(f"  {name:50s} {str(shape):>18s}  {dtype}", file=out)
    if not rows:
        print("  (none found)", file=out)


def tensors(args, out):
    """Print a checkpoint's variables and, from its graph, candidate input/output tensors."""
    path = args.checkpoint
    checkpoint = None if path.endswith(".meta") else cli_inspect.resolve_checkpoint(path)
    if checkpoint is not None:
        _, variables = cli_inspect.read_variables(checkpoint)
        _print_tensor_rows(f"variables in {checkpoint}", variables, out)
    meta = path if checkpoint is None else checkpoint + ".meta"
    if checkpoint is None and not os.path.isfile(meta):
        raise CommandError(
            f"no graph file {meta!r}; pass an existing .meta file, a checkpoint "
            "prefix or its directory"
        )
    if not os.path.exists(meta):
        print(f"no {meta} graph file: input/output candidates need the MetaGraph", file=out)
        return 0
    graph = cli_inspect.import_graph(meta)
    shapes = [
        (n, s.as_list() if s.rank is not None else "?", d)
        for n, s, d in cli_inspect.input_candidates(graph)
    ]
    _print_tensor_rows("inputs (placeholders, for bounds --input)", shapes, out)
    shapes = [
        (n, s.as_list() if s.rank is not None else "?", d)
        for n, s, d in cli_inspect.output_candidates(graph)
    ]
    _print_tensor_rows(
        "outputs (linear ops feeding a softmax/loss/argmax or nothing, for bounds --output)",
        shapes,
        out,
    )
    return 0


def bounds(args, out):
    """Print (and optionally plot) output bounds of a network over an input box."""
    network = cli_bounds.load_network(args.model, args.input, args.output)
    _check_finite(network, args.model)
    lower, upper = cli_bounds.input_box(network, args.lower, args.upper)
    methods = cli_bounds.chosen_methods(args.method)
    if set(methods) & set(cli_bounds.EXACT_METHODS):
        from tf1norm.bounds.exact import solver_box_problem

        problem = solver_box_problem(lower, upper, ("--lower", "--upper"))
        if problem:
            raise UsageError(
                problem.replace("the crown or interval method", "--method crown or interval")
            )
    results = cli_bounds.compute(network, lower, upper, methods, args.time_limit)
    cli_bounds.print_results(network, results, out)
    if args.plot:
        from tf1norm.cli import plots

        plots.plot_bounds(results, args.plot)
        print(f"\nwrote {args.plot}", file=out)
    return 0


def _check_finite(network, path):
    from tf1norm.bounds.network import check_finite_layers

    try:
        check_finite_layers(network)
    except ValueError as error:
        raise CommandError(f"{path!r}: {error}") from None


def checkpoints_in_step_order(paths):
    """Checkpoint prefixes for ``paths`` (prefixes, or directories: all of their checkpoints)."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            prefixes = [p[: -len(".index")] for p in glob.glob(os.path.join(path, "*.index"))]
            if not prefixes:
                raise CommandError(
                    f"no checkpoints (*.index files) in directory {path!r}; "
                    "pass a training logdir or checkpoint prefixes"
                )
            found.extend(prefixes)
        else:
            found.append(cli_inspect.resolve_checkpoint(path))
    steps = {prefix: cli_inspect.global_step(prefix) for prefix in found}
    return sorted(dict.fromkeys(found), key=lambda p: (steps[p] is None, steps[p] or 0)), steps


def plot(args, out):
    """``plot norms``: per-layer unit-norm distributions over checkpoints, to a PNG."""
    from tqdm import tqdm

    from tf1norm.cli import plots

    prefixes, steps = checkpoints_in_step_order(args.paths)
    series = []
    for prefix in tqdm(prefixes, desc="checkpoints", disable=None):
        norms = cli_inspect.kernel_norms(prefix, exclude=args.exclude)
        label = str(steps[prefix]) if steps[prefix] is not None else os.path.basename(prefix)
        series.append((label, {name: values for name, (_, values) in norms.items()}))
    if not any(norms for _, norms in series):
        raise CommandError(
            "no weight tensors of rank >= 2 in these checkpoints"
            + (" after --exclude" if args.exclude else "")
        )
    plots.plot_norms(series, args.output, threshold=args.threshold)
    print(f"wrote {args.output}: {len(series)} checkpoints", file=out)
    return 0
