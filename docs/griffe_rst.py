"""A griffe extension: tf1norm's reStructuredText habits, read as Markdown by the API pages.

tf1norm's docstrings are Google style with two reST constructs that Markdown
would otherwise run together into one paragraph:

* ``Example::`` followed by an indented block: the block becomes a fenced
  ``python`` code block under a Google "Examples" section;
* simple tables (a border of ``=====  =====`` runs, rows, a closing border):
  kept as preformatted text, so their columns stay aligned.

Only the text griffe hands to the Markdown renderer changes; the docstrings
(and the examples ``tests/test_docstring_examples.py`` runs from them) stay as written.
Loaded by ``mkdocs.yml`` (``extensions: [docs/griffe_rst.py]``).
"""

import re

import griffe

EXAMPLE = re.compile(r"^(\s*)Examples?::\s*$")
BORDER = re.compile(r"^\s*=+( +=+)+\s*$")


def _indent(line):
    return len(line) - len(line.lstrip())


def _example_block(lines, start):
    """(replacement lines, index after the block) for an ``Example::`` at ``start``."""
    indent = _indent(lines[start])
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    body = lines[start + 1 : end]
    while body and not body[0].strip():
        body = body[1:]
    while body and not body[-1].strip():
        body = body[:-1]
    width = min((_indent(line) for line in body if line.strip()), default=indent)
    pad = " " * (indent + 4)
    code = [pad + line[width:] if line.strip() else "" for line in body]
    return [" " * indent + "Examples:", pad + "```python", *code, pad + "```", ""], end


def _table_block(lines, start):
    """(replacement lines, index after the table) for a simple table opening at ``start``."""
    borders, end = 0, start
    while end < len(lines) and borders < 3 and (lines[end].strip() or borders == 0):
        borders += bool(BORDER.match(lines[end]))
        end += 1
    pad = " " * _indent(lines[start])
    return [pad + "```text", *lines[start:end], pad + "```"], end


def markdown_ready(text):
    """``text`` with Example:: blocks fenced and simple tables preformatted."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        if EXAMPLE.match(lines[i]):
            block, i = _example_block(lines, i)
        elif BORDER.match(lines[i]):
            block, i = _table_block(lines, i)
        else:
            block, i = [lines[i]], i + 1
        out.extend(block)
    return "\n".join(out)


class RestructuredTextHabits(griffe.Extension):
    """Rewrites each object's docstring text once, when griffe loads it."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = markdown_ready(obj.docstring.value)
