"""tf-slim adapters (``arg_scope``-able). The core package never imports tf_slim.

``batch_norm`` is a drop-in for ``slim.batch_norm``: the same signature,
defaults, ``BatchNorm`` scope, variable names and collections, so tf-slim
checkpoints restore into it, but it always runs TensorFlow's fused kernel
(``tf1norm.batch_norm``'s reshapes to 4-D) and it also works on TF 2.21 in the
configurations where the installed tf-slim no longer does.

Example::

    from tf1norm.graph import slim_layers
    with slim.arg_scope([slim.conv2d], normalizer_fn=slim_layers.batch_norm,
                        normalizer_params={"decay": 0.9, "scale": True}), \\
            slim.arg_scope([slim_layers.batch_norm], is_training=is_training):
        net = slim.conv2d(images, 32, [3, 3])
"""

import collections.abc
import functools

import tf_slim

from tf1norm._src import checks as _checks
from tf1norm.graph.batch_norm import DEFAULT_INITIALIZERS
from tf1norm.graph.batch_norm import PARAM_NAMES
from tf1norm.graph.batch_norm import Options
from tf1norm.graph.batch_norm import channels_of
from tf1norm.graph.batch_norm import check_decay
from tf1norm.graph.batch_norm import check_input
from tf1norm.graph.batch_norm import create_params
from tf1norm.graph.batch_norm import normalize
from tf1norm.graph.batch_norm import static_training
from tf1norm._src.compat import tf, v1

_FN = "slim_layers.batch_norm"
_CHANNELS_FIRST = {"NHWC": False, "NCHW": True, "NDHWC": False, "NCDHW": True}
_LAYER_PATH_FIX = (
    "call tf_slim.batch_norm for it: its tf.compat.v1.layers path (default "
    "updates_collections, no zero_debias_moving_mean) supports it and still "
    "runs on TF 2.21."
)
_UNSUPPORTED_FIX = {
    "batch_weights": "Weighted moments need the non-fused kernel, and tf-slim's own "
    "batch_weights path is broken on TF 2.21 (utils.constant_value uses the "
    "removed ops.Tensor); compute tf.nn.weighted_moments and normalize with "
    "tf.nn.batch_normalization yourself, or repeat samples instead.",
    "renorm": "Batch renormalization needs the non-fused kernel; " + _LAYER_PATH_FIX,
    "renorm_clipping": "It only applies with renorm, which needs the non-fused kernel; "
    + _LAYER_PATH_FIX,
    "adjustment": "The adjustment needs the non-fused kernel; " + _LAYER_PATH_FIX,
}


