"""The documentation in ``docs/`` is kept true by the test suite.

Two checks per Markdown file:

- every ``>>>`` example inside a fenced ```` ```python ```` block runs as a doctest and
  prints what the text says it prints;
- every code excerpt marked ``<!-- excerpt: PATH QUALNAME -->`` (the line just before its
  fenced block) still appears, line for line, inside the function or class ``QUALNAME`` of
  the file ``PATH`` (relative to the repository root). Excerpts may be dedented: the
  excerpt's lines must be consecutive lines of that definition with one common indentation
  added. So a quoted line of mlpx cannot go stale or move to another function unnoticed.

The doctests are taken from the fenced blocks only (the lines outside them are blanked, so
line numbers in failure reports are those of the Markdown file): a ``>>>`` example's
expected output then ends at the closing fence, which plain ``doctest.testfile`` would read
as part of the output.
"""

from __future__ import annotations

import ast
import doctest
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DOC_FILES = sorted(DOCS.glob("*.md"))

FENCE_OPEN = re.compile(r"^```(\w*)\s*$")
EXCERPT_MARK = re.compile(r"^<!--\s*excerpt:\s*(\S+)\s+(\S+)\s*-->\s*$")
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def fenced_blocks(lines: list[str]):
    """Yield ``(language, first_line_index, body_lines)`` for each fenced block."""
    i = 0
    while i < len(lines):
        match = FENCE_OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"unclosed code fence opened on line {i + 1}")
        yield match.group(1), start, lines[start:end]
        i = end + 1


def doctest_source(text: str) -> str:
    """The text with every line outside ```python blocks blanked (line numbers kept)."""
    lines = text.splitlines()
    kept = [""] * len(lines)
    for language, start, body in fenced_blocks(lines):
        if language == "python":
            kept[start:start + len(body)] = body
    return "\n".join(kept) + "\n"


def excerpts(text: str) -> list[tuple[int, str, str, list[str]]]:
    """``(line_number, path, qualname, lines)`` for each marked excerpt."""
    lines = text.splitlines()
    found = []
    for number, line in enumerate(lines, start=1):
        match = EXCERPT_MARK.match(line)
        if not match:
            continue
        assert number < len(lines) and FENCE_OPEN.match(lines[number]), (
            f"line {number}: an excerpt marker must be followed directly by a code fence"
        )
        _, start, body = next(fenced_blocks(lines[number:]))
        found.append((number, match.group(1), match.group(2), body))
    return found


def definition_lines(path: Path, qualname: str) -> list[str]:
    """The source lines of the function or class ``qualname`` ("Class.method") in path."""
    source = path.read_text(encoding="utf-8")
    node: ast.AST = ast.parse(source)
    for part in qualname.split("."):
        children = [child for child in ast.iter_child_nodes(node)
                    if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                          ast.ClassDef)) and child.name == part]
        assert children, f"{path.relative_to(ROOT)} has no {qualname} (missing {part!r})"
        node = children[0]
    lines = source.splitlines()
    return lines[node.lineno - 1:node.end_lineno]


def appears_indented(excerpt: list[str], lines: list[str]) -> bool:
    """True when ``excerpt`` is consecutive lines of ``lines`` with one common indent added."""
    excerpt = [line.rstrip() for line in excerpt]
    lines = [line.rstrip() for line in lines]
    first = next(k for k, line in enumerate(excerpt) if line)
    for i in range(len(lines) - len(excerpt) + 1):
        candidate = lines[i + first]
        if not candidate.endswith(excerpt[first]):
            continue
        indent = candidate[:len(candidate) - len(excerpt[first])]
        if indent.strip():
            continue
        if all((line == "" and lines[i + k] == "") or (line and lines[i + k] == indent + line)
               for k, line in enumerate(excerpt)):
            return True
    return False


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.name)
def test_doctests(doc: Path):
    text = doc.read_text(encoding="utf-8")
    name = str(doc.relative_to(ROOT))
    test = doctest.DocTestParser().get_doctest(doctest_source(text), {"__name__": "__docs__"},
                                               name, name, 0)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    result = runner.run(test, out=report.write)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in " \
        f"{name}:\n{report.getvalue()}"


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.name)
def test_excerpts_are_verbatim(doc: Path):
    for number, path, qualname, body in excerpts(doc.read_text(encoding="utf-8")):
        source = ROOT / path
        assert source.is_file(), f"{doc.name} line {number}: no file {path}"
        assert any(line.strip() for line in body), f"{doc.name} line {number}: empty excerpt"
        assert appears_indented(body, definition_lines(source, qualname)), (
            f"{doc.name} line {number}: the excerpt no longer appears verbatim in {path} "
            f"{qualname}; update the documentation:\n" + "\n".join(body)
        )


def test_tutorial_is_checked():
    """The tutorial exists, has doctests and quotes the code it explains."""
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    examples = doctest.DocTestParser().get_examples(doctest_source(text))
    assert len(examples) >= 50
    quoted = {(path, qualname) for _, path, qualname, _ in excerpts(text)}
    for path in ("mlpx/layers.py", "mlpx/model.py", "mlpx/losses.py", "mlpx/optim.py"):
        assert any(p == path for p, _ in quoted), f"the tutorial quotes nothing of {path}"


def test_excerpt_check_catches_stale_text():
    """The excerpt check itself: a changed or re-indented line is caught."""
    lines = ["def f(x):", "    y = x + 1", "", "    return y"]
    assert appears_indented(["y = x + 1", "", "return y"], lines)
    assert appears_indented(["    y = x + 1"], lines)
    assert not appears_indented(["y = x + 2"], lines)
    assert not appears_indented(["y = x + 1", "return y"], lines)
    assert not appears_indented(["  y = x + 1", "return y"], lines)
