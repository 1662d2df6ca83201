"""Where tf1norm keeps records and caches when variables are eager (TF2).

In a TF1 graph every variable and tensor has a ``.graph`` and tf1norm keeps
its records beside that graph (``tf1norm.registry``). A variable created in
eager mode (a ``tf.compat.v1.keras.utils.track_tf1_style_variables`` layer, a
Keras layer) has no graph, and its forward pass runs either eagerly or in the
``FuncGraph`` of a ``tf.function``. This module names those places:

==========================  ==========================================  ==============
what                        where                                        function
==========================  ==========================================  ==============
a graph value               its own graph (unchanged TF1 behaviour)      ``record_key``
records that hold only      the variable itself (``persistent``)         ``record_key``
variables (max-norm)
records that hold tensors   the outermost ``FuncGraph`` being traced,    ``trace_key``
of one forward pass         or ``EAGER_STEP`` when running eagerly
cached tensors (losses)     the current default graph inside a           ``cache_graph``
                            function; nothing is cached eagerly
==========================  ==========================================  ==============

Nothing here builds ops; the registry, regularizers and getters call these.
``records_on_creation`` makes the shim call max-norm regularizers when it
creates their variable (it otherwise calls regularizers only when
``layer.losses`` is read). ``euclidean_norm`` is the XLA-compilable norm.
"""

import contextlib
import weakref

from tf1norm._src.compat import tf, v1


