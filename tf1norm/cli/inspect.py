"""What the command line reads from checkpoints and graphs, with errors that name the fix.

Everything here imports TensorFlow lazily, inside the functions, so that
``tf1norm --help`` stays fast.
"""

import difflib
import os
import re

import numpy as np

from tf1norm._src.messages import first_line
from tf1norm.cli.errors import CommandError, UsageError

_CHECKPOINT_SUFFIXES = re.compile(r"\.(index|meta|data-\d+-of-\d+)$")
_LINEAR_OPS = {"BiasAdd", "MatMul", "Add", "AddV2"}
_HEAD_OPS = {
    "Softmax",
    "LogSoftmax",
    "Sigmoid",
    "ArgMax",
    "SoftmaxCrossEntropyWithLogits",
    "SparseSoftmaxCrossEntropyWithLogits",
    "SigmoidCrossEntropyWithLogits",
    "TopKV2",
}
_PASS_THROUGH_OPS = {"Identity", "Reshape", "StopGradient", "Squeeze"}
_TRAINING_SCOPES = re.compile(r"^(gradients(_\d+)?|save(_\d+)?)/|_grad/")


def resolve_checkpoint(path):
    """The checkpoint prefix for a prefix, a directory, or a ``.index``/``.meta``/data file.

    Raises:
      CommandError: nothing at ``path`` is a checkpoint.
    """
    from tf1norm._src.compat import tf

    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise CommandError(
                f"no checkpoint in directory {path!r}: it has no `checkpoint` "
                "file; pass a prefix such as DIR/model.ckpt-1000 (the file "
                "name before .index)"
            )
        return latest
    prefix = _CHECKPOINT_SUFFIXES.sub("", path)
    if not os.path.exists(prefix + ".index"):
        raise CommandError(
            f"no checkpoint at {path!r}: {prefix + '.index'!r} does not exist; "
            "pass the prefix (the file name before .index) or the directory"
        )
    return prefix


def read_variables(checkpoint):
    """``(reader, [(name, shape, dtype name)])`` for a checkpoint, variables sorted by name."""
    from tf1norm._src import checks as _checks

    try:
        reader = _checks.checkpoint_reader(checkpoint, "tf1norm")
    except _checks.CheckpointError as error:
        raise CommandError(error.problem) from None
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    return reader, [(name, tuple(shapes[name]), dtypes[name].name) for name in sorted(shapes)]


def _unit_norms(value):
    axes = tuple(range(max(value.ndim - 1, 1)))
    return np.sqrt(np.sum(np.square(value.astype(np.float64)), axis=axes)).ravel()


def is_slot(name):
    """Optimizer slot variables end in a capitalized part: ``hidden1/kernel/Momentum``."""
    return "/" in name and name.rsplit("/", 1)[-1][:1].isupper()


def kernel_norms(checkpoint, include_slots=False, exclude=()):
    """``{name: per-unit L2 norms}`` of the rank >= 2 variables of a checkpoint prefix.

    ``exclude`` holds compiled regular expressions; a variable whose name any of
    them matches (``re.search``) is left out.
    """
    reader, variables = read_variables(checkpoint)
    norms = {}
    for name, shape, _ in variables:
        if len(shape) < 2 or (is_slot(name) and not include_slots):
            continue
        if not any(pattern.search(name) for pattern in exclude):
            norms[name] = (shape, _unit_norms(read_tensor(reader, name, checkpoint)))
    return norms


def read_tensor(reader, name, checkpoint):
    """``reader.get_tensor(name)``; a truncated or corrupt data file is a CommandError."""
    from tf1norm._src import checks as _checks

    try:
        return _checks.checkpoint_tensor(reader, name, checkpoint, "tf1norm")
    except _checks.CheckpointError as error:
        raise CommandError(error.problem) from None


def norms_table(checkpoint, threshold=None, include_slots=False, exclude=()):
    """Rows ``(name, shape, min, median, max, n_over)`` for a checkpoint's kernels."""
    rows = []
    for name, (shape, norms) in kernel_norms(checkpoint, include_slots, exclude).items():
        over = int(np.sum(norms > threshold * (1 + 1e-6))) if threshold else 0
        rows.append((name, shape, norms.min(), np.median(norms), norms.max(), over))
    return rows


