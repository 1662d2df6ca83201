"""Graph-construction-time validation shared by every public factory.

Each check raises ``TypeError`` or ``ValueError`` with a message of the form
``"<function>: `<argument>` <what is wrong>; got <value>. <how to fix>"``.
"""

import math
import numbers
import os
import re

import numpy as np

from tf1norm._src import bits as _bits
from tf1norm._src.messages import first_line
from tf1norm._src.compat import tf

_FLOAT_NAMES = "float16, bfloat16, float32 or float64"


def _fail(error, fn, arg, problem, got, fix):
    huge = isinstance(got, int) and abs(got) >= 10**60
    shown = f"an int of {len(str(abs(got)))} digits" if huge else repr(got)
    if len(shown) > 120:
        shown = shown[:100] + "..."
    return error(f"{fn}: `{arg}` {problem}; got {shown}. {fix}")


def float_tensor(x, fn, arg="w"):
    """``x`` as a floating-point tensor (variables are read) or TypeError."""
    if x is None or isinstance(x, (str, bytes)):
        raise _fail(
            TypeError,
            fn,
            arg,
            "must be a floating-point tensor",
            x,
            f"Pass a {_FLOAT_NAMES} tensor or variable.",
        )
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise _fail(
            TypeError,
            fn,
            arg,
            f"must have a floating dtype ({_FLOAT_NAMES})",
            x.dtype.name,
            f"Cast it first, e.g. tf.cast({arg}, tf.float32).",
        )
    return x


def static_rank(x, fn, arg="w", minimum=1):
    """The static rank of ``x``; ValueError when unknown or below ``minimum``."""
    rank = x.shape.rank
    if rank is None:
        raise _fail(
            ValueError,
            fn,
            arg,
            "needs a statically known rank",
            str(x.shape),
            "Give the tensor a static shape, e.g. with tf.ensure_shape.",
        )
    if rank < minimum:
        fix = (
            "Pass the weight tensor itself, not a scalar."
            if minimum == 1
            else f"Pass a matrix or a kernel; reshape a vector first, e.g. "
            f"tf.reshape({arg}, [1, -1])."
        )
        raise _fail(ValueError, fn, arg, f"must have rank >= {minimum}", rank, fix)
    return rank


def static_dimensions(x, axes, fn, arg="w"):
    """ValueError unless the sizes of ``axes`` of ``x`` are known when the graph is built."""
    unknown = [a for a in axes if x.shape[a] is None]
    if unknown:
        raise _fail(
            ValueError,
            fn,
            arg,
            f"needs a statically known size on axes {unknown} (the output units)",
            str(x.shape),
            f"Give it a static shape, e.g. tf.ensure_shape({arg}, [..., units]).",
        )


def positive_number(value, fn, arg, allow_zero=False):
    """A finite Python number > 0 (>= 0 with ``allow_zero``), or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(
            TypeError, fn, arg, "must be a Python number", value, "Pass a float such as 1.0."
        )
    if not _fits_a_float(value):
        raise _fail(ValueError, fn, arg, "must be finite", value, "Pass a finite float.")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise _fail(ValueError, fn, arg, f"must be {bound}", value, f"Pass a value {bound}.")
    return float(value)


def _fits_a_float(value):
    """True for a finite number that converts to a float (10**400 does not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def positive_int(value, fn, arg):
    """A Python int >= 1, or ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise _fail(ValueError, fn, arg, "must be an int >= 1", value, "Pass e.g. 1.")
    return int(value)


def positive_scalar(value, fn, arg):
    """A positive threshold: a Python number, or a scalar float tensor.

    Tensors whose value is known at graph-construction time are checked like
    numbers; others (placeholders, schedules, variables) are returned through
    a ``tf.debugging.Assert`` (a control dependency of the returned tensor), so
    a NaN, infinite, zero or negative value fed at run time fails the run with
    the same message instead of writing NaN or sign-flipped weights.
    """
    if isinstance(value, (numbers.Real, np.floating, np.integer)):
        return positive_number(value, fn, arg)
    tensor = float_tensor(value, fn, arg)
    if tensor.shape.rank not in (None, 0):
        raise _fail(
            ValueError,
            fn,
            arg,
            "must be a scalar",
            str(tensor.shape),
            "Pass one threshold for the whole tensor.",
        )
    static = tf.get_static_value(tensor)
    if static is not None:
        positive_number(float(static), fn, arg)
        return tensor
    return asserted_positive(tensor, fn, arg)


def asserted_positive(tensor, fn, arg):
    """``tensor`` made to depend on a run-time check that it is finite and > 0."""
    message = (
        f"{fn}: `{arg}` must be finite and > 0 (checked at run time, the value is fed "
        "or computed); got"
    )
    with tf.name_scope(f"check_{arg}"):
        ok = _bits.is_positive(tensor)  # a subnormal threshold is > 0 (``tensor > 0`` says no)
        check = tf.debugging.Assert(tf.reduce_all(ok), [message, tensor])
        with tf.control_dependencies([check]):
            return tf.identity(tensor)


def string(value, fn, arg):
    """A non-empty str, or TypeError/ValueError."""
    if not isinstance(value, str):
        raise _fail(
            TypeError,
            fn,
            arg,
            "must be a string",
            value,
            'Pass a collection name such as "max_norm".',
        )
    if not value:
        raise _fail(ValueError, fn, arg, "must not be empty", value, "Pass a non-empty name.")
    return value


def scalar_at_run_time(x, fn, arg):
    """``x`` (of unknown rank) made to depend on a run-time check that it is a scalar."""
    if x.shape.rank is not None:
        return x
    message = (
        f"{fn}: `{arg}` must be a scalar (its rank is unknown when the graph is built, "
        "so it is checked at run time). Reduce it first, e.g. tf.reduce_mean(loss); got "
        "shape"
    )
    with tf.name_scope(f"check_{re.sub(r'[^A-Za-z0-9_]', '', arg)}_is_scalar"):
        check = tf.debugging.Assert(tf.equal(tf.rank(x), 0), [message, tf.shape(x)])
        with tf.control_dependencies([check]):
            return tf.identity(x)


def regular_expression(pattern, fn, arg):
    """``pattern`` compiled, or ValueError naming the pattern and the regex error."""
    try:
        return re.compile(pattern)
    except (TypeError, re.error) as error:
        raise _fail(
            ValueError,
            fn,
            arg,
            f"holds an invalid regular expression ({error})",
            pattern,
            "Escape special characters, e.g. re.escape(name).",
        ) from None


def row_vector(u, size, fn, arg):
    """``u`` as a floating tensor of ``size`` elements (shape ``[1, size]`` or ``[size]``)."""
    u = float_tensor(u, fn, arg)
    count = u.shape.num_elements()
    if u.shape.rank not in (None, 1, 2) or (
        count is not None and size is not None and count != size
    ):
        raise _fail(
            ValueError,
            fn,
            arg,
            f"must have shape [1, {size}] (one entry per output unit)",
            str(u.shape),
            f"Create it with shape [1, {size}].",
        )
    return u


def fraction_below_one(value, fn, arg, hint):
    """A Python number in [0, 1) (momentum, moving-average decay), or TypeError/ValueError."""
    value = positive_number(value, fn, arg, allow_zero=True)
    if value >= 1:
        raise ValueError(f"{fn}: `{arg}` must be in [0, 1); got {value!r}. {hint}")
    return value


def scalar_loss(loss, fn, arg="loss"):
    """``loss`` as a scalar floating tensor (TypeError/ValueError), checked at run time if
    its rank is unknown; a vector would silently train on its sum."""
    loss = float_tensor(loss, fn, arg)
    if loss.shape.rank not in (None, 0):
        raise _fail(
            ValueError,
            fn,
            arg,
            "must be a scalar (a per-example loss would train on its sum)",
            str(loss.shape),
            "Reduce it first, e.g. tf.reduce_mean(loss).",
        )
    return scalar_at_run_time(loss, fn, arg)


def not_a_class(optimizer, fn, arg="optimizer"):
    """TypeError when ``optimizer`` is a class (``AdamOptimizer``) rather than an object."""
    if isinstance(optimizer, type):
        raise TypeError(
            f"{fn}: `{arg}` must be an optimizer object, not its class; got the "
            f"class {optimizer.__name__}. Create one, e.g. "
            f"{optimizer.__name__}(learning_rate=0.001)."
        )
    return optimizer


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; ``problem`` is the message without the function."""

    def __init__(self, fn, arg, problem):
        super().__init__(f"{fn}: `{arg}`: {problem}")
        self.problem = problem


def checkpoint_reader(path, fn, arg="path"):
    """A reader of the checkpoint at ``path`` (a prefix, or a folder: its latest one)."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise _fail(
            TypeError,
            fn,
            arg,
            "must be a checkpoint prefix or directory",
            path,
            "Pass the prefix Saver.save returned, e.g. 'model.ckpt-1000'.",
        )
    path = os.fspath(path)
    try:
        found = tf.train.latest_checkpoint(path) if tf.io.gfile.isdir(path) else path
        return tf.train.load_checkpoint(found or path)
    except (ValueError, OSError, tf.errors.OpError) as error:
        cause = (
            "no checkpoint files start with that prefix"
            if isinstance(error, tf.errors.NotFoundError)
            else first_line(error)
        )
        raise CheckpointError(
            fn,
            arg,
            f"cannot read checkpoint {path!r} ({cause}); pass "
            "the prefix Saver.save returned (e.g. 'model.ckpt-1000') or its "
            "directory, and check that its .index and .data files are "
            "complete",
        ) from None


def checkpoint_tensor(reader, name, path, fn, arg="path"):
    """``reader.get_tensor(name)``; a truncated or corrupt .data file is a CheckpointError."""
    try:
        return reader.get_tensor(name)
    except (tf.errors.OpError, OSError, ValueError, IndexError) as error:
        raise CheckpointError(
            fn,
            arg,
            f"cannot read {name!r} from checkpoint {path!r} "
            f"({first_line(error)}); its .data file may be truncated or "
            "corrupt: copy it again or pick another checkpoint",
        ) from None
