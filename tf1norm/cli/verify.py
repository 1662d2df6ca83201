"""``tf1norm verify``: does ``spec · y > threshold`` hold on the whole input box?

    tf1norm verify MODEL --lower L [L ...] --upper U [U ...]
                   (--top-class LABEL | --spec FILE.npy|FILE.csv) [--threshold T]
                   [--method alpha-crown|crown|interval] [--time-limit S]
                   [--input NAME --output NAME]
    tf1norm verify NET.onnx PROP.vnnlib [--timeout S] [--results FILE]

The second form decides a VNN-LIB property (``bounds.from_vnnlib``) within
``--timeout`` seconds for the whole call and writes VNN-COMP's result file:
``sat`` then the counterexample as ``((X_0 v) ... (Y_0 v) ...)``, or
``unsat``, ``timeout`` or ``error``.

Exit status: 0 proved, 3 falsified (a counterexample is printed), 4 unknown,
1 a failure, 2 a usage error, 130 Ctrl-C.
"""

import os

import numpy as np

from tf1norm.cli.errors import CommandError, UsageError

STATUS_CODES = {"proved": 0, "falsified": 3, "unknown": 4}
EPILOG = "exit status: 0 proved, 3 falsified, 4 unknown, 1 failure, 2 usage error, 130 Ctrl-C"


def add_parser(commands, common, finite_number, positive_number):
    """The ``verify`` subparser (arguments only; no TensorFlow import)."""
    parser = commands.add_parser(
        "verify",
        parents=[common],
        epilog=EPILOG,
        help="prove or falsify spec·y > threshold on an input box",
    )
    parser.add_argument("model", help=".keras, .h5, .npz, .nnet, .onnx or a TF1 checkpoint prefix")
    parser.add_argument(
        "property",
        nargs="?",
        metavar="PROP.vnnlib",
        help="a VNN-LIB property (instead of --lower/--upper and a spec)",
    )
    for flag in ("--lower", "--upper"):
        parser.add_argument(
            flag,
            type=finite_number,
            nargs="+",
            help="box corner: one value for every input, or one per input",
        )
    parser.add_argument(
        "--timeout",
        type=positive_number,
        metavar="SECONDS",
        help="with PROP.vnnlib: seconds for the whole call (default: none)",
    )
    parser.add_argument(
        "--results", metavar="FILE", help="with PROP.vnnlib: write the VNN-COMP result file here"
    )
    _add_property(parser, finite_number)
    parser.add_argument(
        "--method",
        default="alpha-crown",
        choices=["interval", "crown", "alpha-crown"],
        help="bound method tried first (default alpha-crown)",
    )
    parser.add_argument(
        "--time-limit",
        type=positive_number,
        metavar="SECONDS",
        help="then run the exact search this long on undecided rows",
    )
    parser.add_argument("--input", help="input placeholder name (TF1 checkpoints), e.g. X:0")
    parser.add_argument("--output", help="output tensor name (TF1 checkpoints)")
    return parser


def _add_property(parser, finite_number):
    """The property arguments: ``--top-class`` or ``--spec`` (unless a PROP.vnnlib is given),
    and ``--threshold``."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--top-class",
        type=int,
        metavar="LABEL",
        help="property: output LABEL stays strictly above every other output",
    )
    which.add_argument(
        "--spec",
        metavar="FILE",
        help="property matrix C [k, outputs] as .npy or .csv: C·y > threshold",
    )
    parser.add_argument(
        "--threshold",
        type=finite_number,
        default=0.0,
        help="right-hand side of C·y > threshold (default 0)",
    )


def load_spec(path, network, top_class):
    """The property matrix from ``--spec FILE`` or ``--top-class LABEL``."""
    from tf1norm import bounds

    if top_class is not None:
        if not 0 <= top_class < network.output_size or network.output_size < 2:
            raise UsageError(
                f"--top-class must be in [0, {network.output_size}) for a network "
                f"with {network.output_size} outputs; got {top_class}"
            )
        return bounds.top_class_spec(network.output_size, top_class)
    if not os.path.exists(path):
        raise UsageError(
            f"no spec file {path!r}; give a .npy or .csv matrix [k, {network.output_size}]"
        )
    matrix = np.load(path) if path.endswith(".npy") else np.loadtxt(path, delimiter=",", ndmin=2)
    try:
        return bounds.check_spec(network, matrix, "--spec")
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None


def verify(args, out):
    """Run ``bounds.verify`` and print the verdict; the exit status encodes it."""
    from tf1norm import bounds
    from tf1norm.cli import bounds as cli_bounds

    if args.property is not None:
        from tf1norm.cli.vnnlib import verify_vnnlib

        return verify_vnnlib(args, out)
    _check_box_form(args)
    network = cli_bounds.load_network(args.model, args.input, args.output)
    lower, upper = cli_bounds.input_box(network, args.lower, args.upper)
    spec = load_spec(args.spec, network, args.top_class)
    try:
        verdict = bounds.verify(
            network, lower, upper, spec, args.threshold, args.method, time_limit=args.time_limit
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    print_verdict(verdict, out)
    return STATUS_CODES[verdict.status]


def _check_box_form(args):
    """The box form needs --lower, --upper and one of --top-class/--spec."""
    missing = [
        flag for flag, value in (("--lower", args.lower), ("--upper", args.upper)) if value is None
    ]
    if args.top_class is None and args.spec is None:
        missing.append("--top-class or --spec")
    if missing:
        raise UsageError(
            f"verify needs {', '.join(missing)} (or a PROP.vnnlib file after the model)"
        )
    if args.timeout is not None or args.results is not None:
        raise UsageError(
            "--timeout and --results go with a PROP.vnnlib file; the box form takes --time-limit"
        )


def print_verdict(verdict, out):
    """The status, the decisive step, each row's margin and any counterexample."""
    print(f"{verdict.status} (by {verdict.method}, {verdict.seconds:.3g} s)", file=out)
    print(f"{'row':>4s} {'margin lower bound':>20s}", file=out)
    for row, margin in enumerate(verdict.margins):
        print(f"{row:4d} {margin:20.6g}", file=out)
    if verdict.counterexample is not None:
        values = " ".join(f"{v:.6g}" for v in verdict.counterexample)
        print(f"counterexample x: {values}", file=out)
        print(
            "margins there (C·y − threshold): "
            + " ".join(f"{v:.6g}" for v in verdict.counterexample_margins),
            file=out,
        )
