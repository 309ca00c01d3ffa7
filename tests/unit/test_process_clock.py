"""The age of a process, by the kernel's clock: what a restart's timeline is measured in."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from border_exchange.adapters.process_clock import process_age

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_a_process_age_counts_from_the_process_start_and_grows_with_the_clock() -> None:
    before = process_age()
    assert before is not None
    assert before > 0
    time.sleep(0.2)
    after = process_age()
    assert after is not None
    # The kernel counts a process's start in ticks (10 ms here): allow one.
    assert 0.18 <= after - before < 60


def test_a_new_process_is_younger_than_this_one() -> None:
    probe = "from border_exchange.adapters.process_clock import process_age; print(process_age())"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    child = float(done.stdout)
    mine = process_age()
    assert mine is not None
    assert 0 < child < mine
