"""Runs of code lines that stand in two places: the same lines, written again.

A line counts as code when it is not blank, not a comment, not an import and not lone
punctuation (a closing bracket, a comma); white space inside it is folded. Six such
lines in a row that stand again elsewhere, in the same file or another, are a repeat:
one helper should serve both places. Python (``.py``) and C (``.c``) are read; the C
fast path and its Python reference are pairs by design, and being in two languages
they never share a line.

``shape_pairs`` is looser: it also counts runs that differ only in their names, strings
and numbers (the same code written again for other fields), as pairs of files.
"""

from __future__ import annotations

import keyword
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

RUN: Final = 6
"""How many code lines in a row make a repeat."""

_PUNCTUATION: Final = re.compile(r"[\s()\[\]{},;:]*")
_STRING: Final = re.compile(r"""[rRbBfFuU]{0,2}(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_NUMBER: Final = re.compile(r"\b\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?[a-zA-Z]*\b")
_NAME: Final = re.compile(r"\b[A-Za-z_]\w*\b")
_KEYWORDS: Final = frozenset(keyword.kwlist) | {
    "if", "else", "for", "while", "return", "goto", "struct", "static", "const", "int",
    "char", "void", "break", "continue", "switch", "case", "default", "sizeof", "NULL",
}  # fmt: skip
"""Words a shape keeps: Python's keywords and C's common ones."""
COMMON: Final = 8
"""A shape standing in more places than this is an idiom, not a repeat (a field list)."""


@dataclass(frozen=True, order=True)
class Repeat:
    """A run of ``RUN`` code lines at ``first`` standing again at ``second`` (path, line)."""

    first: tuple[str, int]
    second: tuple[str, int]
    text: str
    """The run's first code line, as written (white space folded)."""

    def __str__(self) -> str:
        (a, line_a), (b, line_b) = self.first, self.second
        return f"{a}:{line_a} ~ {b}:{line_b}: {self.text}"


def code_lines(text: str, c: bool) -> Iterator[tuple[int, str]]:
    """``(line number, folded line)`` of every code line of a Python or (``c``) C source."""
    in_import = in_comment = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = " ".join(raw.split())
        if c:
            if in_comment or line.startswith("/*"):
                in_comment = "*/" not in line
                continue
            if line.startswith(("//", "#include")):
                continue
        else:
            if in_import:
                in_import = ")" not in line
                continue
            if line.startswith("import ") or (line.startswith("from ") and " import " in line):
                in_import = line.endswith("(")
                continue
            if line.startswith("#"):
                continue
        if line and not _PUNCTUATION.fullmatch(line):
            yield number, line


def shape(line: str) -> str:
    """``line`` with every string, number and name (but keywords) replaced by a mark."""
    line = _NUMBER.sub("0", _STRING.sub("S", line))
    return _NAME.sub(lambda m: m[0] if m[0] in _KEYWORDS else "x", line)


def repeats(
    files: Iterable[tuple[str, str]], shaped: bool = False, common: int | None = None
) -> list[Repeat]:
    """The repeats among ``files`` (name, text), one per pair of places where a run begins
    (a longer run is reported at its start only); ``shaped``: of lines of the same shape;
    ``common``: leaving out runs that stand in more places than that."""
    places: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    lines_of: dict[str, list[tuple[int, str]]] = {}
    for name, text in files:
        lines = list(code_lines(text, c=name.endswith(".c")))
        if shaped:
            lines = [(number, shape(line)) for number, line in lines]
        lines_of[name] = lines
        for i in range(len(lines) - RUN + 1):
            places[tuple(line for _, line in lines[i : i + RUN])].append((name, i))
    found: set[Repeat] = set()
    for run, where in places.items():
        if common is not None and len(where) > common:
            continue
        for x, (name_a, i) in enumerate(where):
            for name_b, j in where[x + 1 :]:
                if name_a == name_b and abs(i - j) < RUN:
                    continue  # a run overlapping itself (the same line over and over)
                before_a, before_b = i - 1, j - 1
                if (
                    min(before_a, before_b) >= 0
                    and lines_of[name_a][before_a][1] == lines_of[name_b][before_b][1]
                    and not (name_a == name_b and abs(before_a - before_b) < RUN)
                ):
                    continue  # the same run goes on from a line earlier: reported there
                found.add(
                    Repeat(
                        (name_a, lines_of[name_a][i][0]), (name_b, lines_of[name_b][j][0]), run[0]
                    )
                )
    return sorted(found)


def shape_pairs(files: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs of files (a file with itself too) that share a run of ``RUN`` lines of the
    same shape, leaving out shapes too common to be a repeat (``COMMON``)."""
    return sorted({(r.first[0], r.second[0]) for r in repeats(files, shaped=True, common=COMMON)})


def sources(root: Path) -> list[tuple[str, str]]:
    """Every Python and C file below ``root``: its path relative to ``root``, and its text."""
    return [
        (path.relative_to(root).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(root.rglob("*"))
        if path.suffix in (".py", ".c") and path.is_file()
    ]
