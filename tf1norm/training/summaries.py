"""TensorBoard summaries of what the training chain does.

``summarize_chain()`` is a transform: put it last in a ``create_train_op``
chain and it builds ``tf.compat.v1.summary`` ops for

=================================================  ===============================
tag (under ``tf1norm/``)                           what
=================================================  ===============================
``<kernel>/norm_before`` (histogram)               unit norms after the optimizer
                                                   update, before the projection
``<kernel>/norm_after`` (histogram)                unit norms after the projection
``<kernel>/norm_before_max``, ``…_median``         scalars of the above
``<kernel>/norm_after_max``, ``…_median``
``<kernel>/fraction_clipped``                      share of units with norm >
                                                   threshold before the projection
``gradients/global_norm``                          pre-clip global gradient norm
``gradients/clipped``                              1.0 when it exceeded
                                                   ``clip_by_global_norm``'s bound
``steps/skipped``                                  1.0 when ``skip_nonfinite``
                                                   skipped this step
``steps/skipped_total``                            its counter (see below)
``sigma/<weight>``                                 σ of every spectrally
                                                   normalized weight
=================================================  ===============================

``<kernel>`` is the variable's op name (``hidden1/kernel``); a unit is one
sub-tensor over the projection's axes (one output unit by default, see
``tf1norm._math.projections``). Per-layer statistics cover the variables that
``max_norm_regularizer`` recorded (fraction clipped uses its threshold).

Cost: the summary ops are *views of the training step*. Each statistic is
computed from a tensor of the step (the gradients, the weights the projection
reads, σ of the forward pass), so it costs nothing unless fetched, and when
fetched in the same ``sess.run`` as the train op it describes exactly that
step. The train op itself gains one ``ReadVariableOp`` per projected variable
(the value the projection then reads; no arithmetic). Fetch the summaries
together with the train op, as ``SummarySaverHook`` and
``MonitoredTrainingSession(save_summaries_steps=N)`` do: fetched alone they
would compute (and for the weight statistics, apply) a step. In a loop that
also runs other fetches through the monitored session, use
``ChainSummaryHook``, which adds them only to runs of the train op.
"""

import functools
import os
import warnings

from tf1norm._src import checks as _checks
from tf1norm._src import graph_checks as _graph_checks
from tf1norm.graph import keys
from tf1norm._math import projections
from tf1norm.graph import registry
from tf1norm._src.compat import tf, v1
from tf1norm.training.transforms import Transform
from tf1norm.training.transforms import _ClipByGlobalNorm
from tf1norm.training.transforms import _ProjectConstraints
from tf1norm.training.skipping import _SkipNonfinite

SUMMARIES = "tf1norm_summaries"  # collection of every summary op built here
_SCOPE = "tf1norm/"


# --- pure math: Tensor -> Tensor -------------------------------------------------


def unit_norms(w, axes):
    """L2 norm of every sub-tensor of ``w`` over ``axes``, as a flat float32 vector.

    ``axes`` as in ``tf1norm.max_norm`` (a tuple; the kept axes index the units).
    """
    wide = tf.cast(w, tf.float32)
    return tf.reshape(tf.math.reduce_euclidean_norm(wide, axis=axes), [-1])


