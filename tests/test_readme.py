"""Every Python block of README.md and docs/*.md runs (the docstring examples and the
API pages: tests/test_docstring_examples.py).

Markdown blocks (the convention is also in docs/development.md; README.md and
every page of docs/ follow it alike):

* A fenced block is either ```` ```python ```` (run by this test) or marked as
  not run by its language: ```` ```bash ````, ```` ```text ````,
  ```` ```console ```` or ```` ```ini ````. A fence without a language, or with
  another one, fails ``test_readme_fences_are_python_or_marked_not_run``.
* Each Python block runs in a fresh ``tf.Graph``, in a fresh temporary working
  directory, after ``COMMON`` (``tf1norm`` imported before TensorFlow, ``tf``,
  ``np``, ``slim``). A block that is a fragment (it uses ``loss``, ``sess``,
  ``x``... without defining them) gets a preamble: put
  ``<!-- readme-test: preamble=NAME -->`` on the line right before its fence,
  and ``NAME`` is a key of ``PREAMBLES`` (tests/readme_preambles.py), whose
  ``setup`` runs before the block and whose ``check`` (if any) runs after it and
  asserts what the block promises. A fragment without a marker fails with a
  ``NameError`` and a message saying what to add, so a new block cannot rot silently.
* No user-facing block imports a private module (``tf1norm._src``...): examples
  use ``import tf1norm`` and then ``import tensorflow as tf``.
"""

import re

import pytest

from readme_blocks import (
    DOC_PAGES,
    FENCE,
    README,
    Block,
    _params,
    parse_pages,
    parse_readme,
    run_block,
)
from readme_preambles import DOCSTRING_PREAMBLES, PREAMBLES

README_BLOCKS, README_PROBLEMS = parse_pages([README])
DOC_BLOCKS, DOC_PROBLEMS = parse_pages(DOC_PAGES)
PRIVATE_IMPORT = re.compile(
    r"\b(from\s+tf1norm(\.\w+)*\._\w*\s+import|import\s+tf1norm(\.\w+)*\._)"
    r"|\btf1norm(\.\w+)*\._[a-z]\w*"
)


def test_readme_fences_are_python_or_marked_not_run():
    assert README_PROBLEMS == []
    assert len(README_BLOCKS) >= 1


def test_docs_fences_are_python_or_marked_not_run():
    assert DOC_PROBLEMS == []
    assert len(DOC_PAGES) >= 12 and len(DOC_BLOCKS) >= 20


@pytest.mark.parametrize("block", _params(README_BLOCKS))
def test_readme_block_runs(block, tmp_path, monkeypatch):
    run_block(block, f"README.md:{block.line}", tmp_path, monkeypatch)


@pytest.mark.parametrize("block", _params(DOC_BLOCKS))
def test_docs_block_runs(block, tmp_path, monkeypatch):
    run_block(block, f"{block.source}:{block.line}", tmp_path, monkeypatch)


@pytest.mark.parametrize("path", [README] + DOC_PAGES, ids=lambda p: p.name)
def test_no_private_imports_in_user_facing_examples(path):
    """Examples reach tf1norm through its public names only (``import tf1norm``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    fenced, offenders = False, []
    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            fenced = not fenced
        elif fenced and PRIVATE_IMPORT.search(line):
            offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == [], "use `import tf1norm` then `import tensorflow as tf`"


def test_private_import_pattern():
    assert PRIVATE_IMPORT.search("from tf1norm._src.compat import tf")
    assert PRIVATE_IMPORT.search("import tf1norm._norms as n")
    assert PRIVATE_IMPORT.search("x = tf1norm._norms.safe_norm(w)")
    assert not PRIVATE_IMPORT.search("import tf1norm  # before tensorflow")
    assert not PRIVATE_IMPORT.search("from tf1norm import bounds")
    assert not PRIVATE_IMPORT.search("tf1norm.max_norm_regularizer(1.5)")


def test_every_preamble_is_used():
    used = {b.preamble for b in README_BLOCKS + DOC_BLOCKS} | set(DOCSTRING_PREAMBLES.values())
    assert set(PREAMBLES) - used == set()


def test_parser_flags_unmarked_and_unknown_fences():
    text = (
        "# Head\n```\nplain\n```\n<!-- readme-test: preamble=nope -->\n```python\nx\n```\n"
        "```python\nprint(1)\n```\n<!-- readme-test: preamble=mlp -->\n\n```python\nx\n```\n"
        "<!-- readme-test: preamble=mlp -->\n```bash\nls\n```\n"
    )
    blocks, problems = parse_readme(text)
    assert [(b.key, b.line, b.preamble) for b in blocks] == [
        ("head-2", 10, None),
        ("head-3", 15, None),
    ]
    assert blocks[0].code == "\n" * 9 + "print(1)\n"
    assert len(problems) == 4
    assert "language '(none)'" in problems[0] and "unknown preamble 'nope'" in problems[1]
    assert "misplaced marker" in problems[2] and "```bash block" in problems[3]


def test_unmarked_fragment_fails_with_the_fix(tmp_path, monkeypatch):
    block = Block("fragment-1", 3, "loss_value = sess.run(train_op)\n", None)
    with pytest.raises(AssertionError, match="NameError.*readme-test: preamble=NAME"):
        run_block(block, "README.md:3", tmp_path, monkeypatch)


def test_parser_reads_indented_fences_inside_lists():
    blocks, problems = parse_readme("* item:\n\n  ```python\n  y = 1\n  ```\n")
    assert problems == [] and [b.code for b in blocks] == ["\n" * 3 + "y = 1\n"]
