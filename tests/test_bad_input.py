"""Bad input to the math API (projections, constraints, regularizers) fails at graph
construction with a message naming the function, the argument, the value and the
fix. Reparameterizations, getters and the embedding: test_bad_input_reparam.py.

Each entry of ``CASES`` is graded by ``tools/audit_bad_input.py`` (which also
prints the counts over every ``tests/test_bad_input*.py``); every case must be
"clear": the expected exception type, every expected word in the message.
"""

import math
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


def _placeholder_threshold(fn):
    return fn(M, v1.placeholder(tf.float32, []))


V, E, T = ValueError, TypeError, "threshold"

CASES = [
    # projections.max_norm
    Case(
        "max_norm", lambda: tf1norm.max_norm(M, 0.0), V, ["max_norm", "`threshold`", "> 0", "0.0"]
    ),
    Case("max_norm", lambda: tf1norm.max_norm(M, -1.0), V, ["`threshold`", "-1.0"]),
    Case("max_norm", lambda: tf1norm.max_norm(M, math.inf), V, ["`threshold`", "finite", "inf"]),
    Case("max_norm", lambda: tf1norm.max_norm(M, math.nan), V, ["`threshold`", "finite", "nan"]),
    Case(
        "max_norm", lambda: tf1norm.max_norm(M, 10**400), V, ["`threshold`", "finite", "401 digits"]
    ),
    Case("max_norm", lambda: tf1norm.max_norm(M, tf.constant(-2.0)), V, ["`threshold`", "-2.0"]),
    Case("max_norm", lambda: tf1norm.max_norm(M, tf.ones([2])), V, ["`threshold`", "scalar"]),
    Case("max_norm", lambda: tf1norm.max_norm(M, "1"), E, ["`threshold`", "'1'"]),
    Case("max_norm", lambda: tf1norm.max_norm(M, True), E, ["`threshold`", "number", "True"]),
    Case("max_norm", lambda: tf1norm.max_norm(M, None), E, ["max_norm", "`threshold`", "None"]),
    Case(
        "max_norm",
        lambda: tf1norm.max_norm(np.ones((3, 2), np.int32), 1.0),
        E,
        ["`w`", "int32", "tf.cast"],
    ),
    Case("max_norm", lambda: tf1norm.max_norm("weights", 1.0), E, ["`w`", "floating", "'weights'"]),
    Case("max_norm", lambda: tf1norm.max_norm(tf.constant(["a", "b"]), 1.0), E, ["`w`", "string"]),
    Case("max_norm", lambda: tf1norm.max_norm(None, 1.0), E, ["max_norm", "`w`", "None"]),
    Case("max_norm", lambda: tf1norm.max_norm(tf.constant(1.0), 1.0), V, ["`w`", "rank", "0"]),
    Case(
        "max_norm",
        lambda: tf1norm.max_norm(v1.placeholder(tf.float32), 1.0),
        V,
        ["`w`", "statically known rank"],
    ),
    Case(
        "max_norm",
        lambda: tf1norm.max_norm(M, 1.0, axes=2),
        V,
        ["`axes`", "out of range", "[-2, 1]"],
    ),
    Case(
        "max_norm", lambda: tf1norm.max_norm(M, 1.0, axes=[-3]), V, ["`axes`", "out of range", "-3"]
    ),
    Case(
        "max_norm", lambda: tf1norm.max_norm(M, 1.0, axes=[0, -2]), V, ["`axes`", "more than once"]
    ),
    Case("max_norm", lambda: tf1norm.max_norm(M, 1.0, axes=[]), V, ["`axes`", "at least one"]),
    Case("max_norm", lambda: tf1norm.max_norm(M, 1.0, axes=[0.5]), E, ["`axes`", "ints", "0.5"]),
    Case("max_norm", lambda: tf1norm.max_norm(M, 1.0, axes="0"), E, ["`axes`", "'0'"]),
    Case("max_norm", lambda: tf1norm.max_norm(M, 1.0, axes=[True]), E, ["`axes`", "True"]),
    Case(
        "max_norm",
        lambda: tf1norm.max_norm(M, 1.0, axes=tf.constant([0])),
        E,
        ["max_norm", "`axes`", "not a tensor", "Const", "axes=[0]"],
    ),
    # renorm, unit_norm, min_max_norm, non_neg
    Case("renorm", lambda: tf1norm.renorm(M, 0, 0, 1.0), V, ["renorm", "`p`", "> 0"]),
    Case("renorm", lambda: tf1norm.renorm(M, -2, 0, 1.0), V, ["`p`", "-2"]),
    Case("renorm", lambda: tf1norm.renorm(M, 2, 0, 0.0), V, ["`maxnorm`", "> 0", "0.0"]),
    Case("renorm", lambda: tf1norm.renorm(M, 2, 0, math.nan), V, ["`maxnorm`", "nan"]),
    Case("renorm", lambda: tf1norm.renorm(M, 2, [0], 1.0), E, ["`axis`", "single int", "[0]"]),
    Case("renorm", lambda: tf1norm.renorm(M, 2, 5, 1.0), V, ["`axis`", "out of range", "5"]),
    Case(
        "renorm",
        lambda: tf1norm.renorm(np.ones(3, np.float32), 2, 0, 1.0),
        V,
        ["`x`", "rank >= 2", "got 1", "reshape a vector", "tf.reshape(x, [1, -1])"],
    ),
    Case("renorm", lambda: tf1norm.renorm("x", 2, 0, 1.0), E, ["renorm", "`x`", "'x'"]),
    Case(
        "unit_norm", lambda: tf1norm.unit_norm(M, epsilon=0.0), V, ["unit_norm", "`epsilon`", "0.0"]
    ),
    Case("unit_norm", lambda: tf1norm.unit_norm(M, axes=[4]), V, ["unit_norm", "`axes`", "[4]"]),
    Case(
        "unit_norm",
        lambda: tf1norm.unit_norm(np.ones((2, 2), np.int64)),
        E,
        ["unit_norm", "`w`", "int64"],
    ),
    Case(
        "min_max_norm",
        lambda: tf1norm.min_max_norm(M, 2.0, 1.0),
        V,
        ["min_max_norm", "`max_value`", "`min_value`"],
    ),
    Case("min_max_norm", lambda: tf1norm.min_max_norm(M, rate=1.5), V, ["`rate`", "(0, 1]", "1.5"]),
    Case(
        "min_max_norm",
        lambda: tf1norm.min_max_norm(M, min_value=-1.0),
        V,
        ["`min_value`", ">= 0", "-1.0"],
    ),
    Case(
        "min_max_norm",
        lambda: tf1norm.min_max_norm(M, max_value=math.inf),
        V,
        ["`max_value`", "inf"],
    ),
    Case("non_neg", lambda: tf1norm.non_neg(np.ones(3, np.int64)), E, ["non_neg", "int64"]),
    Case("non_neg", lambda: tf1norm.non_neg("w"), E, ["non_neg", "`w`", "'w'"]),
    # constraints
    Case("MaxNorm", lambda: tf1norm.MaxNorm(0.0), V, ["MaxNorm", "`threshold`", "0.0"]),
    Case("MaxNorm", lambda: tf1norm.MaxNorm(math.nan), V, ["MaxNorm", "`threshold`", "nan"]),
    Case("MaxNorm", lambda: tf1norm.MaxNorm(1.0, axes=[1, 1]), V, ["MaxNorm", "more than once"]),
    Case("MaxNorm", lambda: tf1norm.MaxNorm(1.0, axes=1.0), E, ["MaxNorm", "`axes`", "1.0"]),
    Case("MaxNorm", lambda: tf1norm.MaxNorm(1.0)(np.ones(3, np.int32)), E, ["`w`", "int32"]),
    Case("MinMaxNorm", lambda: tf1norm.MinMaxNorm(rate=0.0), V, ["MinMaxNorm", "`rate`"]),
    Case(
        "MinMaxNorm",
        lambda: tf1norm.MinMaxNorm(min_value=3.0, max_value=1.0),
        V,
        ["MinMaxNorm", "`min_value`", "`max_value`"],
    ),
    Case("UnitNorm", lambda: tf1norm.UnitNorm(epsilon=-1.0), V, ["UnitNorm", "`epsilon`", "-1.0"]),
    Case("UnitNorm", lambda: tf1norm.UnitNorm(axes="x"), E, ["UnitNorm", "`axes`", "'x'"]),
    Case("NonNeg", lambda: tf1norm.NonNeg()("w"), E, ["non_neg", "`w`", "'w'"]),
    Case(
        "SpectralNorm",
        lambda: tf1norm.SpectralNorm(0),
        V,
        ["SpectralNorm", "`power_iterations`", "0"],
    ),
    Case("SpectralNorm", lambda: tf1norm.SpectralNorm(1.5), V, ["`power_iterations`", "1.5"]),
    Case(
        "SpectralNorm",
        lambda: tf1norm.SpectralNorm()(tf.ones([3, 2])),
        E,
        ["SpectralNorm", "`weights`", "tf.Variable", "SymbolicTensor"],
    ),
    Case(
        "SpectralNorm",
        lambda: tf1norm.SpectralNorm()(_var((3,))),
        V,
        ["SpectralNorm", "`w`", "rank >= 2", "got 1", "reshape a vector"],
    ),
    Case(
        "MaxNorm",
        lambda: tf1norm.MaxNorm(1.0, axes=tf.constant([0])),
        E,
        ["MaxNorm", "`axes`", "not a tensor", "axes=[0]"],
    ),
    Case(
        "MaxNorm",
        lambda: tf1norm.MaxNorm(1.0, axes=[0, -64])(_var()),
        V,
        ["max_norm", "`axes`", "out of range for a rank-2", "-64", "[-2, 1]"],
    ),
    Case(
        "MaxNorm",
        lambda: tf1norm.MaxNorm.from_config({"threshold": 1.0, "bogus": 2}),
        E,
        ["MaxNorm.from_config", "`config`", "['bogus']", "get_config()"],
    ),
    Case(
        "UnitNorm",
        lambda: tf1norm.UnitNorm.from_config([("axes", 0)]),
        E,
        ["UnitNorm.from_config", "`config`", "[('axes', 0)]", "get_config()"],
    ),
    # regularizers
    Case(
        "max_norm_regularizer",
        lambda: tf1norm.max_norm_regularizer(-1.0),
        V,
        ["max_norm_regularizer", "`threshold`", "-1.0"],
    ),
    Case(
        "max_norm_regularizer",
        lambda: tf1norm.max_norm_regularizer(1.0, collection=3),
        E,
        ["`collection`", "string", "3"],
    ),
    Case(
        "max_norm_regularizer",
        lambda: tf1norm.max_norm_regularizer(1.0, collection=""),
        V,
        ["`collection`", "''"],
    ),
    Case(
        "max_norm_regularizer",
        lambda: tf1norm.max_norm_regularizer(1.0, name=None),
        E,
        ["`name`", "None"],
    ),
    Case(
        "max_norm_regularizer",
        lambda: tf1norm.max_norm_regularizer(1.0)(tf.ones([2, 2])),
        E,
        ["`weights`", "tf.Variable", "tf1norm.max_norm"],
    ),
    Case(
        "max_norm_regularizer",
        lambda: v1.get_variable(
            "w", [3, 2], regularizer=tf1norm.max_norm_regularizer(1.0, axes=[2])
        ),
        V,
        ["`axes`", "out of range for a rank-2", "(2,)"],
    ),
    Case(
        "l2_regularizer",
        lambda: tf1norm.l2_regularizer(-0.1),
        V,
        ["l2_regularizer", "`scale`", ">= 0", "-0.1"],
    ),
    Case(
        "l1_regularizer",
        lambda: tf1norm.l1_regularizer("0.1"),
        E,
        ["l1_regularizer", "`scale`", "'0.1'"],
    ),
    Case(
        "l2_regularizer",
        lambda: tf1norm.l2_regularizer(0.1, collection=["losses"]),
        E,
        ["`collection`", "['losses']"],
    ),
    Case("l2_regularizer", lambda: tf1norm.l2_regularizer(0.1, scope=3), E, ["`scope`", "3"]),
    Case(
        "l1_l2_regularizer",
        lambda: tf1norm.l1_l2_regularizer(0.1, math.inf),
        V,
        ["l1_l2_regularizer", "`scale_l2`", "finite", "inf"],
    ),
    Case(
        "l1_l2_regularizer", lambda: tf1norm.l1_l2_regularizer(-1.0, 0.1), V, ["`scale_l1`", "-1.0"]
    ),
    Case(
        "spectral_norm_regularizer",
        lambda: tf1norm.spectral_norm_regularizer(-1.0),
        V,
        ["spectral_norm_regularizer", "`scale`", ">= 0", "-1.0"],
    ),
    Case(
        "spectral_norm_regularizer",
        lambda: tf1norm.spectral_norm_regularizer(0.1, scope=3),
        E,
        ["`scope`", "string", "3"],
    ),
    Case(
        "spectral_norm_regularizer",
        lambda: tf1norm.spectral_norm_regularizer(0.1)(tf.ones([3, 2])),
        E,
        ["`weights`", "tf.Variable"],
    ),
    Case(
        "spectral_norm_regularizer",
        lambda: tf1norm.spectral_norm_regularizer(0.1, power_iterations=0),
        V,
        ["`power_iterations`", "0"],
    ),
    Case(
        "total_loss",
        lambda: tf1norm.total_loss(None, collections=["empty"]),
        V,
        ["total_loss", "nothing to sum", "['empty']"],
    ),
    Case(
        "total_loss",
        lambda: tf1norm.total_loss(tf.ones([3])),
        V,
        ["total_loss", "scalar", "reduce_mean", "(3,)"],
    ),
    Case(
        "total_loss",
        lambda: tf1norm.total_loss(tf.ones([]), collections=[7]),
        E,
        ["`collections`", "7"],
    ),
    Case(
        "total_loss",
        lambda: tf1norm.total_loss(tf.constant(1)),
        E,
        ["total_loss", "`loss`", "int32", "tf.cast"],
    ),
    Case("total_loss", lambda: tf1norm.total_loss("abc"), E, ["total_loss", "`loss`", "'abc'"]),
    Case("total_loss", lambda: tf1norm.total_loss([tf.ones([]), "x"]), E, ["`loss`", "'x'"]),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.apis[0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_answered_clearly(case):
    verdict, detail = grade(case)
    assert verdict == "clear", detail


def test_a_threshold_fed_at_run_time_is_checked_when_the_projection_runs(graph):
    threshold = v1.placeholder(tf.float32, [])
    projected = tf1norm.max_norm(M * 3.0, threshold)
    renormed = tf1norm.renorm(M * 3.0, 2, 1, threshold)
    with v1.Session() as session:
        np.testing.assert_allclose(
            session.run(projected, {threshold: 1.0}), M * 3.0 / np.sqrt(9 * 3), rtol=1e-6
        )
        for bad in (math.nan, -1.0, 0.0, math.inf):
            for op in (projected, renormed):
                with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite and > 0"):
                    session.run(op, {threshold: bad})


def test_a_computed_threshold_is_checked_too(graph):
    step = v1.placeholder(tf.float32, [])
    projected = tf1norm.max_norm(M, 2.0 - step)  # a schedule that turns negative
    with v1.Session() as session:
        np.testing.assert_allclose(session.run(projected, {step: 0.0}), M, rtol=1e-6)
        with pytest.raises(tf.errors.InvalidArgumentError, match="max_norm: `threshold`"):
            session.run(projected, {step: 3.0})
