"""Bad input to the reparameterizations (weight_norm, spectral_norm...), the custom
getters and embedding_lookup fails at graph construction with a message naming the
function, the argument, the value and the fix; ids known only at run time fail the
lookup with the same message.

Each entry of ``CASES`` is graded by ``tools/audit_bad_input.py``; every case must
be "clear": the expected exception type, every expected word in the message.
"""

import pathlib
import sys

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
from audit_bad_input import Case, grade  # noqa: E402

M = np.ones((3, 2), np.float32)


def _var(shape=(3, 2), name="w", dtype=tf.float32):
    return v1.get_variable(name, list(shape), dtype, initializer=tf.ones_initializer())


def _dense_under(getter, units=2):
    with v1.variable_scope("net", custom_getter=getter):
        return v1.layers.dense(tf.ones([1, 3]), units)


def _nested(outer, inner):
    with v1.variable_scope("a", custom_getter=outer):
        return _dense_under(inner)


def _sharded():
    """A 4-row table in two shards of 2 rows."""
    return v1.get_variable(
        "sharded",
        [4, 2],
        initializer=tf.ones_initializer(),
        partitioner=v1.fixed_size_partitioner(2),
    )


def _lookup_fed(params, values, **kwargs):
    """Run a lookup whose ids are fed: out-of-range ids can only be caught at run time."""
    ids = v1.placeholder(tf.int64, [None])
    rows = tf1norm.embedding_lookup(params, ids, **kwargs)
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        return session.run(rows, {ids: values})


V, E = ValueError, TypeError
Invalid = tf.errors.InvalidArgumentError