@tf_slim.add_arg_scope
def batch_norm(
    inputs,
    decay=0.999,
    center=True,
    scale=False,
    epsilon=0.001,
    activation_fn=None,
    param_initializers=None,
    param_regularizers=None,
    updates_collections=v1.GraphKeys.UPDATE_OPS,
    is_training=True,
    reuse=None,
    variables_collections=None,
    outputs_collections=None,
    trainable=True,
    batch_weights=None,
    fused=None,
    data_format="NHWC",
    zero_debias_moving_mean=False,
    scope=None,
    renorm=False,
    renorm_clipping=None,
    renorm_decay=0.99,
    adjustment=None,
):
    """``tf_slim.batch_norm`` on the fused kernel, for rank 2-5 inputs.

    ``y = γ·(x − μ)/sqrt(σ² + epsilon) + β`` per channel, over every axis but
    the channel axis (the last for ``NHWC``, axis 1 for ``NCHW``). Training
    uses the batch statistics and moves the moving ones:
    ``moving -= (moving − batch)·(1 − decay)``; inference uses the moving ones.

    Which batch variance feeds ``moving_variance`` follows the code path
    tf-slim itself would take (``slim_code_path``): with ``fused`` None or
    True, its fused paths (rank 2 and 4, and rank 5 with the default
    ``updates_collections`` and no ``zero_debias_moving_mean``) use the fused
    kernel's Bessel-corrected variance ``Σ(x − μ)²/(n − 1)``; ``fused=False``,
    rank 3 and the other rank-5 cases use the biased ``Σ(x − μ)²/n``. The
    normalization itself always uses the biased one. Update ops are the
    assigns' results under the name scopes ``AssignMovingAvg`` and
    ``AssignMovingAvg_1``, as ``assign_moving_average`` makes them.

    Variables (all float32, whole even under a partitioned variable scope,
    all in ``GLOBAL_VARIABLES`` and ``MODEL_VARIABLES``) are created with
    ``tf_slim.model_variable`` (so ``arg_scope([slim.model_variable], ...)``
    applies) in ``scope`` (default ``BatchNorm``, uniquified): ``beta`` (if
    ``center``), ``gamma`` (if ``scale``), ``moving_mean``, ``moving_variance``,
    in the order of tf-slim's code path. ``zero_debias_moving_mean`` adds
    ``<scope>/<scope>/moving_mean/biased`` and ``.../local_step``, as
    ``assign_moving_average`` names them (in ``GLOBAL_VARIABLES``, and on the
    legacy path also in ``MODEL_VARIABLES``, as in tf-slim).

    Args:
      inputs: float32 or float16 tensor of rank 2-5 with a known channel dimension.
      decay: moving-average decay in [0, 1) (layers' ``momentum``).
      center, scale: create ``beta`` / ``gamma`` (slim: ``scale=False``).
      epsilon: variance epsilon >= 0 (0 as tf-slim allows; a constant channel
        then normalizes to NaN).
      activation_fn: applied to the output, or None.
      param_initializers: dict from ``beta``, ``gamma``, ``moving_mean``,
        ``moving_variance`` to initializers.
      param_regularizers: dict from ``beta``, ``gamma`` to regularizers; their
        losses go to ``REGULARIZATION_LOSSES``.
      updates_collections: name or names of the collections that receive the
        two update ops (mean, then variance); None runs them in place: the
        output then depends on them (control dependency).
      is_training: Python bool or boolean scalar tensor. False builds no update
        ops; with a tensor both outputs are built and the updates are no-ops
        while it is False.
      reuse: reuse the variables of ``scope``.
      variables_collections: extra collections for the variables: a list of
        names, or a dict from variable name to a list. A single string is one
        collection name (tf-slim would split it into one-letter names).
      outputs_collections: collections that receive the output, aliased by the scope name.
      trainable: put ``beta`` and ``gamma`` in ``TRAINABLE_VARIABLES``. As in
        tf-slim, False on its layer paths (``slim_code_path``) also freezes the
        moving statistics: no update ops (the layer reports none), though
        training still normalizes with the batch statistics.
      batch_weights: must be None (see Raises).
      fused: None, True or False; the fused kernel runs either way, ``fused``
        only chooses the moving-variance convention above.
      data_format: ``NHWC`` or ``NCHW`` (channels last or first, any rank),
        or for rank 5 ``NDHWC`` or ``NCDHW``.
      zero_debias_moving_mean: debias ``moving_mean`` as
        ``assign_moving_average(zero_debias=True)`` does.
      scope: variable scope.
      renorm, renorm_clipping, adjustment: must be off (see Raises);
        ``renorm_decay`` is ignored without ``renorm``, as in tf-slim.

    Returns:
      A tensor of ``inputs``' shape and dtype.

    Raises:
      TypeError: ``inputs`` not float32/float16; a non-bool ``is_training``,
        ``fused``, ``center``, ``scale``, ``trainable``; a non-dict
        ``param_initializers``/``param_regularizers``; collections not names.
      ValueError: rank not 2-5, unknown channels, bad ``data_format``,
        ``decay`` or ``epsilon``, unknown ``param_*`` keys, non-callable
        initializers or regularizers.
      NotImplementedError: ``batch_weights``, ``renorm``, ``renorm_clipping``
        or ``adjustment`` given.

    Example:
      from tf1norm.graph import slim_layers
      net = slim.conv2d(images, 64, [3, 3], normalizer_fn=slim_layers.batch_norm,
                        normalizer_params={"decay": 0.9, "scale": True,
                                           "is_training": is_training})

    References:
      Ioffe & Szegedy, Batch Normalization, 2015 (arXiv:1502.03167).
    """
    _check_unsupported(
        batch_weights=batch_weights,
        renorm=renorm,
        renorm_clipping=renorm_clipping,
        adjustment=adjustment,
    )
    _check_data_format(data_format)
    inputs = check_input(inputs, _FN, "inputs")
    options, path = _options(
        inputs.shape.rank,
        decay,
        epsilon,
        fused,
        data_format,
        zero_debias_moving_mean,
        updates_collections,
        _flag(trainable, "trainable"),
    )
    channels = channels_of(inputs, options.channels_first, _FN, "inputs")
    make = functools.partial(
        _model_variable,
        channels=channels,
        trainable=trainable,
        initializers=_param_dict(param_initializers, PARAM_NAMES, "param_initializers"),
        regularizers=_param_dict(param_regularizers, ("beta", "gamma"), "param_regularizers"),
        collections=_variables_collections(variables_collections),
    )
    center, scale = _flag(center, "center"), _flag(scale, "scale")
    training = static_training(is_training, _FN, "is_training")
    order = ("gamma", "beta") if path.endswith("layer") else ("beta", "gamma")
    getter = _also_a_model_variable if path == "legacy" else None
    with v1.variable_scope(scope, "BatchNorm", [inputs], reuse=reuse, custom_getter=getter) as sc:
        params = create_params(make, center, scale, affine_order=order)
        outputs = normalize(inputs, params, training, options)
        if activation_fn is not None:
            outputs = activation_fn(outputs)
        return tf_slim.utils.collect_named_outputs(outputs_collections, sc.name, outputs)


