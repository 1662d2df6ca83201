"""Parse and run the runnable examples of README.md, docs/*.md and the docstrings.

Used by tests/test_readme.py and tests/test_docstring_examples.py; the fence and
marker conventions are in test_readme's docstring, the preambles in
tests/readme_preambles.py.
"""

import collections
import contextlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tf1norm._src.compat import tf, v1
from readme_preambles import COMMON, PREAMBLES, Block, Preamble

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").glob("**/*.md"))
RUN_LANGUAGES = {"python"}
NOT_RUN_LANGUAGES = {"bash", "text", "console", "ini"}
MARKER = re.compile(r"^<!--\s*readme-test:\s*preamble=([\w-]+)\s*-->$")
FENCE = re.compile(r"^\s*```(\S*)\s*$")  # also indented, inside lists

HOW_TO_FIX = (
    "If the block is a fragment, put `<!-- readme-test: preamble=NAME -->` on the line before "
    "its fence (README) or map its key in DOCSTRING_PREAMBLES (docstrings), with NAME a "
    "preamble of tests/readme_preambles.py defining what it uses; if the block is wrong, fix it."
)


# ---------------------------------------------------------------- README parsing


def parse_readme(text, source="README.md"):
    """``(python_blocks, problems)`` of a Markdown page's text; problems are strings.

    ``source`` names the page in messages and keys (README.md's keys are the
    bare ``heading-n``; another page's are ``page:heading-n``).
    """
    blocks, problems, counts = [], [], collections.Counter()
    lines, heading, i = text.splitlines(), "top", 0
    while i < len(lines):
        if lines[i].startswith("#"):
            heading = _slug(lines[i])
        fence = FENCE.match(lines[i])
        if not fence:
            problems.extend(_orphan_marker(lines, i, source))
            i += 1
            continue
        end = _closing_fence(lines, i)
        block, problem = _classify(fence.group(1), lines, (i, end), heading, counts, source)
        blocks.extend([block] if block else [])
        problems.extend([problem] if problem else [])
        i = end + 1
    return blocks, problems


def _slug(heading_line):
    return re.sub(r"[^a-z0-9]+", "-", heading_line.lstrip("#").lower()).strip("-")[:40]


def _closing_fence(lines, start):
    for j in range(start + 1, len(lines)):
        if lines[j].strip() == "```":
            return j
    raise AssertionError(f"line {start + 1}: code fence never closed")


def _classify(language, lines, span, heading, counts, source):
    """A Block for a python fence, or a problem string, or neither."""
    (start, end), where = span, f"{source}:{span[0] + 1}"
    marker = MARKER.match(lines[start - 1].strip()) if start else None
    if language in NOT_RUN_LANGUAGES:
        return None, (
            f"{where}: a readme-test marker on a ```{language} block (not run)" if marker else None
        )
    if language not in RUN_LANGUAGES:
        return None, (
            f"{where}: fence language {language or '(none)'!r}; use ```python to "
            f"run it or one of {sorted(NOT_RUN_LANGUAGES)} for a block not run"
        )
    counts[heading] += 1
    name = marker.group(1) if marker else None
    if name is not None and name not in PREAMBLES:
        return None, f"{where}: unknown preamble {name!r}; defined: {sorted(PREAMBLES)}"
    body = textwrap.dedent("\n".join(lines[start + 1 : end]))
    code = "\n" * (start + 1) + body + "\n"  # padded: tracebacks show the page's line numbers
    key = f"{heading}-{counts[heading]}"
    if source != "README.md":
        key = f"{Path(source).stem}:{key}"
    return Block(key, start + 2, code, name, source), None


def _orphan_marker(lines, i, source):
    is_marker = lines[i].lstrip().startswith("<!--") and "readme-test" in lines[i]
    followed_by_fence = i + 1 < len(lines) and FENCE.match(lines[i + 1])
    if is_marker and not (MARKER.match(lines[i].strip()) and followed_by_fence):
        return [
            f"{source}:{i + 1}: malformed or misplaced marker {lines[i].strip()!r}; write "
            "`<!-- readme-test: preamble=NAME -->` on the line right before a fence"
        ]
    return []


# ---------------------------------------------------------------- running


def run_block(block, where, tmp_path, monkeypatch):
    """COMMON, the preamble's setup, the block, the preamble's check, in a fresh graph."""
    monkeypatch.chdir(tmp_path)
    preamble = PREAMBLES[block.preamble] if block.preamble else Preamble("", "")
    if preamble.fresh_process:
        return run_in_fresh_process(block, where, preamble, tmp_path)
    namespace = {"__name__": "readme_block"}
    with contextlib.nullcontext() if preamble.eager else tf.Graph().as_default():
        try:
            exec(
                compile(COMMON + preamble.setup, f"<preamble {block.preamble}>", "exec"), namespace
            )
            try:
                exec(compile(block.code, where, "exec"), namespace)
            except Exception as error:
                raise AssertionError(
                    f"{where} ({block.key}, preamble {block.preamble}) "
                    f"raised {error!r}. {HOW_TO_FIX}"
                ) from error
            exec(compile(preamble.check, f"<check {block.preamble}>", "exec"), namespace)
        finally:
            if isinstance(namespace.get("sess"), v1.Session):
                namespace["sess"].close()


def run_in_fresh_process(block, where, preamble, tmp_path):
    """As ``run_block``, in a new interpreter with eager execution disabled."""
    script = (
        f"{COMMON}tf.compat.v1.disable_eager_execution()\n{preamble.setup}\n"
        f"exec(compile({block.code!r}, {where!r}, 'exec'))\n{preamble.check}"
    )
    (tmp_path / "block.py").write_text(script, encoding="utf-8")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "block.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (
        f"{where} ({block.key}, preamble {block.preamble}, fresh "
        f"process) failed:\n{done.stderr[-3000:]}\n{HOW_TO_FIX}"
    )


def _params(blocks):
    """pytest params; blocks needing a fresh interpreter are marked slow."""
    return [
        pytest.param(
            b,
            id=b.key,
            marks=[pytest.mark.slow] if b.preamble and PREAMBLES[b.preamble].fresh_process else [],
        )
        for b in blocks
    ]


def parse_pages(paths):
    """``(blocks, problems)`` of README.md and the docs pages together."""
    blocks, problems = [], []
    for path in paths:
        found, trouble = parse_readme(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
        blocks.extend(found)
        problems.extend(trouble)
    return blocks, problems
