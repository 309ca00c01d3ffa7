"""A module over about 600 lines says in its docstring why it is that long."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Final

import border_exchange

PACKAGE = Path(border_exchange.__file__).parent

LONG: Final = 620
"""Lines from which a module is long ("about 600")."""

_WHY: Final = re.compile(r"\b(long|length|lines)\b")


def _docstring(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".c":
        return text.split("*/", 1)[0] if text.lstrip().startswith("/*") else ""
    return ast.get_docstring(ast.parse(text)) or ""


def test_every_long_module_says_why_it_is_long() -> None:
    unexplained = [
        f"{path.relative_to(PACKAGE)} ({length} lines)"
        for path in sorted(PACKAGE.rglob("*"))
        if path.suffix in (".py", ".c")
        and (length := len(path.read_text(encoding="utf-8").splitlines())) > LONG
        and not _WHY.search(_docstring(path))
    ]
    assert unexplained == [], "say in the module's docstring why it is long, or split it"


def test_the_check_reads_python_and_c_docstrings(tmp_path: Path) -> None:
    c = tmp_path / "m.c"
    c.write_text("/* A fast path.\n * It is long because ... */\nint x;\n")
    py = tmp_path / "m.py"
    py.write_text('"""A module."""\n\nX = 1\n')
    assert _WHY.search(_docstring(c))
    assert not _WHY.search(_docstring(py))
