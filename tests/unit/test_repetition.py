"""No code in the package written twice: six code lines in a row stand in one place only."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import border_exchange
from tests.repetition import RUN, Repeat, code_lines, repeats, sources

PACKAGE = Path(border_exchange.__file__).parent

ACCEPTED: Final = {
    (
        "domain/samples.py",
        "domain/samples.py",
        "alert_type: AlertType,",
    ): "sample_alert takes the options of sample_alert_data, whose result it parses",
    (
        "services/post.py",
        "services/post_state.py",
        "record: ConsumerRecord,",
    ): "the post's record check implements post_state's Check protocol, signature and all",
}
"""Repeats kept on purpose, by their two files and first line, each with the reason."""


def _key(repeat: Repeat) -> tuple[str, str, str]:
    return repeat.first[0], repeat.second[0], repeat.text


def test_no_six_code_lines_of_the_package_stand_in_two_places() -> None:
    found = repeats(sources(PACKAGE))
    new = [str(r) for r in found if _key(r) not in ACCEPTED]
    assert new == [], "written again, make one helper serve both places:\n" + "\n".join(new)
    stale = set(ACCEPTED) - {_key(r) for r in found}
    assert not stale, f"accepted repeats that are gone, strike them from ACCEPTED: {stale}"


BODY = """
def {name}(values: list[int]) -> int:
    total = 0
    for value in values:
        if value > 0:
            total += value
        else:
            total -= 1
    return total
"""


def test_a_run_written_again_is_found_across_white_space_comments_and_imports() -> None:
    first = "import os\n" + BODY.format(name="a")
    again = "from typing import (\n    Any,\n)\n" + BODY.format(name="b").replace(
        "    total = 0\n", "    total  =  0  \n    # the sum\n\n"
    )
    (found,) = repeats([("a.py", first), ("b.py", again)])
    assert (found.first, found.second, found.text) == (("a.py", 4), ("b.py", 6), "total = 0")


def test_a_shorter_run_or_one_line_changed_is_not_a_repeat() -> None:
    body = BODY.format(name="a")
    changed = body.replace("if value > 0:", "if value > 1:")
    shorter = "\n".join(body.splitlines()[:-2])
    assert repeats([("a.py", body), ("b.py", changed)]) == []
    assert repeats([("a.py", shorter), ("b.py", BODY.format(name="b"))]) == []
    assert len(list(code_lines(shorter, c=False))) < RUN + 1


def test_a_run_repeated_in_one_file_and_in_c_is_found_once_at_its_start() -> None:
    c_body = "/* a comment\n   on lines */\n" + "\n".join(
        f"    x{i} = f(x{i - 1});" for i in range(1, 9)
    )
    one_file = c_body + "\n}\n#include <a.h>\n// note\n" + c_body
    (found,) = repeats([("m.c", one_file)])
    assert (found.first[1], found.second[1], found.text) == (3, 16, "x1 = f(x0);")
