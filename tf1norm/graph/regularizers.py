"""Regularizer factories that register into named graph collections.

Every factory returns ``fn(weights)`` usable as tf-slim ``weights_regularizer=``,
``tf.compat.v1.layers`` ``kernel_regularizer=`` and
``tf.compat.v1.get_variable(regularizer=)``.

Loss conventions (TF / tf-slim):

==================  ===================================  ==================
factory             penalty for one tensor ``w``          lands in
==================  ===================================  ==================
``l2_regularizer``  ``scale * ½ Σ w²`` (tf.nn.l2_loss)    REGULARIZATION_LOSSES
``l1_regularizer``  ``scale * Σ |w|``                     REGULARIZATION_LOSSES
``l1_l2_regularizer`` the sum of the two                  REGULARIZATION_LOSSES
``max_norm_regularizer`` no loss (returns None)           an assign op in ``max_norm``
==================  ===================================  ==================

The loss is added to ``REGULARIZATION_LOSSES`` by the caller: ``get_variable``,
tf-slim layers and ``tf.compat.v1.layers`` all do it, exactly once per variable.
If you call a regularizer by hand, add the result yourself or use
``collection=``. Calling a regularizer again on the same variable (variable
reuse, or layers that re-evaluate their losses) returns the same tensor and
registers nothing new.
"""

import functools
import re
import warnings

from tf1norm._src import axis_checks as _axis_checks
from tf1norm._src import checks as _checks
from tf1norm._src import graph_checks as _graph_checks
from tf1norm._src import eager
from tf1norm.graph import keys
from tf1norm._math import projections
from tf1norm.graph import registry
from tf1norm._src.compat import tf, v1


def max_norm_regularizer(threshold=1.0, axes=None, name="max_norm", collection=keys.MAX_NORM):
    """Max-norm "regularizer" in the seeds' API: no loss, one projection op per variable.

    Calling the returned function on a variable ``w``:

    1. builds ``assign(w, tf1norm.max_norm(w, threshold, axes))`` and adds it to
       the graph collection ``collection``, so the legacy loop
       ``sess.run(tf.compat.v1.get_collection("max_norm"))`` after each training
       step works as in seed 002;
    2. records ``(w, projection)`` in ``tf1norm.registry`` so that
       ``create_train_op`` can build the projection again *after* the optimizer
       update (an op built here and grouped under a control dependency would
       still read the old weights);
    3. returns ``None``: there is no loss term.

    A variable is registered once per collection, however often the function
    is called on it.

    Args:
      threshold: maximum L2 norm per sub-tensor, a float > 0.
      axes: reduction axes; ``None`` = every axis but the last (one norm per
        output unit, see ``tf1norm._math.projections``). The seeds' ``axes=1``
        clips rows of a dense kernel (one norm per *input*), which keeps their
        behaviour but is rarely what max-norm papers mean.
      name: name of the assign ops.
      collection: graph collection for the assign ops, a non-empty string.

    Returns:
      ``fn(weights) -> None``.

    Raises:
      TypeError, ValueError: bad ``threshold``/``axes``/``name``/``collection``
        (at factory time); ``weights`` not a variable or axes out of range (at
        call time).

    Example::

        with slim.arg_scope([slim.fully_connected],
                            weights_regularizer=tf1norm.max_norm_regularizer(1.5)):
            net = slim.fully_connected(x, 200)
        clip_ops = tf.compat.v1.get_collection("max_norm")
    """
    fn_name = "max_norm_regularizer"
    threshold = _checks.positive_number(threshold, fn_name, "threshold")
    axes = _axis_checks.axes_argument(axes, fn_name)
    name = _checks.string(name, fn_name, "name")
    collection = _checks.string(collection, fn_name, "collection")
    project = functools.partial(projections.max_norm_assignment, threshold=threshold, axes=axes)
    guard = functools.partial(projections.max_norm_guarded, threshold=threshold, axes=axes)

    def max_norm_fn(weights):
        variable = _graph_checks.variable(weights, fn_name)
        reduced = _axis_checks.axes_tuple(
            axes, _checks.static_rank(variable, fn_name, "weights"), fn_name
        )
        projection = _projection_of(variable, reduced, project, name, guard)
        if projection is None or not registry.register_projection(projection, collection):
            return None
        if eager.is_eager(variable):  # TF2: recorded, and the constraint a plain loop applies
            eager.adopt_as_constraint(variable, projection)
        else:
            for op in _as_list(projection.build()):
                v1.add_to_collection(collection, op)
        return None

    return eager.records_on_creation(max_norm_fn)  # the TF2 shim calls it lazily


