"""The suite's dates follow the clock of the run, and a run can move that clock ahead."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from border_exchange.demo.dates import dated_for, default_agreements
from border_exchange.demo.sandbox import make_sandbox, open_agreements
from border_exchange.domain.agreements import Agreement, parse_agreement_set
from border_exchange.domain.catalog import AlertType, HandlingCode
from border_exchange.domain.policy import Deny, DenyReason, pair_outcome
from border_exchange.domain.samples import sample_alert
from tests.clock import parse_shift, requested_shift

ROOT = Path(__file__).resolve().parents[2]
TWO_YEARS = timedelta(days=730)


def test_a_shift_is_days_or_hours_and_nothing_else() -> None:
    assert parse_shift("730d") == timedelta(days=730)
    assert parse_shift(" 12h ") == timedelta(hours=12)
    for wrong in ("730", "2y", "-1d", "d", "1.5d"):
        with pytest.raises(ValueError, match="days or hours"):
            parse_shift(wrong)


def test_this_process_reads_the_clock_the_run_asked_for(pytestconfig: pytest.Config) -> None:
    shift = requested_shift(pytestconfig.getoption("--clock-shift")) or timedelta(0)
    # A new interpreter is not shifted: it reads the machine's own clock.
    real = float(
        subprocess.run(
            [sys.executable, "-c", "import time; print(time.time())"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    here = datetime.now(UTC).timestamp()
    assert abs(here - real - shift.total_seconds()) < 600


def _everything_is_valid_now() -> None:
    now = datetime.now(UTC)
    alert = sample_alert(AlertType.WANTED_PERSON)
    assert alert.expires_at > now + timedelta(days=30)
    box = make_sandbox(["CAF", "COD"], open_agreements([("CAF", "COD")]))
    for pid in ("CAF", "COD"):
        assert box.trust.current_key(pid, now).valid_until > now + timedelta(days=30)
    assert all(a.in_force_window(now) for a in box.agreements.agreements)
    text, _ = dated_for(default_agreements().read_text(encoding="utf-8"), now)
    assert all(a.in_force_window(now) for a in parse_agreement_set(text).agreements)


def test_samples_sandbox_and_the_demos_agreements_are_valid_at_the_time_of_the_run() -> None:
    _everything_is_valid_now()


@pytest.mark.parametrize("ahead", [TWO_YEARS, timedelta(days=3650)])
def test_they_stay_valid_with_the_clock_years_ahead(ahead: timedelta) -> None:
    with time_machine.travel(datetime.now(UTC) + ahead, tick=True):
        _everything_is_valid_now()


def _between(agreements: Sequence[Agreement], a: str, b: str) -> list[Agreement]:
    return [x for x in agreements if {a, b} <= set(x.parties)]


def test_the_demos_verdicts_hold_years_ahead() -> None:
    """COD-CAF delivers, COD-MONUSCO is refused as suspended (not expired), in any year."""
    text = default_agreements().read_text(encoding="utf-8")
    for ahead in (timedelta(0), TWO_YEARS, timedelta(days=3650)):
        at = datetime.now(UTC) + ahead
        moved, _ = dated_for(text, at)
        agreements = parse_agreement_set(moved).agreements
        wanted, h1 = AlertType.WANTED_PERSON, HandlingCode.H1
        caf = pair_outcome(_between(agreements, "COD", "CAF"), "COD", "CAF", wanted, h1, at)
        assert caf.delivered
        to_monusco = _between(agreements, "COD", "UN-MONUSCO")
        monusco = pair_outcome(to_monusco, "COD", "UN-MONUSCO", wanted, h1, at)
        assert isinstance(monusco, Deny)
        assert monusco.reason is DenyReason.SUSPENDED


def test_ci_runs_the_unit_tests_with_the_clock_two_years_ahead() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target is not None
    assert re.search(r"pytest -m 'not kafka'.* --clock-shift=730d", target[1])
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
