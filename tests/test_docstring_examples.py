"""The ``Example:``/``Example::`` section of every public docstring runs, and the API
reference pages name public objects only.

Docstring examples: the example of every docstring of ``tf1norm.__all__``
(functions, classes and their methods, modules and their functions and classes),
of ``tf1norm.bounds`` and of ``tf1norm.slim_layers`` runs as a README block does
(tests/test_readme.py); ``DOCSTRING_PREAMBLES`` (tests/readme_preambles.py) maps
the example's key (the qualified name, printed in the test id) to a preamble.
"""

import importlib
import importlib.util
import inspect
import re
import textwrap
import types

import pytest

import tf1norm
from readme_blocks import ROOT, Block, _params, run_block
from readme_preambles import DOCSTRING_PREAMBLES

EXAMPLE_HEADER = re.compile(r"^(\s*)Examples?::?\s*$")


def examples_in(doc):
    """The code of every ``Example:``/``Example::`` section of a docstring."""
    lines, found = inspect.cleandoc(doc or "").splitlines(), []
    for i, line in enumerate(lines):
        header = EXAMPLE_HEADER.match(line)
        if not header:
            continue
        body, indent = [], len(header.group(1))
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        found.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return found


def _documented_objects():
    """``{qualified name: object}`` of the public API whose docstrings are run."""
    from tf1norm import bounds, slim_layers

    objects = {"tf1norm.bounds": bounds, "tf1norm.slim_layers": slim_layers}
    for name in tf1norm.__all__:
        objects[f"tf1norm.{name}"] = getattr(tf1norm, name)
    for module_name, module in list(objects.items()):
        if not isinstance(module, types.ModuleType):
            continue
        for name, value in vars(module).items():
            if not name.startswith("_") and _defined_in(value, module.__name__):
                objects[f"{module_name}.{name}"] = value
    for qualified, value in list(objects.items()):
        if inspect.isclass(value):
            for name, member in vars(value).items():
                member = getattr(member, "__func__", member)  # classmethod, staticmethod
                if not name.startswith("_") and inspect.isfunction(member):
                    objects[f"{qualified}.{name}"] = member
    return objects


def _defined_in(value, module_name):
    return (inspect.isfunction(value) or inspect.isclass(value)) and getattr(
        value, "__module__", ""
    ).startswith(module_name)


def docstring_examples():
    blocks, seen = [], set()
    for qualified, value in sorted(_documented_objects().items(), key=lambda kv: len(kv[0])):
        if id(value) in seen:  # re-exported: keep the shortest name
            continue
        seen.add(id(value))
        for index, code in enumerate(examples_in(value.__doc__)):
            key = qualified if index == 0 else f"{qualified}#{index + 1}"
            blocks.append(Block(key, 1, code, DOCSTRING_PREAMBLES.get(key)))
    return blocks


DOCSTRING_BLOCKS = docstring_examples()


@pytest.mark.parametrize("block", _params(DOCSTRING_BLOCKS))
def test_docstring_example_runs(block, tmp_path, monkeypatch):
    run_block(block, f"<docstring of {block.key}>", tmp_path, monkeypatch)


def test_docstring_examples_are_found():
    keys = {block.key for block in DOCSTRING_BLOCKS}
    assert set(DOCSTRING_PREAMBLES) <= keys, "stale DOCSTRING_PREAMBLES entries"
    assert {"tf1norm.max_norm", "tf1norm.renorm", "tf1norm.bounds"} <= keys


def test_examples_in_reads_both_docstring_styles():
    doc = (
        "Summary.\n\n    Example::\n\n        a = 1\n        b = a\n\n    Returns:\n"
        "      x\n\n    Example:\n      c = 2\n    References:\n      none\n"
    )
    assert examples_in(doc) == ["a = 1\nb = a\n", "c = 2\n"]


API_TARGET = re.compile(r"^:::\s+(\S+)\s*$", re.M)
PUBLIC_MODULES = {"bounds", "cli", "slim_layers"}  # public modules beside tf1norm.__all__


def _resolve(dotted):
    """The object a dotted path names: its longest importable prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise ImportError(dotted)


@pytest.mark.parametrize("page", sorted((ROOT / "docs" / "api").glob("*.md")), ids=lambda p: p.name)
def test_api_pages_name_public_objects(page):
    """Every ``::: target`` of the API reference is public and resolves at run time."""
    targets = API_TARGET.findall(page.read_text(encoding="utf-8"))
    assert targets, f"{page.name} documents nothing"
    for target in targets:
        parts = target.split(".")
        assert parts[0] == "tf1norm" and not any(p.startswith("_") for p in parts), target
        assert parts[1] in set(tf1norm.__all__) | PUBLIC_MODULES, (
            f"{page.name}: {target} is not reached through tf1norm's public surface"
        )
        assert _resolve(target) is not None


def test_api_pages_read_example_blocks_and_rest_tables_as_markdown():
    """docs/griffe_rst.py fences ``Example::`` code and keeps reST tables aligned."""
    spec = importlib.util.spec_from_file_location("griffe_rst", ROOT / "docs" / "griffe_rst.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    doc = (
        "Summary.\n\n=====  ====\nname   what\n=====  ====\n``a``  one\n=====  ====\n\n"
        "Example::\n\n    a = 1\n\n    b = a\n\nReturns:\n  b.\n"
    )
    assert module.markdown_ready(doc).splitlines() == [
        "Summary.",
        "",
        "```text",
        "=====  ====",
        "name   what",
        "=====  ====",
        "``a``  one",
        "=====  ====",
        "```",
        "",
        "Examples:",
        "    ```python",
        "    a = 1",
        "",
        "    b = a",
        "    ```",
        "",
        "Returns:",
        "  b.",
    ]