class _Store:
    """A named, weak-referenceable key of ``registry``'s per-context state."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<tf1norm {self.name}>"


EAGER_STEP = _Store("eager step store")
PERSISTENT = _Store("persistent eager records")

# id(variable) -> variable, weakly: the eager variables that carry records.
_CARRIERS = weakref.WeakValueDictionary()
_ATTRIBUTE = "_tf1norm_records"


def tf_variable(value):
    """The ``tf.Variable`` behind ``value`` (itself, or a Keras 3 variable's ``.value``)."""
    if isinstance(value, tf.Variable):
        return value
    inner = getattr(value, "value", None)
    return inner if isinstance(inner, tf.Variable) else value


def is_eager(value):
    """True when ``value`` (variable or tensor) was made eagerly and so has no graph.

    Ref variables and ``PartitionedVariable`` parts are graph objects. A
    ``tf.distribute`` variable is judged by its first replica's component (its
    own ``handle`` raises outside a replica context).
    """
    value = tf_variable(value)
    if isinstance(value, tf.distribute.DistributedValues):
        value = value._primary  # no public accessor that works in every context
    if isinstance(value, tf.Variable):
        handle = getattr(value, "handle", None)
        return handle is not None and not tf.is_symbolic_tensor(handle)
    if isinstance(value, tf.Tensor):
        return not tf.is_symbolic_tensor(value)
    return False


def adopt_as_constraint(variable, projection):
    """Make ``projection`` the eager ``variable``'s ``constraint`` when it has none.

    Keras (3 and tf-keras) and ``tf.compat.v1.train`` optimizers apply a
    variable's ``constraint`` after their update, so a plain TF2 loop
    (``optimizer.apply_gradients``, no tf1norm step) projects too. The
    projection is marked ``adopted``: tf1norm's own steps leave it to the
    optimizer instead of projecting twice. A variable with its own
    constraint keeps it (tf1norm's steps then project after it).
    """
    # A distributed variable reads its primary's constraint; an optimizer's
    # cross-replica update applies each component's own.
    components = getattr(variable, "_values", None) or [variable]
    if any(
        getattr(c, "constraint", None) is not None or not hasattr(c, "_constraint")
        for c in components
    ):
        return False

    def constraint(value):
        return projection.fn(value)

    for component in components:
        component._constraint = constraint  # no public setter; tf.Variable reads it
    if getattr(variable, "constraint", None) is not constraint:  # a wrapper that reads
        for component in components:  # elsewhere (ps variables)
            component._constraint = None
        return False
    projection.adopted = True
    return True


def in_tf2():
    """True when the outermost context executes eagerly (eager code or a ``tf.function``)."""
    if tf.executing_eagerly():
        return True
    with tf.init_scope():
        return tf.executing_eagerly()


def trace_key():
    """The store of forward-pass records here: the outermost traced ``FuncGraph``, or eager.

    Inside a ``tf.cond`` branch of a function, the function's own graph (so
    the step that traced the forward pass finds the records after the branch).
    """
    if tf.executing_eagerly():
        return EAGER_STEP
    graph = v1.get_default_graph()
    while hasattr(getattr(graph, "outer_graph", None), "outer_graph"):
        graph = graph.outer_graph
    return graph


def record_key(value, transient):
    """Where records about ``value`` go: its graph, ``PERSISTENT``, or ``trace_key()``."""
    if not is_eager(value):
        return tf_variable(value).graph
    return trace_key() if transient else PERSISTENT


def cache_graph(value):
    """The graph to cache tensors computed from ``value`` in; None: do not cache."""
    if not is_eager(value):
        return tf_variable(value).graph
    return None if tf.executing_eagerly() else v1.get_default_graph()


def colocated(variable):
    """``colocate_with`` the variable in a graph; nothing for an eager variable."""
    if is_eager(variable):
        return contextlib.nullcontext()
    return variable.graph.colocate_with(variable.op)


def variable_name(variable):
    """The checkpoint-style name (``scope/kernel``) of a graph or eager variable."""
    variable = tf_variable(variable)
    if is_eager(variable):
        return variable.name.split(":")[0]
    return variable.op.name


def persistent_table(variable, collection):
    """The dict of persistent records of ``collection`` carried by eager ``variable``."""
    records = getattr(variable, _ATTRIBUTE, None)
    if records is None:
        records = {}
        setattr(variable, _ATTRIBUTE, records)
        _CARRIERS[id(variable)] = variable
    return records.setdefault(collection, {})


def persistent_records(collection=None):
    """``{collection: [records]}`` of every live eager variable, in creation order."""
    result = {}
    for variable in list(_CARRIERS.values()):
        for name, table in getattr(variable, _ATTRIBUTE, {}).items():
            if collection is None or name == collection:
                result.setdefault(name, []).extend(table.values())
    return result


def attached(variable, key, build):
    """A per-variable object built once (e.g. the ``sn_u_state`` of an eager variable)."""
    store = getattr(variable, "_tf1norm_cache", None)
    if store is None:
        store = {}
        setattr(variable, "_tf1norm_cache", store)
    if key not in store:
        store[key] = build()
    return store[key]


_TRACED = {}


def traced_once(key, python_function, signature, jit_compile=None):
    """``tf.function(python_function)`` for ``signature``, traced once per ``key``.

    A graph-mode caller gets one function-call op per use instead of the
    function's ops (Grappler inlines the body when a session runs it), and the
    Python cost of building the body is paid once per process. ``jit_compile``
    is passed to ``tf.function`` (True: the call runs as one XLA cluster).
    """
    if key not in _TRACED:
        _TRACED[key] = tf.function(
            python_function, input_signature=signature, autograph=False, jit_compile=jit_compile
        )
    return _TRACED[key]


def in_xla():
    """True while building a function compiled with XLA (``jit_compile=True``)."""
    if tf.executing_eagerly():
        return False
    from tensorflow.python.ops import control_flow_util  # no public equivalent

    return control_flow_util.GraphOrParentsInXlaContext(v1.get_default_graph())


def euclidean_norm(x, axis, keepdims=True):
    """``sqrt(Σ x²)`` over ``axis``: one ``EuclideanNorm`` op, or its XLA-compilable twin.

    XLA has no ``EuclideanNorm`` kernel; inside ``jit_compile=True`` the norm
    is ``sqrt(reduce_sum(square(x)))`` (the same reduction order on CPU, so the
    same bits in the cases tested in ``tests/test_tf2_shim.py``).
    """
    if in_xla():
        return tf.sqrt(tf.reduce_sum(tf.square(x), axis=axis, keepdims=keepdims))
    return tf.math.reduce_euclidean_norm(x, axis=axis, keepdims=keepdims)


# ------------------------------------------------------ the shim's lazy regularizers

_MARK = "_tf1norm_records_on_creation"
_SHIM_HOOKS = (
    (
        "tf_keras.src.legacy_tf_layers.variable_scope_shim",
        "_EagerVariableStore",
        "add_regularizer",
        1,
    ),
    ("tf_keras.src.engine.base_layer", "Layer", "_handle_weight_regularization", 2),
    (
        "tensorflow.python.keras.legacy_tf_layers.variable_scope_shim",
        "_EagerVariableStore",
        "add_regularizer",
        1,
    ),
    ("tensorflow.python.keras.engine.base_layer", "Layer", "_handle_weight_regularization", 2),
)
_hooked = []


def records_on_creation(regularizer):
    """Mark ``regularizer`` (e.g. max-norm) as one that records when its variable is created.

    The TF2 shim and Keras layers call regularizers lazily, when
    ``layer.losses`` is read; a max-norm regularizer has no loss, so a step
    that never reads ``layer.losses`` would never see its projection. Marked
    regularizers are also called once when the shim (or a Keras layer)
    creates their eager variable (hooks installed on first use).

    Returns:
      ``regularizer``, marked.
    """
    setattr(regularizer, _MARK, True)
    if not _hooked:
        _hooked.append(True)
        for module, cls, method, var_index in _SHIM_HOOKS:
            _hook(module, cls, method, var_index)
    return regularizer


def _hook(module_name, class_name, method_name, var_index):
    """Wrap ``class.method(self, ..., var, regularizer)`` to call a marked regularizer at once."""
    import importlib
    import sys

    if module_name.split(".")[0] not in sys.modules and module_name.startswith("tf_keras"):
        return _hook_later(module_name, class_name, method_name, var_index)
    try:
        owner = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        return None
    original = getattr(owner, method_name)

    def wrapped(self, *args):
        result = original(self, *args)
        variable, regularizer = args[var_index - 1], args[-1]
        if getattr(regularizer, _MARK, False) and is_eager(variable):
            regularizer(variable)
        return result

    setattr(owner, method_name, wrapped)
    return wrapped


def _hook_later(module_name, class_name, method_name, var_index):
    """tf-keras not imported yet: import it now (TensorFlow is, as regularizers run on it)."""
    try:
        import tf_keras  # noqa: F401
    except ImportError:
        return None
    return _hook(module_name, class_name, method_name, var_index)
