"""The clock of the run, for tests: an optional shift of every clock this process reads.

``--clock-shift=730d`` (or ``BX_TEST_CLOCK_SHIFT=730d``) moves ``datetime.now``,
``time.time`` and their relatives (patched at C level by ``time-machine``) that many
days (``d``) or hours (``h``) ahead for the whole run; ``time.monotonic``, and with it
asyncio's timers, keeps running as before. The broker and any process a test starts
keep the real clock, so tests marked ``kafka`` are skipped in a shifted run: it is the
in-process code (domain, services, adapters, CLI) whose dates it checks.

Tests take their dates from :func:`now` and :func:`days`, never from a calendar.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta

SHIFT_ENV = "BX_TEST_CLOCK_SHIFT"
"""The environment variable that sets the shift when the option is not given."""

_SHIFT = re.compile(r"^\s*(\d+)\s*([dh])\s*$")


def parse_shift(text: str) -> timedelta:
    """``730d`` or ``12h`` as a duration; anything else raises ``ValueError``."""
    match = _SHIFT.match(text)
    if match is None:
        raise ValueError(
            f"a clock shift is a number of days or hours such as 730d or 12h, not {text!r}"
        )
    amount, unit = int(match[1]), match[2]
    return timedelta(days=amount) if unit == "d" else timedelta(hours=amount)


def requested_shift(option: str | None) -> timedelta | None:
    """The shift asked for by the option, else by the environment, else none."""
    text = option or os.environ.get(SHIFT_ENV) or ""
    return parse_shift(text) if text.strip() else None


def now() -> datetime:
    """The current time of the run (shifted when the run is), in UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def days(n: float) -> datetime:
    """``n`` days from now (negative: ago), to the second."""
    return now() + timedelta(days=n)


def iso(moment: datetime) -> str:
    """``moment`` as the ``2026-01-01T00:00:00Z`` form that documents and options use."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StoppedClock:
    """A clock for the code under test that stands where the test sets ``now`` (at first:
    ``at``, or the time of the run)."""

    def __init__(self, at: datetime | None = None) -> None:
        self.now = at if at is not None else datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class AheadClock:
    """The wall clock of the run, moved forward by ``ahead`` (at first: not at all)."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead
