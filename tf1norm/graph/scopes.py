"""``slim_scope``: constraints, regularizers and reparameterizations for whole models.

One custom getter does it all, so it covers every layer that creates its
weights with ``get_variable``: tf-slim ``fully_connected``, ``conv2d``,
``conv2d_transpose``, ``separable_conv2d`` and ``tf.compat.v1.layers``
``dense``/``conv*`` alike. Regularizers are passed to ``get_variable`` through
its ``regularizer=`` argument (so losses land in ``REGULARIZATION_LOSSES`` once,
and max-norm projections are recorded for ``create_train_op``); weight or
spectral normalization wraps the variable that comes back.
"""

import contextlib

from tf1norm._src import checks as _checks
from tf1norm._src import eager
from tf1norm._src.compat import v1
from tf1norm.graph.getters import DEFAULT_FILTER, compile_filter, spectral_norm_getter
from tf1norm.graph.getters import weight_norm_getter
from tf1norm.graph.regularizers import l2_regularizer, max_norm_regularizer


def _combine(regularizers):
    regularizers = [r for r in regularizers if r is not None]
    if not regularizers:
        return None

    def combined(weights):
        losses = [loss for loss in (r(weights) for r in regularizers) if loss is not None]
        return losses[0] if len(losses) == 1 else (sum(losses) if losses else None)

    if any(getattr(r, eager._MARK, False) for r in regularizers):
        eager.records_on_creation(combined)
    return combined


def _regularizing_getter(pattern, regularizer):
    def custom_getter(getter, name, *args, **kwargs):
        shape = kwargs.get("shape")
        if (
            regularizer is not None
            and pattern.search(name)
            and shape is not None
            and len(shape) >= 2
        ):
            kwargs["regularizer"] = _combine([kwargs.get("regularizer"), regularizer])
        return getter(name, *args, **kwargs)

    return custom_getter


def _compose(outer, inner):
    """A custom getter that runs ``outer`` around ``inner`` around the real getter."""
    if inner is None:
        return outer

    def custom_getter(getter, name, *args, **kwargs):
        def next_getter(next_name, *next_args, **next_kwargs):
            return inner(getter, next_name, *next_args, **next_kwargs)

        return outer(next_getter, name, *args, **kwargs)

    return custom_getter


@contextlib.contextmanager
def slim_scope(
    max_norm=None, l2=None, weight_norm=False, spectral_norm=None, name_filter=DEFAULT_FILTER
):
    """Apply constraints, regularizers and reparameterizations to every layer built inside.

    Args:
      max_norm: threshold for ``max_norm_regularizer`` (per output unit), or None.
      l2: scale for ``l2_regularizer`` (``scale·½Σw²``), or None.
      weight_norm: True to reparameterize with ``weight_norm_getter``.
      spectral_norm: True, or a dict of ``spectral_norm_getter`` arguments
        (``power_iterations``, ``update``), or None.
      name_filter: regular expression selecting the weights (default: kernels
        and weights of dense, conv and separable-conv layers). Biases and
        batch-norm parameters are left alone unless the filter names them.

    Norms run over every axis but the last: per output channel for dense and
    conv kernels, per *input* channel for ``conv2d_transpose`` kernels (their
    HWOI layout puts the input channels last).

    Raises:
      ValueError: both ``weight_norm`` and ``spectral_norm``, nothing asked for,
        or an invalid argument.

    Example::

        with tf1norm.slim_scope(max_norm=3.0, l2=1e-4, spectral_norm=True):
            net = slim.conv2d(images, 64, [3, 3])
            net = tf.compat.v1.layers.dense(slim.flatten(net), 10)
    """
    if weight_norm and spectral_norm:
        raise ValueError(
            "slim_scope: choose one reparameterization, `weight_norm` or `spectral_norm`, not both."
        )
    pattern = compile_filter(name_filter, "slim_scope")
    regularizer = _combine(
        [
            None
            if max_norm is None
            else max_norm_regularizer(_checks.positive_number(max_norm, "slim_scope", "max_norm")),
            None
            if l2 is None
            else l2_regularizer(_checks.positive_number(l2, "slim_scope", "l2", allow_zero=True)),
        ]
    )
    reparam = None
    if weight_norm:
        reparam = weight_norm_getter(name_filter)
    elif spectral_norm:
        options = spectral_norm if isinstance(spectral_norm, dict) else {}
        unknown = sorted(set(options) - {"power_iterations", "update", "collection", "training"})
        if unknown:
            raise TypeError(
                f"slim_scope: `spectral_norm` holds unknown options {unknown}; got "
                f"{spectral_norm!r}. Use True, or a dict of spectral_norm_getter "
                "arguments: power_iterations, update, collection, training."
            )
        reparam = spectral_norm_getter(name_filter=name_filter, **options)
    if regularizer is None and reparam is None:
        raise ValueError(
            "slim_scope: nothing to apply; pass max_norm=, l2=, weight_norm=True "
            "or spectral_norm=True."
        )
    getter = (
        _compose(_regularizing_getter(pattern, regularizer), reparam) if regularizer else reparam
    )
    with (
        _max_norm_not_nested(max_norm),
        v1.variable_scope(
            v1.get_variable_scope(), custom_getter=getter, auxiliary_name_scope=False
        ),
    ):
        yield


@contextlib.contextmanager
def _max_norm_not_nested(max_norm):
    """Refuse ``slim_scope(max_norm=)`` inside another: a weight keeps one projection only."""
    from tf1norm.graph import registry

    active = registry.cached(v1.get_default_graph(), "slim_scope_max_norms", list)
    if max_norm is not None and active:
        raise ValueError(
            f"slim_scope: `max_norm`={max_norm!r} inside an enclosing "
            f"slim_scope(max_norm={active[-1]!r}); a weight keeps one max-norm "
            "projection, so one threshold would be silently dropped. Give the "
            "threshold in one scope only (e.g. use the inner scope for l2= or "
            "spectral_norm= alone), or put the scopes side by side."
        )
    active.extend([] if max_norm is None else [max_norm])
    try:
        yield
    finally:
        del active[len(active) - (max_norm is not None) :]
