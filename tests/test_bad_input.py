"""Bad input fails at graph construction with a message naming argument, value and fix."""

import math

import numpy as np
import pytest

import tf1norm
from tf1norm._tf import tf, v1

M = np.ones((3, 2), np.float32)

CASES = [
    # (call, error type, fragments the message must contain)
    (lambda: tf1norm.max_norm(M, 0.0), ValueError, ["max_norm", "`threshold`", "> 0", "0.0"]),
    (lambda: tf1norm.max_norm(M, -1.0), ValueError, ["`threshold`", "-1.0"]),
    (lambda: tf1norm.max_norm(M, math.inf), ValueError, ["`threshold`", "finite", "inf"]),
    (lambda: tf1norm.max_norm(M, math.nan), ValueError, ["`threshold`", "finite"]),
    (lambda: tf1norm.max_norm(M, tf.constant(-2.0)), ValueError, ["`threshold`", "-2.0"]),
    (lambda: tf1norm.max_norm(M, tf.ones([2])), ValueError, ["`threshold`", "scalar"]),
    (lambda: tf1norm.max_norm(M, "1"), TypeError, ["`threshold`"]),
    (lambda: tf1norm.max_norm(np.ones((3, 2), np.int32), 1.0), TypeError,
     ["`w`", "int32", "tf.cast"]),
    (lambda: tf1norm.max_norm("weights", 1.0), TypeError, ["`w`", "floating"]),
    (lambda: tf1norm.max_norm(tf.constant(["a", "b"]), 1.0), TypeError, ["`w`", "string"]),
    (lambda: tf1norm.max_norm(tf.constant(1.0), 1.0), ValueError, ["`w`", "rank", "0"]),
    (lambda: tf1norm.max_norm(M, 1.0, axes=2), ValueError, ["`axes`", "out of range", "[-2, 1]"]),
    (lambda: tf1norm.max_norm(M, 1.0, axes=[-3]), ValueError, ["`axes`", "out of range"]),
    (lambda: tf1norm.max_norm(M, 1.0, axes=[0, -2]), ValueError, ["`axes`", "more than once"]),
    (lambda: tf1norm.max_norm(M, 1.0, axes=[]), ValueError, ["`axes`", "at least one"]),
    (lambda: tf1norm.max_norm(M, 1.0, axes=[0.5]), TypeError, ["`axes`", "ints"]),
    (lambda: tf1norm.max_norm(M, 1.0, axes="0"), TypeError, ["`axes`"]),
    (lambda: tf1norm.renorm(M, 0, 0, 1.0), ValueError, ["renorm", "`p`", "> 0", "0"]),
    (lambda: tf1norm.renorm(M, -2, 0, 1.0), ValueError, ["`p`", "-2"]),
    (lambda: tf1norm.renorm(M, 2, 0, 0.0), ValueError, ["`maxnorm`", "> 0"]),
    (lambda: tf1norm.renorm(M, 2, [0], 1.0), TypeError, ["`axis`", "single int"]),
    (lambda: tf1norm.renorm(M, 2, 5, 1.0), ValueError, ["`axis`", "out of range"]),
    (lambda: tf1norm.renorm(np.ones(3, np.float32), 2, 0, 1.0), ValueError,
     ["`x`", "rank >= 2", "1"]),
    (lambda: tf1norm.unit_norm(M, epsilon=0.0), ValueError, ["unit_norm", "`epsilon`"]),
    (lambda: tf1norm.min_max_norm(M, 2.0, 1.0), ValueError, ["`max_value`", "`min_value`"]),
    (lambda: tf1norm.min_max_norm(M, rate=1.5), ValueError, ["`rate`", "(0, 1]"]),
    (lambda: tf1norm.min_max_norm(M, min_value=-1.0), ValueError, ["`min_value`", ">= 0"]),
    (lambda: tf1norm.non_neg(np.ones(3, np.int64)), TypeError, ["non_neg", "int64"]),
    (lambda: tf1norm.MaxNorm(0.0), ValueError, ["MaxNorm", "`threshold`"]),
    (lambda: tf1norm.MaxNorm(1.0, axes=[1, 1]), ValueError, ["MaxNorm", "more than once"]),
    (lambda: tf1norm.MaxNorm(1.0, axes=1.0), TypeError, ["MaxNorm", "`axes`"]),
    (lambda: tf1norm.MinMaxNorm(rate=0.0), ValueError, ["MinMaxNorm", "`rate`"]),
    (lambda: tf1norm.max_norm_regularizer(-1.0), ValueError,
     ["max_norm_regularizer", "`threshold`", "-1.0"]),
    (lambda: tf1norm.max_norm_regularizer(1.0, collection=3), TypeError,
     ["`collection`", "string", "3"]),
    (lambda: tf1norm.max_norm_regularizer(1.0, collection=""), ValueError, ["`collection`"]),
    (lambda: tf1norm.max_norm_regularizer(1.0, name=None), TypeError, ["`name`"]),
    (lambda: tf1norm.max_norm_regularizer(1.0)(tf.ones([2, 2])), TypeError,
     ["`weights`", "tf.Variable", "tf1norm.max_norm"]),
    (lambda: tf1norm.l2_regularizer(-0.1), ValueError, ["l2_regularizer", "`scale`", ">= 0"]),
    (lambda: tf1norm.l1_regularizer("0.1"), TypeError, ["l1_regularizer", "`scale`"]),
    (lambda: tf1norm.l2_regularizer(0.1, collection=["losses"]), TypeError, ["`collection`"]),
    (lambda: tf1norm.l1_l2_regularizer(0.1, math.inf), ValueError, ["`scale_l2`", "finite"]),
    (lambda: tf1norm.total_loss(None, collections=["empty"]), ValueError, ["nothing to sum"]),
    (lambda: tf1norm.total_loss(tf.ones([3])), ValueError, ["scalar", "reduce_mean"]),
    (lambda: tf1norm.total_loss(tf.ones([]), collections=[7]), TypeError, ["`collections`"]),
]


@pytest.mark.parametrize("call,error,fragments", CASES, ids=range(len(CASES)))
def test_bad_input_message(graph, call, error, fragments):
    with pytest.raises(error) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_max_norm_regularizer_checks_axes_against_the_variable(graph):
    reg = tf1norm.max_norm_regularizer(1.0, axes=[2])
    with pytest.raises(ValueError, match="out of range for a rank-2"):
        v1.get_variable("w", [3, 2], regularizer=reg)


def test_unknown_rank_is_rejected(graph):
    x = v1.placeholder(tf.float32, shape=None)
    with pytest.raises(ValueError, match="statically known rank"):
        tf1norm.max_norm(x, 1.0)


def test_spectral_norm_regularizer_validates_like_its_siblings(graph):
    with pytest.raises(ValueError, match="spectral_norm_regularizer: `scale` must be >= 0"):
        tf1norm.spectral_norm_regularizer(-1.0)
    with pytest.raises(TypeError, match="`scope` must be a string"):
        tf1norm.spectral_norm_regularizer(0.1, scope=3)
    with pytest.raises(TypeError, match="`weights` must be a tf.Variable"):
        tf1norm.spectral_norm_regularizer(0.1)(tf.ones([3, 2]))
    assert tf1norm.spectral_norm_regularizer(0.0)(tf.ones([3, 2])) is None