def global_step(checkpoint):
    """The ``global_step`` stored in a checkpoint, else the ``-N`` suffix, else None."""
    reader, variables = read_variables(checkpoint)
    if any(name == "global_step" for name, _, _ in variables):
        return int(read_tensor(reader, "global_step", checkpoint))
    match = re.search(r"-(\d+)$", checkpoint)
    return int(match[1]) if match else None


def import_graph(path):
    """A new ``tf.Graph`` holding the ``.meta`` graph of a checkpoint prefix or ``.meta`` file."""
    from tf1norm._src.compat import tf, v1

    meta = path if path.endswith(".meta") else _CHECKPOINT_SUFFIXES.sub("", path) + ".meta"
    if not os.path.exists(meta):
        raise CommandError(
            f"no graph file {meta!r}: the checkpoint was saved without its "
            "MetaGraph; save with tf.compat.v1.train.Saver (write_meta_graph"
            "=True, the default) or pass a .keras/.h5/.npz model"
        )
    graph = tf.Graph()
    with graph.as_default():
        try:
            v1.train.import_meta_graph(meta, clear_devices=True)
        except (tf.errors.OpError, OSError, ValueError, KeyError) as error:
            raise CommandError(
                f"cannot import graph {meta!r} ({first_line(error)}); it may "
                "use ops of a library that is not imported here"
            ) from error
    return graph


def _forward_ops(graph):
    """Ops computed from a placeholder, outside gradient and saver scopes, in graph order."""
    reached = {
        op.name
        for op in graph.get_operations()
        if op.type in ("Placeholder", "PlaceholderWithDefault")
    }
    pending = list(reached)
    while pending:
        for tensor in graph.get_operation_by_name(pending.pop()).outputs:
            for consumer in tensor.consumers():
                if consumer.name not in reached and not _TRAINING_SCOPES.search(consumer.name):
                    reached.add(consumer.name)
                    pending.append(consumer.name)
    return [op for op in graph.get_operations() if op.name in reached]


def _consumers(op, forward):
    return [c for t in op.outputs for c in t.consumers() if c.name in forward]


def _feeds_a_head(op, forward, depth=3):
    for consumer in _consumers(op, forward):
        if consumer.type in _HEAD_OPS:
            return True
        if (
            consumer.type in _PASS_THROUGH_OPS
            and depth
            and _feeds_a_head(consumer, forward, depth - 1)
        ):
            return True
    return False


def input_candidates(graph):
    """``[(tensor name, shape, dtype)]`` of the graph's placeholders (not the saver's)."""
    return [
        (op.outputs[0].name, op.outputs[0].shape, op.outputs[0].dtype.name)
        for op in graph.get_operations()
        if op.type in ("Placeholder", "PlaceholderWithDefault")
        and not _TRAINING_SCOPES.search(op.name)
    ]


def output_candidates(graph):
    """Linear ops (MatMul, BiasAdd, Add) that feed a softmax/loss/argmax, or feed nothing.

    Only ops computed from a placeholder count (not initializers), and gradient
    and saver scopes are skipped: what is left are the logits a user usually
    wants to bound.
    """
    forward_ops = [op for op in _forward_ops(graph) if op.outputs]
    forward = {op.name for op in forward_ops}
    return [
        (op.outputs[0].name, op.outputs[0].shape, op.outputs[0].dtype.name)
        for op in forward_ops
        if _is_batch_of_vectors(op) and (_feeds_a_head(op, forward) or not _consumers(op, forward))
    ]


def _is_batch_of_vectors(op):
    """A linear op with a float output of rank >= 2 (a loss or a scalar is not an output)."""
    tensor = op.outputs[0]
    return (
        op.type in _LINEAR_OPS
        and tensor.dtype.is_floating
        and (tensor.shape.rank is None or tensor.shape.rank >= 2)
    )


def get_tensor(graph, name, flag, path):
    """``graph``'s tensor ``name``, or a UsageError listing close names and ``tf1norm tensors``."""
    try:
        return graph.get_tensor_by_name(name)
    except (KeyError, ValueError) as error:
        names = [t.name for op in graph.get_operations() for t in op.outputs]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise UsageError(
            f"{flag} {name!r} is not a tensor of {path!r}; {hint}list the "
            f"candidates with `tf1norm tensors {path}`"
        ) from error