def _options(rank, decay, epsilon, fused, data_format, zero_debias, updates_collections, trainable):
    """Validated ``Options`` and tf-slim's code path (``slim_code_path``)."""
    updates_collections = _collection_names(
        updates_collections, "updates_collections", allow_none=True
    )
    zero_debias = _flag(zero_debias, "zero_debias_moving_mean")
    path = slim_code_path(
        rank, _fused(fused), updates_collections == (v1.GraphKeys.UPDATE_OPS,), zero_debias
    )
    if path.endswith("layer") and not trainable:
        updates_collections = ()  # a non-trainable layer reports no updates
    options = Options(
        decay=check_decay(decay, _FN, "decay"),
        epsilon=_checks.positive_number(epsilon, _FN, "epsilon", allow_zero=True),
        channels_first=_channels_first(data_format, rank) and rank > 2,
        unbiased_variance=path in ("fused", "fused layer"),
        zero_debias=zero_debias,
        updates_collections=updates_collections,
    )
    return options, path


def slim_code_path(rank, fused, default_updates, zero_debias):
    """The code path ``tf_slim.batch_norm`` itself takes, which fixes two conventions.

    =================  ===============================================  ================
    path               when (``fused`` None or True unless it says so)  moving variance
    =================  ===============================================  ================
    ``"fused"``        rank 2; rank 4 with zero-debias or custom        Bessel-corrected
                       ``updates_collections`` (``_fused_batch_norm``)   (fused kernel)
    ``"fused layer"``  rank 4 or 5, default updates, no zero-debias     Bessel-corrected
    ``"layer"``        default updates, no zero-debias: rank 3, or      biased
                       ``fused=False`` (``nn.moments``)
    ``"legacy"``       everything else: rank 3 or 5, or ``fused=False``,  biased
                       with zero-debias or custom updates
    =================  ===============================================  ================

    The two layer paths create ``gamma`` before ``beta`` (the layers API's
    order), the others ``beta`` first; that order is ``global_variables()``'.
    The legacy path's scope has a model-variable getter, so its zero-debias
    variables are in ``MODEL_VARIABLES`` too.
    """
    fuse = fused is not False
    if fuse and rank in (2, 4) and (zero_debias or rank == 2 or not default_updates):
        return "fused"
    if default_updates and not zero_debias:
        return "fused layer" if fuse and rank in (4, 5) else "layer"
    return "legacy"


def _model_variable(name, channels, trainable, initializers, regularizers, collections):
    """``tf_slim.model_variable`` as ``slim.batch_norm`` calls it (arg_scope applies)."""
    initializer = initializers.get(name) or DEFAULT_INITIALIZERS[name]()
    extra = collections.get(name) if isinstance(collections, dict) else collections
    return tf_slim.model_variable(
        name,
        shape=[channels],
        dtype=tf.float32,
        initializer=initializer,
        regularizer=regularizers.get(name),
        collections=extra,
        trainable=trainable and name in ("beta", "gamma"),
    )


