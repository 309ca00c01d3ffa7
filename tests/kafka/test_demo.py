"""``border-exchange demo`` runs the whole story on its own Kafka and every check passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_the_demo_tells_the_whole_story_and_stops_everything(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"

    done = subprocess.run(
        [sys.executable, "-m", "border_exchange", "demo", "--dir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = done.stdout
    assert done.returncode == 0, output[-3000:] + done.stderr[-3000:]
    assert "audit replay: 0 violations" in output
    # An admission approved by one of the four services is refused, by three taken; the
    # replay then runs across the change, each record under the store in force.
    assert "trust store: under-signed admission refused, majority-approved one taken: yes" in output
    assert "needs the approval of 3 of the 4 active participants" in output
    assert "the stores in force, for the auditor: trust-1.yaml, trust-2.yaml" in output
    assert "publishes over HTTP, POST /alerts -> 202" in output
    assert "offline lookup at COD's post (Kafka stopped): hit" in output
    assert "photo withheld at CAF's post: yes" in output
    assert "search through CAF's post page: hit" in output
    assert "post page: http://127.0.0.1:" in output
    assert "cancellation reached every earlier recipient: yes" in output
    assert "backup of CAF's post taken before the cancellation unreadable after it: yes" in output
    # Bangui port's hit reaches COD's desk, open with an urgent wanted person's 2 h, and
    # the desk's acknowledgement comes back to the post.
    assert (
        "hit at CAF's post reported, listed open at COD's desk, acknowledgement back: yes" in output
    )
    assert "queued, sent 1 (left 0)" in output
    assert "OPEN due " in output
    assert "(WANTED_PERSON, URGENT: 2 h)" in output
    assert "bangui-port sees the acknowledgement of COD: Retenez-le" in output
    assert "1 hit reports, 1 acknowledgements delivered" in output  # in the audit replay
    assert "post rebuilt from the state topics, cancelled alert absent: yes" in output
    assert "it has its partitions back" in output  # after the router's kill -9
    # ... and its start's timeline, read from its own log
    assert "its log, from the process's start: imports done" in output
    assert "every partition fenced and rebuilt" in output
    assert "oversized photo refused, 5 MB outbox record quarantined: yes" in output
    assert "CAF        delivered under COD-CAF-2026" in output
    assert "UN-MONUSCO denied SUSPENDED (COD-MONUSCO-2026)" in output
    # Signed by SSD's officer only: not in force, SSD's incident is not delivered to CAF.
    assert "SSD-CAF-INCIDENTS (active; signed by SSD only, not by CAF: NOT IN FORCE)" in output
    assert "CAF        denied NOT_SIGNED (SSD-CAF-INCIDENTS)" in output
    assert not workdir.exists(), "without --keep the demo removes its directory"
    assert not _processes_mentioning(str(workdir)), "a broker or the router outlived the demo"


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        if text in command:
            found.append(command)
    return found
