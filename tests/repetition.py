"""Runs of code lines that stand in two places: the same lines, written again.

A line counts as code when it is not blank, not a comment, not an import and not lone
punctuation (a closing bracket, a comma); white space inside it is folded. Six such
lines in a row that stand again elsewhere, in the same file or another, are a repeat:
one helper should serve both places. Python (``.py``) and C (``.c``) are read; the C
fast path and its Python reference are pairs by design, and being in two languages
they never share a line.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

RUN: Final = 6
"""How many code lines in a row make a repeat."""

_PUNCTUATION: Final = re.compile(r"[\s()\[\]{},;:]*")


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


def repeats(files: Iterable[tuple[str, str]]) -> list[Repeat]:
    """The repeats among ``files`` (name, text), one per pair of places where a run begins
    (a longer run is reported at its start only)."""
    places: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    lines_of: dict[str, list[tuple[int, str]]] = {}
    for name, text in files:
        lines = lines_of[name] = list(code_lines(text, c=name.endswith(".c")))
        for i in range(len(lines) - RUN + 1):
            places[tuple(line for _, line in lines[i : i + RUN])].append((name, i))
    found: set[Repeat] = set()
    for run, where in places.items():
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


def sources(root: Path) -> list[tuple[str, str]]:
    """Every Python and C file below ``root``: its path relative to ``root``, and its text."""
    return [
        (path.relative_to(root).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(root.rglob("*"))
        if path.suffix in (".py", ".c") and path.is_file()
    ]