def _also_a_model_variable(getter, *args, **kwargs):
    """Custom getter: every variable of the scope also in ``MODEL_VARIABLES`` (once)."""
    variable = getter(*args, **kwargs)
    if variable not in v1.get_collection(v1.GraphKeys.MODEL_VARIABLES):
        v1.add_to_collection(v1.GraphKeys.MODEL_VARIABLES, variable)
    return variable


# ----------------------------------------------------------------- validation


def _check_unsupported(**given):
    """NotImplementedError for the first slim feature the fused kernel cannot run."""
    for arg, value in given.items():
        if value is not None and value is not False:
            raise NotImplementedError(
                f"{_FN}: `{arg}` is not supported; got {value!r}. " + _UNSUPPORTED_FIX[arg]
            )


def _flag(value, arg):
    if not isinstance(value, bool):
        raise TypeError(f"{_FN}: `{arg}` must be a Python bool; got {value!r}. Pass True or False.")
    return value


def _fused(fused):
    if fused is not None and not isinstance(fused, bool):
        raise TypeError(
            f"{_FN}: `fused` must be None, True or False; got {fused!r}. It only "
            "selects the moving-variance convention (see the docstring)."
        )
    return fused


def _check_data_format(data_format):
    if data_format not in _CHANNELS_FIRST:
        raise ValueError(
            f"{_FN}: data_format has to be either NCHW or NHWC (channels first or "
            "last, any rank), or NCDHW/NDHWC for rank-5 input; got "
            f"{data_format!r}. Use 'NCHW' for channels first."
        )


def _channels_first(data_format, rank):
    if data_format in ("NDHWC", "NCDHW") and rank != 5:
        raise ValueError(
            f"{_FN}: data_format {data_format!r} is for rank-5 input; got "
            f"rank-{rank} input. Use {data_format.replace('D', '')!r} "
            "(channels last or first, any rank)."
        )
    return _CHANNELS_FIRST[data_format]


def _param_dict(params, allowed, arg):
    """``params`` (None or a dict with keys in ``allowed`` and callable values) as a dict."""
    if params is None:
        return {}
    if not isinstance(params, collections.abc.Mapping):
        raise TypeError(
            f"{_FN}: `{arg}` must be a dict keyed by {', '.join(allowed)}; got "
            f"{params!r}. Pass e.g. {{'{allowed[0]}': ...}}."
        )
    for key, value in params.items():
        if key not in allowed:
            raise ValueError(
                f"{_FN}: `{arg}` has the unknown key {key!r}. Use only {', '.join(allowed)}."
            )
        if value is not None and not callable(value):
            raise ValueError(
                f"{_FN}: `{arg}[{key!r}]` must be callable; got {value!r}. Pass "
                "an initializer/regularizer such as tf.compat.v1.ones_initializer()."
            )
    return dict(params)


def _collection_names(names, arg, allow_none=False):
    """A name or an iterable of names as a tuple (None stays None when allowed)."""
    if names is None and allow_none:
        return None
    if isinstance(names, str):
        return (names,)
    if isinstance(names, collections.abc.Iterable) and not isinstance(names, (bytes, dict)):
        items = tuple(names)
        if all(isinstance(name, str) for name in items):
            return items
    raise TypeError(
        f"{_FN}: `{arg}` must be a collection name or a list of names"
        f"{' (or None)' if allow_none else ''}; got {names!r}. Pass e.g. "
        "[tf.compat.v1.GraphKeys.UPDATE_OPS]."
    )


def _variables_collections(collections_):
    """None, names, or a dict from variable name to names (tf-slim's forms)."""
    if collections_ is None:
        return None
    if not isinstance(collections_, collections.abc.Mapping):
        return _collection_names(collections_, "variables_collections")
    _param_dict({k: None for k in collections_}, PARAM_NAMES, "variables_collections")
    return {
        name: _collection_names(value, f"variables_collections[{name!r}]", allow_none=True)
        for name, value in collections_.items()
    }