CASES = [
    # reparameterizations
    Case(
        "weight_norm",
        lambda: tf1norm.weight_norm(M, np.ones(2, np.float32), epsilon=0.0),
        V,
        ["weight_norm", "`epsilon`", "0.0"],
    ),
    Case(
        "weight_norm",
        lambda: tf1norm.weight_norm(M, np.ones(3, np.float32)),
        V,
        ["weight_norm", "`g`", "(3,)"],
    ),
    Case(
        "weight_norm",
        lambda: tf1norm.weight_norm(np.ones((3, 2), np.int32), np.ones(2)),
        E,
        ["weight_norm", "`v`", "int32"],
    ),
    Case(
        "weight_norm",
        lambda: tf1norm.weight_norm(M, np.ones(2, np.float32), axes=[3]),
        V,
        ["weight_norm", "`axes`", "[3]"],
    ),
    Case(
        "spectral_norm",
        lambda: tf1norm.spectral_norm(M, np.ones((1, 3), np.float32)),
        V,
        ["spectral_norm", "`u`", "[1, 2]", "(1, 3)"],
    ),
    Case(
        "spectral_norm",
        lambda: tf1norm.spectral_norm(M, np.ones((1, 2), np.float32), 0),
        V,
        ["spectral_norm", "`power_iterations`", "0"],
    ),
    Case(
        "spectral_norm",
        lambda: tf1norm.spectral_norm(np.ones(3, np.float32), np.ones((1, 3), np.float32)),
        V,
        ["spectral_norm", "`w`", "rank >= 2", "got 1", "tf.reshape(w, [1, -1])"],
    ),
    Case(
        "spectral_norm",
        lambda: tf1norm.spectral_norm(
            v1.placeholder(tf.float32, [3, None]), np.ones((1, 2), np.float32)
        ),
        V,
        [
            "spectral_norm",
            "`w`",
            "statically known size on axes [1]",
            "(3, None)",
            "tf.ensure_shape",
        ],
    ),
    Case(
        "weight_norm",
        lambda: tf1norm.weight_norm(v1.placeholder(tf.float32, [3, None]), np.ones(2, np.float32)),
        V,
        ["weight_norm", "`v`", "statically known size on axes [1]", "(3, None)", "tf.ensure_shape"],
    ),
    Case(
        "spectral_norm", lambda: tf1norm.spectral_norm(M, "u"), E, ["spectral_norm", "`u`", "'u'"]
    ),
    # getters
    Case(
        "spectral_norm_getter",
        lambda: tf1norm.spectral_norm_getter(update="later"),
        V,
        ["spectral_norm_getter", "`update`", "'later'"],
    ),
    Case(
        "spectral_norm_getter",
        lambda: tf1norm.spectral_norm_getter(power_iterations=0),
        V,
        ["spectral_norm_getter", "`power_iterations`", "0"],
    ),
    Case(
        "spectral_norm_getter",
        lambda: tf1norm.spectral_norm_getter(name_filter="(["),
        V,
        ["spectral_norm_getter", "`name_filter`", "'(['"],
    ),
    Case(
        "spectral_norm_getter",
        lambda: tf1norm.spectral_norm_getter(training="yes"),
        V,
        ["spectral_norm_getter", "`training`", "'yes'"],
    ),
    Case(
        "weight_norm_getter",
        lambda: tf1norm.weight_norm_getter(name_filter=3),
        V,
        ["weight_norm_getter", "`name_filter`", "3"],
    ),
    Case(
        "weight_norm_getter",
        lambda: tf1norm.weight_norm_getter(epsilon=0.0),
        V,
        ["weight_norm_getter", "`epsilon`", "0.0"],
    ),
    Case(
        ("weight_norm_getter", "spectral_norm_getter"),
        lambda: _nested(tf1norm.weight_norm_getter(), tf1norm.spectral_norm_getter()),
        V,
        ["spectral_norm_getter", "already reparameterized", "a/net/dense/kernel"],
    ),
    Case(
        "weight_norm_getter",
        lambda: _nested(tf1norm.weight_norm_getter(), tf1norm.weight_norm_getter()),
        V,
        ["weight_norm_getter", "already reparameterized", "name_filter"],
    ),
    Case(
        "spectral_norm_getter",
        lambda: _nested(tf1norm.spectral_norm_getter(), tf1norm.spectral_norm_getter()),
        V,
        ["spectral_norm_getter", "already reparameterized"],
    ),
    # embedding
    Case(
        "embedding_lookup",
        lambda: tf1norm.embedding_lookup(_var((5, 2)), [0], max_norm=0.0),
        V,
        ["embedding_lookup", "`max_norm`", "0.0"],
    ),
    Case(
        "embedding_lookup",
        lambda: tf1norm.embedding_lookup(_var((5, 2)), [0], max_norm=1.0, norm_type=0.0),
        V,
        ["embedding_lookup", "`norm_type`", "0.0"],
    ),
    Case(
        "embedding_lookup",
        lambda: tf1norm.embedding_lookup(_var((5, 2)), [0], max_norm=1.0, mode="sometimes"),
        V,
        ["embedding_lookup", "`mode`", "'sometimes'"],
    ),
    Case(
        "embedding_lookup",
        lambda: tf1norm.embedding_lookup(_var((5, 2)), [0.5]),
        E,
        ["embedding_lookup", "`ids`", "float"],
    ),
    Case(
        "embedding_lookup",
        lambda: tf1norm.embedding_lookup("table", [0], max_norm=1.0),
        E,
        ["embedding_lookup", "`params`", "tf.Variable", "str"],
    ),
    Case(
        "embedding_lookup",
        lambda: tf1norm.embedding_lookup(_var((5, 2)), [0], max_norm=1.0, partition_strategy="odd"),
        V,
        ["embedding_lookup", "`partition_strategy`", "'odd'"],
    ),
    Case(
        "embedding_lookup",
        lambda: tf1norm.embedding_lookup(_var((5, 2)), [1, 7]),
        V,
        ["embedding_lookup", "`ids`", "[0, 5)", "5 rows", "got [7]", "out-of-vocabulary"],
    ),
    Case(
        "embedding_lookup",
        lambda: tf1norm.embedding_lookup(_var((5, 2)), [-1], max_norm=1.0),
        V,
        ["embedding_lookup", "`ids`", "[0, 5)", "got [-1]", "out-of-vocabulary"],
    ),
    Case(
        "embedding_lookup",
        lambda: tf1norm.embedding_lookup(_sharded(), [5], max_norm=1.0),
        V,
        ["embedding_lookup", "`ids`", "[0, 4)", "4 rows", "got [5]", "enlarge the table"],
    ),
    Case(
        "embedding_lookup",
        lambda: tf1norm.embedding_lookup(_sharded(), [-2, 0]),
        V,
        ["embedding_lookup", "`ids`", "[0, 4)", "got [-2]"],
    ),
    Case(
        "embedding_lookup",
        lambda: _lookup_fed(_var((5, 2)), [1, 7, -2]),
        Invalid,
        [
            "embedding_lookup: `ids` must be in [0, 5)",
            "5 rows",
            "checked at run time",
            "[7 -2]",
            "out-of-vocabulary",
        ],
    ),
    Case(
        "embedding_lookup",
        lambda: _lookup_fed(_sharded(), [4, 0], max_norm=1.0),
        Invalid,
        ["embedding_lookup: `ids` must be in [0, 4)", "4 rows", "[4]"],
    ),
    Case(
        "embedding_lookup",
        lambda: _lookup_fed(_sharded(), [-1], mode="torch", max_norm=1.0),
        Invalid,
        ["embedding_lookup: `ids` must be in [0, 4)", "[-1]"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.apis[0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_answered_clearly(case):
    verdict, detail = grade(case)
    assert verdict == "clear", detail


def test_fed_ids_in_range_still_look_up_their_rows(graph):
    values = np.arange(8.0, dtype=np.float32).reshape(4, 2)
    table = [v1.get_variable(f"shard{i}", initializer=values[2 * i : 2 * i + 2]) for i in range(2)]
    ids = v1.placeholder(tf.int32, [None])
    rows = tf1norm.embedding_lookup(table, ids)
    capped = tf1norm.embedding_lookup(table, ids, max_norm=100.0)
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        for fetch in (rows, capped):
            np.testing.assert_array_equal(
                session.run(fetch, {ids: [3, 0]}), [[6.0, 7.0], [0.0, 1.0]]
            )
