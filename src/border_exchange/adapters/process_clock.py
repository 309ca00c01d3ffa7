"""How long this process has been running, by the kernel's clock: its imports included."""

from __future__ import annotations

import os
import time

_STARTTIME_FIELD = 19
"""Index of ``starttime`` (field 22 of ``/proc/<pid>/stat``) after the command's ``)``."""


def process_age() -> float | None:
    """Seconds since the kernel started this process (None where ``/proc`` does not say).

    Measured from the kernel's start time, not from the first line of Python, so the
    interpreter's start and every import count: what a restart costs before the
    program does anything.
    """
    try:
        with open("/proc/self/stat", "rb") as stat:
            data = stat.read()
        # The command name may hold spaces and parentheses: the fields start after the last ")".
        fields = data[data.rindex(b")") + 2 :].split()
        started = int(fields[_STARTTIME_FIELD]) / os.sysconf("SC_CLK_TCK")
        return round(time.clock_gettime(time.CLOCK_BOOTTIME) - started, 3)
    except (OSError, ValueError, IndexError, AttributeError):
        return None
