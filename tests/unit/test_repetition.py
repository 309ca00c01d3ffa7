"""No code in the package written twice: six code lines in a row stand in one place only."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import border_exchange
from tests.repetition import (
    COMMON,
    RUN,
    Repeat,
    code_lines,
    repeats,
    shape,
    shape_pairs,
    sources,
)

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


SHAPE_CEILING: Final = 252
"""Pairs of files sharing a run of same-shape code lines today (most are tables: enums,
dataclass fields, keyword arguments, argparse declarations). The number may only fall:
lower it when a pair goes, and make one helper serve when a change would raise it."""


def test_same_shape_repetition_does_not_grow() -> None:
    pairs = shape_pairs(sources(PACKAGE))
    assert len(pairs) <= SHAPE_CEILING, (
        f"{len(pairs)} pairs of files share six code lines of the same shape, more than "
        f"the {SHAPE_CEILING} there were: make one helper serve where the logic is the same\n"
        + "\n".join(f"{a} ~ {b}" for a, b in pairs)
    )


def test_a_run_written_again_with_other_names_and_values_is_the_same_shape() -> None:
    again = (
        BODY.format(name="b")
        .replace("values", "items")
        .replace("total", "count")
        .replace("> 0", "> 5")
    )
    assert shape_pairs([("a.py", BODY.format(name="a")), ("b.py", again)]) == [("a.py", "b.py")]
    assert repeats([("a.py", BODY.format(name="a")), ("b.py", again)]) == []
    changed = again.replace("if value > 5:", "if value in seen:")
    assert shape_pairs([("a.py", BODY.format(name="a")), ("b.py", changed)]) == []
    assert shape('x = f("a", 3) + y.z[10]') == shape("total = g('b', 4.5) + w.v[0]")


def test_a_shape_standing_in_more_than_common_places_is_an_idiom() -> None:
    files = [(f"m{i}.py", BODY.format(name=f"f{i}")) for i in range(COMMON + 1)]
    assert shape_pairs(files) == []
    assert len(shape_pairs(files[:COMMON])) == COMMON * (COMMON - 1) // 2
