"""Bad input to ``tf1norm.bounds`` (networks, input boxes, methods, checkpoint readers)
fails at construction with a message naming the argument, the value and the fix.

``CASES`` is graded by ``tools/audit_bad_input.py``; every case must be "clear".
"""

import math
import os
import pathlib
import sys

import numpy as np
import pytest

import tf1norm
from tf1norm import bounds
from tf1norm._src.compat import v1
from bad_input_cli_files import _files

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
from audit_bad_input import Case, grade  # noqa: E402

V, E = ValueError, TypeError


def _restore_into_kernel(name):
    kernel = v1.get_variable("dense/kernel", [3, 2])
    with v1.Session() as session:
        session.run(kernel.initializer)
        return tf1norm.restore_plain_checkpoint(session, os.path.join(_files(), name))


def _read_kernel(name):
    kernel = v1.get_variable("dense/kernel", [3, 2])
    return bounds.graph_value_reader(checkpoint=os.path.join(_files(), name))(kernel)


KERNEL = np.array([[1.0, -1.0], [0.5, 2.0]])


def _net(kernel=KERNEL, bias=None):
    return bounds.Network.from_numpy([kernel], [np.zeros(2) if bias is None else bias], ["relu"])


CASES = [
    # tf1norm.bounds
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [math.nan, 0], [1, 1]),
        V,
        ["`lower`", "finite", "nan", "feature 0"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [-math.inf, 0], [1, 1]),
        V,
        ["`lower`", "finite", "-inf"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [0, 0], [1, math.inf]),
        V,
        ["`upper`", "finite", "inf", "feature 1"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(np.full((2, 2), np.nan)), [0, 0], [1, 1]),
        V,
        ["layer 0", "`kernel`", "nan"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(bias=[np.inf, 0]), [0, 0], [1, 1], "interval"),
        V,
        ["layer 0", "`bias`", "inf"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [1, 0], [0, 1]),
        V,
        ["`lower`", "`upper`", "feature 0"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [0, 0, 0], [1, 1, 1]),
        V,
        ["`lower`", "`upper`", "2 values", "3"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [0, 0], [1, 1], "bogus"),
        V,
        ["output_bounds", "method", "'bogus'"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds("net", [0, 0], [1, 1]),
        E,
        ["output_bounds", "`network`", "str"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), ["a", 0], [1, 1]),
        E,
        ["`lower`", "'a'"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [0, 0], [1, 1], spec=[[math.nan, 1.0]]),
        V,
        ["output_bounds", "`spec`", "finite"],
    ),
    Case(
        "bounds.Network",
        lambda: bounds.Network.from_numpy([KERNEL], [], ["relu"]),
        V,
        ["from_numpy", "1 weights", "0 biases"],
    ),
    Case("bounds.Dense", lambda: bounds.Dense(np.ones(3)), V, ["Dense", "`kernel`", "(3,)"]),
    Case("bounds.Dense", lambda: bounds.Dense(KERNEL, np.ones(3)), V, ["Dense", "`bias`", "(3,)"]),
    Case("bounds.Activation", lambda: bounds.Activation("swish"), V, ["Activation", "'swish'"]),
    Case("bounds.Network", lambda: bounds.Network([]), V, ["Network", "first layer"]),
    Case(
        "bounds.Network",
        lambda: bounds.Network.from_numpy([KERNEL], [np.zeros(2)], "relu"),
        E,
        ["from_numpy", "`activations`", "'relu'", "activations=['relu', 'linear']"],
    ),
    Case(
        "bounds.lipschitz_bound",
        lambda: bounds.lipschitz_bound([KERNEL]),
        E,
        ["lipschitz_bound", "`network`", "list", "Network.from_numpy"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [-1e30, -1e30], [1e30, 1e30], "exact"),
        V,
        ["exact", "`lower`", "±1e+15", "-1e+30", "feature 0", "HiGHS", "crown"],
    ),
    Case(
        "bounds.output_bounds",
        lambda: bounds.output_bounds(_net(), [0, 0], [1, 2e15], "milp"),
        V,
        ["exact", "`upper`", "±1e+15", "2e+15", "feature 1", "Rescale the inputs"],
    ),
    Case(
        "bounds.graph_value_reader",
        lambda: bounds.graph_value_reader(checkpoint="/nonexistent/model.ckpt"),
        V,
        [
            "graph_value_reader",
            "`checkpoint`",
            "'/nonexistent/model.ckpt'",
            "no checkpoint files",
            "Saver.save",
        ],
    ),
    Case(
        "bounds.graph_value_reader",
        lambda: _read_kernel("short_data"),
        V,
        [
            "graph_value_reader",
            "`checkpoint`",
            "'dense/kernel'",
            "short_data",
            "truncated",
            "copy it again",
        ],
    ),
    Case(
        "bounds.graph_value_reader",
        lambda: bounds.graph_value_reader(),
        E,
        ["graph_value_reader", "`session`", "None", "tf.compat.v1.Session"],
    ),
    Case(
        "restore_plain_checkpoint",
        lambda: _restore_into_kernel("short_data"),
        V,
        [
            "restore_plain_checkpoint",
            "`path`",
            "'dense/kernel'",
            "short_data",
            "truncated",
            "copy it again",
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.apis[0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_answered_clearly(case):
    verdict, detail = grade(case)
    assert verdict == "clear", detail
