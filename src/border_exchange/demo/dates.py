"""The demo's agreements, and their validity windows moved to be in force on the day of the run."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from border_exchange.domain.agreements import parse_agreement_set


def default_agreements() -> Path:
    """The example agreements of the source tree (COD to CAF without photo, ...)."""
    return Path(__file__).resolve().parents[3] / "examples" / "agreements.yaml"


_WINDOW_YEAR = re.compile(r"^(\s*effective_(?:from|until):\s*[\"']?)(\d{4})(?=-)", re.MULTILINE)


def _plus_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February in a year that has none
        return moment.replace(year=moment.year + years, day=28)


def dated_for(text: str, now: datetime) -> tuple[str, int]:
    """The agreement document ``text`` with its windows moved so that all are in force at ``now``.

    The windows move by the fewest whole years (0: ``text`` as written) that put ``now``
    and the day after it inside every agreement's window, so the story's verdicts stay
    those the example is written for, whatever the date of the run; only the years of
    the ``effective_from``/``effective_until`` lines change. Returns the text and the years.
    """
    agreements = parse_agreement_set(text).agreements
    for years in sorted(range(-100, 101), key=abs):
        if all(_moved(a.effective_from, a.effective_until, years, now) for a in agreements):
            if years == 0:
                return text, 0
            return _WINDOW_YEAR.sub(_year_plus(years), text), years
    return text, 0


def _year_plus(years: int) -> Callable[[re.Match[str]], str]:
    return lambda match: f"{match[1]}{int(match[2]) + years}"


def _moved(start: datetime, end: datetime | None, years: int, now: datetime) -> bool:
    return _plus_years(start, years) <= now and (
        end is None or now + timedelta(days=1) < _plus_years(end, years)
    )
