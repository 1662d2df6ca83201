"""bounds.from_vnnlib: the VNN-LIB subset of VNN-COMP, on files the tests write."""

import re

import numpy as np
import pytest

from tf1norm import bounds

HEADER = "".join(f"(declare-const X_{i} Real)\n" for i in range(2)) + "".join(
    f"(declare-const Y_{j} Real)\n" for j in range(3)
)
BOX = "(assert (<= X_0 1.0))\n(assert (>= X_0 -1))\n(assert (<= X_1 0.5))\n(assert (>= X_1 0))\n"


def write(tmp_path, body, header=HEADER, name="prop.vnnlib"):
    path = tmp_path / name
    path.write_text("; a test property\n" + header + body)
    return path


def test_box_and_one_conjunction(tmp_path):
    prop = bounds.from_vnnlib(
        write(tmp_path, BOX + "(assert (<= Y_0 Y_1))\n(assert (>= Y_0 Y_2)) ; a comment\n")
    )
    assert (prop.num_inputs, prop.num_outputs) == (2, 3)
    ((lower, upper),) = prop.input_boxes
    np.testing.assert_array_equal(lower, [-1, 0])
    np.testing.assert_array_equal(upper, [1, 0.5])
    (polytope,) = prop.unsafe
    np.testing.assert_array_equal(polytope.A, [[1, -1, 0], [-1, 0, 1]])
    np.testing.assert_array_equal(polytope.b, [0, 0])
    assert prop.is_counterexample(np.array([0, 0.2]), np.array([1, 2, 0]))
    assert not prop.is_counterexample(np.array([0, 0.2]), np.array([1, 0, 0]))
    assert not prop.is_counterexample(np.array([2, 0.2]), np.array([1, 2, 0]))


def test_or_of_ands_is_a_union_of_polytopes_with_arithmetic_terms(tmp_path):
    body = BOX + (
        "(assert (or (and (<= (+ Y_0 (* 2 Y_1)) 3) (> Y_2 (- 1.5)))\n"
        "            (and (< (- Y_1 Y_0 0.5) 0))))\n"
    )
    first, second = bounds.from_vnnlib(write(tmp_path, body)).unsafe
    np.testing.assert_array_equal(first.A, [[1, 2, 0], [0, 0, -1]])
    np.testing.assert_array_equal(first.b, [3, 1.5])
    np.testing.assert_array_equal(second.A, [[-1, 1, 0]])
    np.testing.assert_array_equal(second.b, [0.5])


def test_disjunction_over_input_boxes_gives_one_case_per_box(tmp_path):
    body = (
        "(assert (or (and (<= X_0 1) (>= X_0 0) (<= X_1 1) (>= X_1 0))\n"
        "            (and (<= X_0 -1) (>= X_0 -2) (<= X_1 1) (>= X_1 0))))\n"
        "(assert (or (and (<= Y_0 0)) (and (<= Y_1 0))))\n"
    )
    prop = bounds.from_vnnlib(write(tmp_path, body))
    assert [c.lower.tolist() for c in prop.cases] == [[0, 0], [-2, 0]]
    assert all(len(case.polytopes) == 2 for case in prop.cases)


def test_output_free_term_makes_the_whole_output_space_unsafe(tmp_path):
    (polytope,) = bounds.from_vnnlib(write(tmp_path, BOX)).unsafe
    assert polytope.A.shape == (0, 3) and polytope.contains(np.array([5.0, -5, 0]))


@pytest.mark.parametrize(
    "body, line, token",
    [
        (BOX + "(assert (<= Y_0 Y_9))\n", 11, "Y_9"),
        (BOX + "(assert (<= (* Y_0 Y_1) 0))\n", 11, "*"),
        (BOX + "(assert (<= (+ X_0 X_1) 0))\n", 11, "<="),
        (BOX + "(assert (<= X_0 Y_1))\n", 11, "<="),
        (BOX + "(assert (exp Y_0))\n", 11, "exp"),
        (BOX + "(check-sat)\n", 11, "check-sat"),
        (BOX + "(assert (<= Y_0 foo))\n", 11, "foo"),
        (BOX + "(assert (<= Y_0 1)))\n", 11, ")"),
    ],
)
def test_unsupported_constructs_name_line_and_token(tmp_path, body, line, token):
    with pytest.raises(ValueError, match=rf"prop.vnnlib:{line}: .*\(at '{re.escape(token)}"):
        bounds.from_vnnlib(write(tmp_path, body))


def test_unbounded_input_unclosed_paren_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="X_1 is not bounded"):
        bounds.from_vnnlib(write(tmp_path, "(assert (<= X_0 1))\n(assert (>= X_0 0))\n"))
    with pytest.raises(ValueError, match=r":7: this '\(' is never closed"):
        bounds.from_vnnlib(write(tmp_path, "(assert (<= X_0 1)\n"))
    with pytest.raises(ValueError, match="Y_0 ... Y_n-1"):
        bounds.from_vnnlib(write(tmp_path, BOX, header=HEADER.replace("Y_1", "Y_7")))
    with pytest.raises(ValueError, match="cannot read"):
        bounds.from_vnnlib(tmp_path / "missing.vnnlib")
