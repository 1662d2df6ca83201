"""The bad-input audit (tools/audit_bad_input.py): it covers every public callable,
grades each kind of answer, and counts the grades.
"""

import pathlib
import sys

import pytest

import tf1norm
from bad_input_cli_files import run_cli

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
from audit_bad_input import Case, Exit, grade, load_cases  # noqa: E402

V, USAGE, FAILURE = ValueError, Exit(2), Exit(1)


# Public names the audit does not call with bad input, and why.
EXEMPT = {
    "Constraint": "abstract base class; its subclasses are audited",
    "Transform": "abstract base class; every built-in transform is audited",
    "StepContext": "built by create_train_op for transforms, not by users",
    "Finding": "a result record returned by check_train_op",
    "skip_nonfinite": "takes no arguments",
    "require_v1_layers": "takes no arguments",
}


def test_every_public_callable_is_audited_or_exempt():
    audited = {api for _, case in load_cases() for api in case.apis}
    public = {
        name
        for name in tf1norm.__all__
        if callable(getattr(tf1norm, name))
        and not isinstance(getattr(tf1norm, name), type(tf1norm))
    }
    missing = sorted(public - audited - set(EXEMPT))
    assert not missing, f"public callables without a bad-input case: {missing}"
    assert not set(EXEMPT) & audited, "an exempt name has cases: drop the exemption"
    assert len(load_cases()) >= 150


def _raise(error):
    raise error


GRADED = [
    (Case("x", lambda: _raise(ValueError("f: `a` bad; got 1.")), V, ["`a`", "1"]), "clear"),
    (Case("x", lambda: _raise(ValueError("f: bad.")), V, ["`a`"]), "vague"),
    (Case("x", lambda: _raise(TypeError("f: `a` bad.")), V, ["`a`"]), "wrong type"),
    (Case("x", lambda: _raise(KeyError("a")), V, ["a"]), "internal error"),
    (Case("x", lambda: _raise(OverflowError("`a`")), V, ["`a`"]), "internal error"),
    (Case("x", lambda: None, V, ["`a`"]), "silent"),
    (Case("cli", run_cli("norms"), USAGE, ["checkpoint"]), "clear"),
    (Case("cli", run_cli("norms"), FAILURE, ["checkpoint"]), "wrong type"),
    (Case("cli", run_cli("norms"), USAGE, ["nothing like this"]), "vague"),
    (Case("cli", run_cli("norms", "x", "--threshold", "0"), USAGE, ["--threshold"]), "clear"),
]


@pytest.mark.parametrize("case,expected", GRADED)
def test_the_audit_grades_each_kind_of_answer(case, expected):
    assert grade(case)[0] == expected


def test_the_audit_counts_grades_and_fails_unless_all_clear(capsys, monkeypatch):
    import audit_bad_input

    monkeypatch.setattr(
        audit_bad_input, "load_cases", lambda **_: [("m", case) for case, _ in GRADED]
    )
    assert audit_bad_input.main([]) == 1
    out = capsys.readouterr().out
    assert "10 cases (4 command line)" in out
    for name, count in (
        ("clear", 3),
        ("vague", 2),
        ("wrong type", 2),
        ("internal error", 2),
        ("silent", 1),
    ):
        assert f"  {name:15s} {count}\n" in out
