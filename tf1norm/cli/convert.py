"""``tf1norm convert-checkpoint``: a TF1 name-based checkpoint as an object-based one.

    tf1norm convert-checkpoint TF1_CHECKPOINT OUTPUT_PREFIX [--exclude REGEX ...]
                               [--spectral-norm-names {sn_gan,tf_gan}]

Every variable of the TF1 checkpoint (weights, ``sn_u``/``wn_g``, optimizer
slots, ``global_step``) is written under its TF1 name into a TF2
``tf.train.Checkpoint`` at ``OUTPUT_PREFIX``; a TF2 port of the model reads it
with ``tf.train.Checkpoint(variables=tf1norm.migration.tf1_variable_map(...))
.read(prefix)``. ``--spectral-norm-names`` reads a checkpoint of other
spectral-norm code (taki0112's SN-GAN ``scope/u``, TF-GAN's
``.../spectral_norm_u``) and writes its vectors as ``<kernel>/sn_u``, where a
``spectral_norm_getter`` port looks for them. Exit status 0 written, 1 a
failure (unreadable checkpoint, nothing to write), 2 a usage error.
"""

import os
import sys
import warnings

from tf1norm.cli.errors import CommandError, UsageError


def add_parser(commands, common, regex):
    """The ``convert-checkpoint`` subparser (arguments only; no TensorFlow import)."""
    parser = commands.add_parser(
        "convert-checkpoint",
        parents=[common],
        help="write a TF1 checkpoint as a TF2 object-based checkpoint keyed by TF1 names",
    )
    parser.add_argument("checkpoint", help="TF1 checkpoint prefix, or its directory (latest)")
    parser.add_argument(
        "output",
        metavar="OUTPUT_PREFIX",
        help="where to write, e.g. tf2/model (gets .index and .data-* files)",
    )
    parser.add_argument(
        "--exclude",
        type=regex,
        action="append",
        default=[],
        metavar="REGEX",
        help="leave out variables whose name matches (re.search); repeatable, "
        "e.g. --exclude '_power$'",
    )
    parser.add_argument(
        "--spectral-norm-names",
        choices=["sn_gan", "tf_gan"],
        default=None,
        help="the checkpoint was written by other spectral-norm code: write its "
        "power-iteration vectors as <kernel>/sn_u (sn_gan: taki0112's scope/u; "
        "tf_gan: TF-GAN's .../spectral_normalize/spectral_norm/spectral_norm_u)",
    )


def convert(args, out):
    """Convert; print one line per variable written and the prefix. Returns 0."""
    from tf1norm._src import checkpoint_files as _checkpoint_files
    from tf1norm.tf2 import migration_checkpoints

    directory = os.path.dirname(os.path.abspath(args.output))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise UsageError(
            f"OUTPUT_PREFIX {args.output!r}: {directory!r} is a file, not a "
            "folder; pass e.g. tf2/model."
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", _checkpoint_files.StaleCheckpointFilesWarning)
            prefix, names = migration_checkpoints.convert_checkpoint(
                args.checkpoint,
                args.output,
                [p.pattern for p in args.exclude],
                spectral_norm_names=args.spectral_norm_names,
            )
    except ValueError as error:  # a CheckpointError's problem reads without the function
        raise CommandError(
            getattr(error, "problem", None) or str(error).replace("convert_checkpoint: ", "")
        ) from None
    for warning in caught:  # the CLI hides Python warnings (unless --verbose); these it reports
        if issubclass(warning.category, _checkpoint_files.StaleCheckpointFilesWarning):
            text = str(warning.message).replace("convert_checkpoint: ", "")
            print(f"tf1norm convert-checkpoint: {text}", file=sys.stderr)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    for name in names:
        print(f"  {name}", file=out)
    print(f"wrote {len(names)} variables to {prefix}", file=out)
    return 0