def median(x):
    """Median of a vector, NumPy's convention (mean of the two middle values)."""
    ordered = tf.sort(tf.reshape(x, [-1]))
    size = tf.size(ordered)
    return (ordered[(size - 1) // 2] + ordered[size // 2]) / 2


def fraction_over(norms, threshold):
    """Share of ``norms`` strictly greater than ``threshold`` (float32)."""
    return tf.reduce_mean(tf.cast(norms > tf.cast(threshold, norms.dtype), tf.float32))


# --- plumbing -------------------------------------------------------------------


class _SummarizeChain(Transform):
    """See ``summarize_chain``."""

    def __init__(self, histograms, collections):
        self.histograms, self.collections = histograms, collections
        self.summaries = []

    @property
    def summary_op(self):
        """One merged op of the summaries of the most recent build (None if none)."""
        if not self.summaries:
            return None
        if getattr(self, "_merged", (None, None))[0] is not self.summaries:
            self._merged = (self.summaries, v1.summary.merge(self.summaries))
        return self._merged[1]

    def pre_apply(self, grads_and_vars, context):
        self.summaries = context.state[self] = []
        with tf.control_dependencies(None), context.graph.name_scope(_SCOPE):
            self._summarize_gradients(grads_and_vars, context)
            self._summarize_skipping(context)
            for sigma in v1.get_collection(keys.SPECTRAL_NORM_SIGMA):
                self._scalar(f"sigma/{_layer_name(sigma)}", sigma)
        return grads_and_vars

    def post_apply(self, variables, context):
        if v1.get_default_graph() is not context.graph:
            return self._warn_inside_cond(context)
        reads = []
        for variable in variables:
            for projection in self._projections(context).get(variable.ref(), ()):
                reads.append(self._summarize_projection(projection, context))
        return reads

    def _scalar(self, tag, value):
        self.summaries.append(
            v1.summary.scalar(tag, tf.cast(value, tf.float32), collections=self.collections)
        )

    def _histogram(self, tag, values):
        if self.histograms:
            self.summaries.append(v1.summary.histogram(tag, values, collections=self.collections))

    def _summarize_gradients(self, grads_and_vars, context):
        clips = [(t, norm) for t, norm in context.state.items() if isinstance(t, _ClipByGlobalNorm)]
        if clips:
            transform, norm = clips[-1]
            self._scalar("gradients/global_norm", norm)
            self._scalar("gradients/clipped", norm > tf.cast(transform.clip_norm, norm.dtype))
            return
        grads = [_dense_values(g) for g, _ in grads_and_vars if g is not None]
        self._scalar("gradients/global_norm", tf.linalg.global_norm(grads))

    def _summarize_skipping(self, context):
        counters = [c for t, c in context.state.items() if isinstance(t, _SkipNonfinite)]
        if not counters:
            return
        conditions = [condition for condition, _ in context.apply_conditions]
        self._scalar("steps/skipped", tf.logical_not(tf.reduce_all(tf.stack(conditions))))
        self._scalar("steps/skipped_total", counters[-1].read_value())

    def _projections(self, context):
        """``{variable ref: [Projection]}`` of the max-norm records, indexed once per build."""
        key = (self, "projections")
        if key not in context.state:
            index = context.state[key] = {}
            for collection in registry.recorded_collections(context.graph):
                for projection in registry.get_projections(collection, context.graph):
                    if (
                        _threshold(projection) is not None
                        and registry.partition_axis(projection.variable) is None
                    ):
                        _check_not_projected(collection, context)
                        index.setdefault(projection.variable.ref(), []).append(projection)
        return context.state[key]

    def _summarize_projection(self, projection, context):
        """Summaries of one projection; returns the read the projection must follow."""
        before_value = registry.fresh_read(projection.variable)  # after the update
        with tf.control_dependencies(None), context.graph.name_scope(_SCOPE):
            layer = projection.variable.op.name
            before = unit_norms(before_value, projection.axes)
            after = unit_norms(projection.fn(before_value), projection.axes)
            for stage, norms in (("before", before), ("after", after)):
                self._histogram(f"{layer}/norm_{stage}", norms)
                self._scalar(f"{layer}/norm_{stage}_max", tf.reduce_max(norms))
                self._scalar(f"{layer}/norm_{stage}_median", median(norms))
            self._scalar(f"{layer}/fraction_clipped", fraction_over(before, _threshold(projection)))
        return before_value.op

    def _warn_inside_cond(self, context):
        if not context.state.get((self, "warned")):
            context.state[(self, "warned")] = True
            warnings.warn(
                "summarize_chain: with skip_nonfinite in the chain the update and "
                "projections run inside a tf.cond, whose tensors cannot be "
                "summarized; the per-layer norm summaries are left out (gradient, "
                "skipped-step and σ summaries remain).",
                stacklevel=5,
            )
        return []

    def __repr__(self):
        return f"summarize_chain(histograms={self.histograms!r})"


class ChainSummaryHook(v1.train.SessionRunHook):
    """Write ``summary_op`` every ``every_n_steps`` runs *of the train op*, never alone.

    The safe way to write ``summarize_chain`` summaries from a
    ``MonitoredTrainingSession`` loop that also runs other fetches (an
    evaluation, a metric): ``SummarySaverHook`` adds its summary to whatever
    run falls on its step, and a chain summary fetched without the train op
    would run the step it describes. This hook adds ``summary_op`` only to runs
    whose fetches contain ``train_op`` (as a tensor or op, possibly nested in
    lists, tuples or dicts), on the 1st, ``1 + every_n_steps``-th, ... such run,
    and writes it labelled with the global step read after that run (the
    number of steps done, as ``SummarySaverHook`` labels them).

    Args:
      summary_op: a string summary tensor, e.g. ``transform.summary_op``.
      train_op: the tensor or op ``create_train_op`` returned.
      output_dir: the event file directory.
      every_n_steps: int >= 1.

    Raises:
      TypeError, ValueError: bad ``every_n_steps`` or ``output_dir``.

    Example::

        w = tf.compat.v1.get_variable("w", [3, 2],
                                      regularizer=tf1norm.max_norm_regularizer(1.0))
        loss = tf.reduce_sum(tf.matmul(tf.ones([4, 3]), w))
        summarize = tf1norm.summarize_chain()
        train_op = tf1norm.create_train_op(
            loss, tf.compat.v1.train.GradientDescentOptimizer(0.1), transforms=[summarize])
        hook = tf1norm.ChainSummaryHook(summarize.summary_op, train_op, "train_logs",
                                        every_n_steps=100)
        with tf.compat.v1.train.MonitoredTrainingSession(hooks=[hook]) as session:
            for _ in range(3):
                session.run(train_op)  # the first run writes; a run of `loss` alone never
    """

    def __init__(self, summary_op, train_op, output_dir, every_n_steps=100):
        fn = "ChainSummaryHook"
        self.every_n_steps = _checks.positive_int(every_n_steps, fn, "every_n_steps")
        self.output_dir = _checks.string(output_dir, fn, "output_dir")
        _graph_checks.operation(summary_op, fn, "summary_op")
        _graph_checks.operation(train_op, fn, "train_op")
        self.summary_op, self.train_op = summary_op, train_op
        self._train_runs, self._writer, self._global_step = 0, None, None

    def begin(self):
        # absolute: FileWriterCache is keyed by the string, and the cwd may change
        self._writer = v1.summary.FileWriterCache.get(os.path.abspath(self.output_dir))
        self._global_step = v1.train.get_global_step()

    def before_run(self, run_context):
        if not _fetches_op(run_context.original_args.fetches, _op_of(self.train_op)):
            return None
        self._train_runs += 1
        if (self._train_runs - 1) % self.every_n_steps:
            return None
        return v1.train.SessionRunArgs({"summary": self.summary_op})

    def after_run(self, run_context, run_values):
        if not run_values.results:
            return
        step = self._train_runs  # read after the run: not racing with the increment
        if self._global_step is not None:
            step = run_context.session.run(self._global_step)
        self._writer.add_summary(run_values.results["summary"], step)

    def end(self, session):
        if self._writer is not None:
            self._writer.flush()


def _op_of(fetch):
    return fetch if isinstance(fetch, tf.Operation) else getattr(fetch, "op", None)


def _fetches_op(fetches, op):
    return any(_op_of(f) is op for f in tf.nest.flatten(fetches))


def _threshold(projection):
    """The max-norm threshold of a ``max_norm_regularizer`` record, else None."""
    fn = projection.fn
    if (
        type(projection) is registry.Projection
        and projection.axes is not None
        and isinstance(fn, functools.partial)
        and fn.func is projections.max_norm_assignment
    ):
        return fn.keywords.get("threshold")
    return None


def _check_not_projected(collection, context):
    if any(
        isinstance(t, _ProjectConstraints) and t.collection == collection for t in context.state
    ):
        raise ValueError(
            f"summarize_chain: project_constraints({collection!r}) comes before "
            "summarize_chain in `transforms`, so the norms before the projection "
            "are gone. Put summarize_chain() before it (e.g. last, and let "
            "create_train_op add the projection)."
        )


def _dense_values(grad):
    return grad.values if isinstance(grad, tf.IndexedSlices) else grad


def _layer_name(tensor):
    return tensor.op.name.replace(":", "_")


def summarize_chain(histograms=True, collections=()):
    """A transform that writes TensorBoard summaries of what the chain does.

    Put it last in ``transforms``: its gradient stage reads the global norm of
    the ``clip_by_global_norm`` and the skip decision of the ``skip_nonfinite``
    before it, and its variable stage reads each max-norm layer's weights
    after the optimizer update and before the projection that
    ``create_train_op`` appends. The tags are listed in the module docstring.

    The summaries go to ``tf1norm.summaries.SUMMARIES`` and to ``collections``;
    ``transform.summary_op`` merges those of its most recent build (read it
    before the graph is finalized, i.e. before creating a monitored session).
    Write them with ``ChainSummaryHook`` (``MonitoredTrainingSession``) or
    fetch ``summary_op`` in the *same* ``sess.run`` as the train op: the
    summaries describe the step, so fetched alone they run it. That is why
    they are not in TensorFlow's SUMMARIES by default: ``SummarySaverHook``
    adds ``merge_all()`` to whatever run falls on its step, and an evaluation
    run would then train. Pass ``collections=[tf.compat.v1.GraphKeys.SUMMARIES]``
    only if the session runs nothing but the train op.

    Nothing is computed unless a summary is fetched. The train op's results are
    bit-identical with and without this transform. ``steps/skipped_total`` reads
    the counter while the step runs, so it may or may not include the current
    step; ``steps/skipped`` is exact. Projections of partitioned variables are
    not summarized, nor (with ``skip_nonfinite``, whose update sits in a
    ``tf.cond``) any per-layer norms: a warning says so.

    Args:
      histograms: also write the unit-norm histograms (bool).
      collections: graph collections for the summary ops (list of strings).

    Returns:
      A ``Transform``.

    Raises:
      TypeError: ``histograms`` not a bool, ``collections`` not strings.
      ValueError: (when the train op is built) a ``project_constraints`` of a
        summarized collection comes before it in the chain.

    Example::

        summarize = tf1norm.summarize_chain()
        train_op = tf1norm.create_train_op(
            loss, optimizer, transforms=[tf1norm.clip_by_global_norm(5.0), summarize])
        hooks = [tf1norm.ChainSummaryHook(summarize.summary_op, train_op, logdir, 100),
                 tf.compat.v1.train.StopAtStepHook(last_step=200)]
        with tf.compat.v1.train.MonitoredTrainingSession(
                checkpoint_dir=logdir, hooks=hooks) as sess:
            while not sess.should_stop():
                sess.run(train_op, feed_dict={x: x_batch, y: y_batch})
    """
    fn = "summarize_chain"
    if not isinstance(histograms, bool):
        raise TypeError(
            f"{fn}: `histograms` must be a bool; got {histograms!r}. Pass True or False."
        )
    if not isinstance(collections, (list, tuple)) or not all(
        isinstance(c, str) for c in collections
    ):
        raise TypeError(
            f"{fn}: `collections` must be a list of collection names; got "
            f"{collections!r}. E.g. [tf.compat.v1.GraphKeys.SUMMARIES]."
        )
    names = [_checks.string(c, fn, "collections") for c in collections]
    return _SummarizeChain(histograms, list(dict.fromkeys(names + [SUMMARIES])))
