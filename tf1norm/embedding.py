"""Embedding lookup with a max-norm on the looked-up rows only.

A dense max-norm projection of a large table costs the whole table every step,
and ``tf.compat.v1.train`` optimizers refuse ``constraint=`` on variables with
sparse gradients. ``embedding_lookup(..., max_norm=c)`` instead records the
rows of this lookup; ``create_train_op`` gathers exactly those rows after the
update, renormalizes them and scatters them back.
"""

from tf1norm import _checks
from tf1norm import keys
from tf1norm import registry
from tf1norm.projections import renorm
from tf1norm._tf import tf

def renorm_rows(rows, max_norm):
    """torch's embedding renorm of rows: ``r·max_norm/(‖r‖₂ + 1e-7)`` where ``‖r‖₂ > max_norm``."""
    return renorm(rows, 2, 0, max_norm)


def embedding_lookup(params, ids, max_norm=None, collection=keys.EMBEDDING_MAX_NORM, name=None):
    """``tf.nn.embedding_lookup`` with ``torch.nn.Embedding(max_norm=...)``'s row renorm.

    With ``max_norm``:

    * the returned rows are renormalized like torch's: a row ``r`` with
      ``‖r‖₂ > max_norm`` becomes ``r·max_norm/(‖r‖₂ + 1e-7)``; the gradient
      passes straight through to the table row (torch renormalizes the table
      in place under ``no_grad`` before the lookup, so its gradient is also
      unscaled), and ``IndexedSlices`` gradients stay sparse;
    * the rows of ``ids`` are recorded (``tf1norm.registry.RowProjection``)
      and ``create_train_op`` renormalizes them *after* the optimizer update,
      so after a step every row looked up in that step has norm <= max_norm.
      (torch renormalizes before the lookup, so there a freshly updated row can
      exceed max_norm until its next lookup.) Rows not looked up are untouched;
      the cost is proportional to the number of distinct ids.

    Args:
      params: a ``tf.Variable`` of shape ``[vocabulary, dim]``.
      ids: integer tensor of any shape.
      max_norm: float > 0, or None for a plain lookup.
      collection: registry collection for the row projections.
      name: optional name scope.

    Returns:
      A tensor of shape ``ids.shape + [dim]``.

    Raises:
      TypeError: ``params`` not a variable when ``max_norm`` is set; ``ids`` not integer.
      ValueError: ``params`` not rank 2; ``max_norm`` <= 0.
    """
    fn = "embedding_lookup"
    with tf.name_scope(name or "embedding_lookup"):
        ids = tf.convert_to_tensor(ids)
        if not ids.dtype.is_integer:
            raise TypeError(f"{fn}: `ids` must be an integer tensor; got {ids.dtype.name}. "
                            "Cast it, e.g. tf.cast(ids, tf.int64).")
        if max_norm is None:
            return tf.nn.embedding_lookup(params, ids)
        max_norm = _checks.positive_number(max_norm, fn, "max_norm")
        if not isinstance(params, tf.Variable):
            raise TypeError(f"{fn}: with max_norm, `params` must be a tf.Variable (its rows are "
                            f"renormalized in place); got {type(params).__name__}.")
        table = params
        if table.shape.rank != 2:
            raise ValueError(f"{fn}: `params` must have rank 2 [vocabulary, dim]; got shape "
                             f"{table.shape}.")
        project = lambda rows: renorm_rows(rows, max_norm)  # noqa: E731
        registry.register_projection(registry.RowProjection(table, ids, project, "row_max_norm"),
                                     _checks.string(collection, fn, "collection"))
        rows = tf.nn.embedding_lookup(table, ids)
        capped = renorm_rows(tf.reshape(rows, [-1, table.shape[1]]), max_norm)
        return rows + tf.stop_gradient(tf.reshape(capped, tf.shape(rows)) - rows)