def _projection_of(variable, reduced_axes, project, name, guard=None):
    """The record for ``variable``, warning once about a partition's collection op.

    ``get_variable`` calls a regularizer on each partition of a partitioned
    variable before the partitions are complete, so the collection op can only
    project that partition. The record keeps the reduced axes: the train op
    regroups the partitions (``registry.group_partitions``) and projects the
    whole variable.
    """
    if _PART_NAME.search(eager.variable_name(variable)) and not _warned_parts:
        _warned_parts.append(True)
        warnings.warn(
            f"max_norm_regularizer: {variable.op.name} is one partition of a partitioned "
            "variable. create_train_op projects the whole variable, but the op in the "
            "collection projects this partition alone: if the variable is split along a "
            "reduced axis (fixed_size_partitioner splits axis 0, the input axis of a kernel), "
            "running the collection caps each partition's share of a unit's norm. Use "
            "create_train_op, or split along the last axis (fixed_size_partitioner(n, "
            "axis=-1)).",
            stacklevel=4,
        )
    return registry.Projection(variable, project, name, axes=reduced_axes, guard=guard)


_PART_NAME = re.compile(r"/part_\d+$")
_warned_parts = []


def _as_list(ops):
    return ops if isinstance(ops, list) else [ops]


def l2_regularizer(scale, scope=None, collection=None):
    """``scale * ½ Σ w²`` (``scale * tf.nn.l2_loss(w)``), tf-slim's convention.

    With plain SGD this equals weight decay with rate ``lr * scale``; with
    momentum or Adam it does not (see the README on decoupled decay).

    Args:
      scale: float >= 0; 0 disables the regularizer (it returns None).
      scope: name of the loss op (default ``"l2_regularizer"``).
      collection: optional extra collection (e.g. seed 003's ``"losses"``)
        that also receives the loss, once per variable.

    Returns:
      ``fn(weights) -> scalar loss tensor`` (or None when ``scale == 0``).
    """
    return _penalty_regularizer("l2_regularizer", tf.nn.l2_loss, scale, scope, collection)


def l1_regularizer(scale, scope=None, collection=None):
    """``scale * Σ |w|``. Arguments as in ``l2_regularizer``."""
    return _penalty_regularizer("l1_regularizer", _sum_abs, scale, scope, collection)


def l1_l2_regularizer(scale_l1=1.0, scale_l2=1.0, scope=None, collection=None):
    """``scale_l1 * Σ |w| + scale_l2 * ½ Σ w²`` (tf-slim's ``l1_l2_regularizer``).

    Arguments as in ``l2_regularizer``; either scale may be 0 (both 0 disables).
    """
    fn_name = "l1_l2_regularizer"
    scale_l1 = _checks.positive_number(scale_l1, fn_name, "scale_l1", allow_zero=True)
    scale_l2 = _checks.positive_number(scale_l2, fn_name, "scale_l2", allow_zero=True)

    def penalty(w):
        return tf.cast(scale_l1, w.dtype) * _sum_abs(w) + tf.cast(
            scale_l2, w.dtype
        ) * tf.nn.l2_loss(w)

    scale = 1.0 if scale_l1 or scale_l2 else 0.0
    return _penalty_regularizer(fn_name, penalty, scale, scope, collection)


def _sum_abs(w):
    return tf.reduce_sum(tf.abs(w))


