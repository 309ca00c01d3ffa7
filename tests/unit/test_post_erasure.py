"""The post store's side of retention: bootstrap from state, reconciliation, gaps, erasure."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from border_exchange.adapters.post_store import Accepted, PostStore, Rejected
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import seal, section_content
from tests.cancels import cancel_of
from tests.clock import StoppedClock

KEY = SigningKey(bytes(range(32)))
FEED = "bx.COD.from.CAF"
STATE = "bx.COD.state.from.CAF"


def _wanted(alert_id: str, family: str, expires_at: datetime, issued: datetime) -> Envelope:
    base = sample_alert(AlertType.WANTED_PERSON, origin="CAF", alert_id=alert_id)
    data = base.model_dump()
    data["sections"]["identity"]["family_names"] = [family]
    data["expires_at"] = expires_at
    alert = type(base).model_validate(data)
    return seal(
        alert, signing_key=KEY, key_id="CAF-1", message_id=f"m-{alert_id}", issued_at=issued
    )


def _cancel(envelope: Envelope, issued: datetime) -> Envelope:
    message_id = f"cancel-{envelope.header.alert_id}"
    return cancel_of(envelope, KEY, "arrested", message_id, issued_at=issued)


def _accepted(envelope: Envelope, topic: str = STATE, offset: int = 0) -> Accepted:
    sections = {
        name: section_content(envelope, name)
        for name in envelope.section_names
        if name in envelope.present_sections
    }
    return Accepted(topic, 0, offset, envelope, sections)


def _bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_bootstrap_stores_the_state_resumes_the_feed_and_erases_what_the_state_dropped(
    tmp_path: Path,
) -> None:
    clock = StoppedClock()
    year = clock.now + timedelta(days=365)
    kept = _wanted("kept", "KEPTFAMILY", year, clock.now)
    dropped = _wanted("dropped", "DROPPEDFAMILY", year, clock.now)
    with PostStore.open(tmp_path / "p.db", clock=clock) as store:
        store.apply([_accepted(kept, FEED, 0), _accepted(dropped, FEED, 1)])
        assert b"DROPPEDFAMILY" in _bytes(tmp_path / "p.db")
        forged = Rejected(STATE, 0, 7, "BAD_SIGNATURE: forged")
        result, erased = store.bootstrap("CAF", (FEED, 0), [_accepted(kept), forged], ["kept"], 40)
        assert (result.stale, result.rejected, erased) == (1, 1, 1)
        assert {a.alert_id for a in store.active()} == {"kept"}
        assert store.version_of("CAF", "dropped") is None
        assert store.offsets()[(FEED, 0)] == 40
        assert [r.offset for r in store.rejected()] == [7]
    assert b"DROPPEDFAMILY" not in _bytes(tmp_path / "p.db")
    assert b"KEPTFAMILY" in _bytes(tmp_path / "p.db")


def test_bootstrap_without_state_resumes_but_erases_nothing(tmp_path: Path) -> None:
    clock = StoppedClock()
    kept = _wanted("kept", "KEPTFAMILY", clock.now + timedelta(days=9), clock.now)
    with PostStore.open(tmp_path / "p.db", clock=clock) as store:
        store.apply([_accepted(kept, FEED, 0)])
        assert store.bootstrap("CAF", (FEED, 0), [], None, 12)[1] == 0
        assert {a.alert_id for a in store.active()} == {"kept"}


def test_a_gap_is_recorded_and_shown(tmp_path: Path) -> None:
    with PostStore.open(tmp_path / "p.db") as store:
        store.record_gap(FEED, 2, 5, 90, STATE)
        store.record_gap(FEED, 1, None, 3, None)
        gaps = store.status().gaps
    assert [g.describe() for g in gaps] == [
        f"{FEED}/2: offsets 5..89 deleted before read; bootstrapped from {STATE}",
        f"{FEED}/1: deleted before read; NOT healed",
    ]


def test_cancelled_and_expired_rows_go_after_grace_and_no_byte_of_their_names_stays(
    tmp_path: Path,
) -> None:
    clock = StoppedClock()
    start = clock.now
    cancelled = _wanted("c", "CANCELFAMILY", start + timedelta(days=300), start)
    expiring = _wanted("e", "EXPIREFAMILY", start + timedelta(days=3), start)
    staying = _wanted("s", "STAYFAMILY", start + timedelta(days=300), start)
    path = tmp_path / "p.db"
    with PostStore.open(path, clock=clock) as store:
        store.apply([_accepted(e, FEED, i) for i, e in enumerate((cancelled, expiring, staying))])
        assert b"CANCELFAMILY" in _bytes(path)
        assert b"EXPIREFAMILY" in _bytes(path)
        store.apply([_accepted(_cancel(cancelled, start + timedelta(days=1)), FEED, 3)])
        clock.now = start + timedelta(days=4)
        assert store.purge_expired() == 1
        grace = timedelta(days=7)
        assert store.erase_after_grace(grace) == 0  # within grace: the rows (no content) stay
        assert store.version_of("CAF", "c") is not None
        clock.now = start + timedelta(days=10, hours=1)
        assert store.erase_after_grace(grace) == 2
        assert store.version_of("CAF", "c") is None
        assert store.version_of("CAF", "e") is None
        assert [a.alert_id for a in store.active()] == ["s"]
        # While the post runs, too: the write-ahead log keeps no old page either.
        data = _bytes(path)
        assert b"CANCELFAMILY" not in data
        assert b"EXPIREFAMILY" not in data
        assert b"STAYFAMILY" in data


def test_post_status_lists_every_gap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from border_exchange.cli.main import main

    path = tmp_path / "p.db"
    with PostStore.open(path) as store:
        store.record_gap(FEED, 1, 5, 90, STATE)
    assert main(["post", "status", "--db", str(path), "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert f"gap {FEED}/1: offsets 5..89 deleted before read; bootstrapped from {STATE}" in out
