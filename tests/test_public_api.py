"""The curated public surface: every exported name resolves, __all__ is sorted."""

import tf1norm


def test_every_exported_name_resolves():
    missing = [name for name in tf1norm.__all__ if not hasattr(tf1norm, name)]
    assert missing == []


def test_all_is_sorted_and_unique():
    assert list(tf1norm.__all__) == sorted(set(tf1norm.__all__))


def test_every_public_function_has_a_docstring():
    undocumented = [name for name in tf1norm.__all__
                    if callable(getattr(tf1norm, name)) and not getattr(tf1norm, name).__doc__]
    assert undocumented == []
