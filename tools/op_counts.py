"""Op counts of a training step: the nodes a session touches per ``sess.run``.

``step_op_count(fetch)`` counts the ops in the ancestor set of ``fetch``
(data and control inputs), plus, recursively, the nodes of every function a
call op or a ``tf.cond`` (``If``) refers to: Grappler inlines function calls and
lowers ``If`` into ``Switch``/``Merge``, so every node of both branches is
dispatched (the untaken one as a dead tensor) each step. A function marked
``_noinline`` counts as its one call node (its body runs only when taken), and
so does an XLA-compiled one (``jit_compile=True``: one launch). A change that adds
ops per variable shows here without timing anything.

``slope_per_variable(build, small, large)`` is the op count's growth per
added dense layer between two depths: the per-variable cost of a feature.
"""


def _function_names(attr_values):
    """Names of the functions an op's attributes refer to (call ops, If/While branches)."""
    names = []
    for value in attr_values:
        if value.HasField("func"):
            names.append(value.func.name)
        elif value.HasField("list"):
            names.extend(f.name for f in value.list.func)
    return names


def _never_inlined(function):
    """One node: a ``_noinline`` function (a dead call does not run its body) or an XLA cluster."""
    return any(
        function.attr[name].b for name in ("_noinline", "_XlaMustCompile") if name in function.attr
    )


def _function_nodes(name, library):
    """Nodes of function ``name`` and of the functions it calls (each counted once per call)."""
    function = library.get(name)
    if function is None or _never_inlined(function):
        return 0
    total = len(function.node_def)
    for node in function.node_def:
        for called in _function_names(node.attr.values()):
            total += _function_nodes(called, library)
    return total


def ancestors(fetch):
    """Every op ``fetch`` (a tensor or op) depends on, itself included."""
    start = fetch.op if hasattr(fetch, "op") else fetch
    seen, stack = {start}, [start]
    while stack:
        op = stack.pop()
        for parent in [t.op for t in op.inputs] + list(op.control_inputs):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def step_op_count(fetch):
    """Ops run per step for ``fetch``: its ancestors plus the nodes of functions they call."""
    graph = fetch.graph
    library = {f.signature.name: f for f in graph.as_graph_def().library.function}
    total = 0
    for op in ancestors(fetch):
        total += 1
        for called in _function_names(op.node_def.attr.values()):
            total += _function_nodes(called, library)
    return total


def slope_per_variable(build, small=3, large=6):
    """Growth of ``step_op_count(build(depth))`` per dense layer, from ``small`` to ``large``.

    ``build(depth)`` builds a fresh graph and returns the train op.
    """
    low, high = step_op_count(build(small)), step_op_count(build(large))
    return (high - low) / (large - small)