def _penalty_regularizer(fn_name, penalty, scale, scope, collection, prepare=None):
    """``fn(weights) -> scale · penalty(prepare(weights))``, validated, cached per variable.

    ``prepare`` checks and converts ``weights`` (default: any floating tensor).
    """
    prepare = prepare or (lambda weights: _checks.float_tensor(weights, fn_name, "weights"))
    scale = _checks.positive_number(scale, fn_name, "scale", allow_zero=True)
    if collection is not None:
        collection = _checks.string(collection, fn_name, "collection")
    if scope is not None:
        scope = _checks.string(scope, fn_name, "scope")
    if scale == 0.0:
        return lambda weights: None

    def build(weights):
        w = prepare(weights)
        with tf.name_scope(scope or fn_name) as name:
            loss = tf.multiply(tf.cast(scale, w.dtype.base_dtype), penalty(w), name=name)
        if collection is not None:
            v1.add_to_collection(collection, loss)
        return loss

    def regularizer(weights):
        if not isinstance(weights, (tf.Variable, tf.Tensor)):
            return build(weights)
        return registry.cached(
            eager.cache_graph(weights), (regularizer, weights.ref()), lambda: build(weights)
        )

    return regularizer


def spectral_norm_regularizer(scale, power_iterations=1, scope=None, collection=None):
    """``scale · ½ σ(W)²``, the spectral norm regularization of Yoshida & Miyato (2017).

    σ comes from power iteration on the persistent vector ``<weight>/sn_u_state``
    (shared with ``SpectralNorm``, refreshed whenever the loss is evaluated);
    ∂σ/∂W = u vᵀ with u, v held constant. Arguments as in ``l2_regularizer``;
    ``weights`` must be a variable.
    """
    from tf1norm.graph.getters import spectral_sigma

    fn_name = "spectral_norm_regularizer"
    power_iterations = _checks.positive_int(power_iterations, fn_name, "power_iterations")

    def half_sigma_squared(variable):
        sigma, refresh = spectral_sigma(variable, power_iterations, defer=True)
        with tf.control_dependencies([refresh]):
            return 0.5 * tf.square(sigma)

    return _penalty_regularizer(
        fn_name,
        half_sigma_squared,
        scale,
        scope,
        collection,
        prepare=lambda weights: _graph_checks.variable(weights, fn_name),
    )


def total_loss(loss=None, collections=(keys.REGULARIZATION_LOSSES,), name="total_loss"):
    """Sum a data loss and every loss in ``collections`` (seed 003's ``add_n``).

    A tensor found in several of the collections is counted once.

    Args:
      loss: a scalar data loss, a list of them, or None (regularization only).
      collections: collection name or names to add, default
        ``REGULARIZATION_LOSSES``; e.g. ``("losses",)`` for seed 003's pattern.
      name: name of the sum.

    Returns:
      A scalar tensor.

    Raises:
      ValueError: nothing to sum, or a term is not a scalar.
      TypeError: a collection name is not a string.
    """
    terms = [] if loss is None else list(loss) if isinstance(loss, (list, tuple)) else [loss]
    if isinstance(collections, str):
        collections = (collections,)
    for collection in collections:
        _checks.string(collection, "total_loss", "collections")
        terms.extend(v1.get_collection(collection))
    unique = list(
        {
            term.ref(): term
            for term in (_checks.float_tensor(t, "total_loss", "loss") for t in terms)
        }.values()
    )
    if not unique:
        raise ValueError(
            f"total_loss: nothing to sum; got loss={loss!r} and empty "
            f"collections {list(collections)!r}. Pass a loss or build the "
            "layers with a regularizer first."
        )
    for term in unique:
        if term.shape.rank not in (None, 0):
            raise ValueError(
                f"total_loss: every term must be a scalar; got {term.name} "
                f"with shape {term.shape}. Reduce it, e.g. tf.reduce_mean."
            )
    dtype = unique[0].dtype
    return tf.add_n([tf.cast(t, dtype) for t in unique], name=name)
