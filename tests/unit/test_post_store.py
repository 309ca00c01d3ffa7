"""The post store: applies creates, updates, cancels and expiry with the offsets, atomically."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from border_exchange.adapters.post_store import Accepted, Outcome, PostStore, Rejected, State
from border_exchange.domain.alerts import AlertInput, parse_alert
from border_exchange.domain.catalog import AlertType, Operation, ParticipantKind
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.samples import sample_alert, sample_alert_data
from border_exchange.domain.signing import redact, seal, section_content, sign
from border_exchange.domain.trust import Participant, PublicKey, TrustStore
from border_exchange.errors import DecodeError
from border_exchange.services.post import check_record, outcome_of
from tests import clock as clock_of_run
from tests.clock import StoppedClock

KEY = SigningKey(bytes(range(32)))
NOW = clock_of_run.now()
FEED = "bx.COD.from.CAF"


def trust() -> TrustStore:
    key = PublicKey(
        "CAF", "CAF-1", bytes(KEY.verify_key), NOW - timedelta(days=365), NOW + timedelta(days=365)
    )
    caf = Participant("CAF", "Police CAF", ParticipantKind.NATIONAL_SERVICE, "active", (), (key,))
    return TrustStore({"CAF": caf})


def sealed(
    alert: AlertInput, alert_id: str = "wp-1", version: int = 1, issued: datetime = NOW
) -> Envelope:
    operation = Operation.CREATE if version == 1 else Operation.UPDATE
    message = alert.model_copy(update={"version": version, "operation": operation})
    return seal(
        message,
        signing_key=KEY,
        key_id="CAF-1",
        message_id=f"m-{alert_id}-{version}",
        issued_at=issued,
        alert_id=alert_id,
    )


def cancelled(envelope: Envelope, version: int) -> Envelope:
    from dataclasses import replace

    header = replace(
        envelope.header,
        version=version,
        operation=Operation.CANCEL,
        message_id=f"cancel-{version}",
        cancel_reason="arrested",
    )
    return sign(header, (), KEY)


def accepted(envelope: Envelope, offset: int, topic: str = FEED) -> Accepted:
    sections = {n: section_content(envelope, n) for n in envelope.present_sections}
    return Accepted(topic, 0, offset, envelope, sections)


@pytest.fixture
def clock() -> StoppedClock:
    return StoppedClock(NOW)


@pytest.fixture
def store(tmp_path: Path, clock: StoppedClock) -> PostStore:
    return PostStore.open(tmp_path / "post.db", clock=clock)


def test_a_create_is_found_by_plate_vin_document_and_name(store: PostStore) -> None:
    store.apply(
        [
            accepted(sealed(sample_alert(AlertType.WANTED_PERSON)), 0),
            accepted(sealed(sample_alert(AlertType.VEHICLE_NOTICE), "vn-1"), 1),
        ]
    )
    assert [a.alert_id for a in store.find_plate("bg-4512-a")] == ["vn-1"]
    assert [a.alert_id for a in store.find_vin("jtebu29j405012345")] == ["vn-1"]
    assert [a.alert_id for a in store.find_document("ca 0457821")] == ["wp-1"]
    assert [a.alert_id for a in store.find_name("jean-baptiste NGAKOLA")] == ["wp-1"]
    assert [a.alert_id for a in store.find_name("le colonel")] == ["wp-1"]
    assert store.find_name("ngakola", date(1986, 4, 17))
    assert not store.find_name("ngakola", date(1990, 1, 1))
    assert not store.find_plate("BG 4512 B")
    assert store.offsets() == {(FEED, 0): 2}


def test_content_is_kept_as_the_origin_wrote_it(store: PostStore) -> None:
    store.apply([accepted(sealed(sample_alert(AlertType.WANTED_PERSON)), 0)])
    (alert,) = store.active()
    assert alert.sections["offence"]["description"].startswith("Meurtre d'un commerçant")
    assert alert.warning_markers == ("ARMED", "VIOLENT")
    assert alert.action_on_hit == "ARREST"


def test_a_withheld_section_is_absent_and_listed_as_withheld(store: PostStore) -> None:
    envelope = redact(sealed(sample_alert(AlertType.WANTED_PERSON)), {"identity", "offence"})
    store.apply([accepted(envelope, 0)])
    (alert,) = store.active()
    assert set(alert.sections) == {"identity", "offence"}
    assert alert.withheld == ("documents", "description", "photo", "remarks", "contact")
    assert not store.find_document("CA-0457821")  # documents were withheld: not searchable


def test_an_update_replaces_and_an_older_version_is_ignored(store: PostStore) -> None:
    data = sample_alert_data(AlertType.VEHICLE_NOTICE)
    first = sealed(parse_alert(data), "vn-1", 1)
    data["sections"]["vehicle"]["plate"] = "BG 9999 Z"
    second = sealed(parse_alert(data), "vn-1", 2)
    result = store.apply([accepted(second, 0), accepted(first, 1)])
    assert (result.stored, result.stale) == (1, 1)
    assert store.find_plate("BG9999Z")
    assert not store.find_plate("BG 4512 A")
    assert store.offsets() == {(FEED, 0): 2}  # the stale record's offset advances too


def test_a_cancel_removes_the_alert_and_a_late_version_cannot_resurrect_it(
    store: PostStore,
) -> None:
    first = sealed(sample_alert(AlertType.VEHICLE_NOTICE), "vn-1", 1)
    second = sealed(sample_alert(AlertType.VEHICLE_NOTICE), "vn-1", 2)
    store.apply([accepted(first, 0), accepted(cancelled(first, 3), 1)])
    assert not store.find_plate("BG 4512 A")
    assert not store.active()
    store.apply([accepted(second, 2)])
    assert not store.find_plate("BG 4512 A")
    assert store.version_of("CAF", "vn-1") == (3, State.CANCELLED)


def test_expired_alerts_leave_lookups_then_are_purged(
    store: PostStore, clock: StoppedClock
) -> None:
    data = sample_alert_data(AlertType.VEHICLE_NOTICE)
    expiry = NOW + timedelta(days=1)
    data["expires_at"] = clock_of_run.iso(expiry)
    store.apply([accepted(sealed(parse_alert(data), "vn-1"), 0)])
    assert store.find_plate("BG4512A")
    clock.now = expiry
    assert not store.find_plate("BG4512A")
    assert not store.active()
    assert store.purge_expired() == 1
    assert store.version_of("CAF", "vn-1") == (1, State.EXPIRED)


def test_a_rejected_record_is_reported_never_stored_and_its_offset_advances(
    store: PostStore,
) -> None:
    store.apply([Rejected(FEED, 0, 7, "BAD_SIGNATURE: does not verify")])
    assert not store.active()
    assert [r.reason for r in store.rejected()] == ["BAD_SIGNATURE: does not verify"]
    assert store.offsets() == {(FEED, 0): 8}
    assert store.status().rejected == 1


def test_a_crash_inside_apply_stores_neither_the_alert_nor_the_offset(tmp_path: Path) -> None:
    def crash(_: Sequence[Outcome]) -> None:
        raise RuntimeError("power cut")

    path = tmp_path / "post.db"
    envelope = sealed(sample_alert(AlertType.VEHICLE_NOTICE), "vn-1")
    with PostStore.open(path, before_commit=crash) as broken, pytest.raises(RuntimeError):
        broken.apply([accepted(envelope, 0)])
    with PostStore.open(path) as store:
        assert store.offsets() == {}
        assert not store.find_plate("BG 4512 A")
        store.apply([accepted(envelope, 0)])
        assert len(store.find_plate("BG 4512 A")) == 1


def test_status_reports_last_sync_and_lag(store: PostStore) -> None:
    assert store.status().last_sync is None
    store.apply([accepted(sealed(sample_alert(AlertType.VEHICLE_NOTICE), "vn-1"), 0)])
    store.record_sync({(FEED, 0): 5})
    status = store.status()
    assert status.last_sync == NOW
    assert status.lag == 4
    assert status.active == 1


def _record(value: bytes | None, topic: str = FEED, offset: int = 0) -> Any:
    from aiokafka import ConsumerRecord

    return ConsumerRecord(topic, 0, offset, 0, 0, b"k", value, None, 0, 0, [])


def test_records_are_verified_end_to_end_and_must_come_from_their_origins_feed() -> None:
    from dataclasses import replace

    from border_exchange.domain.encoding import encode_envelope

    envelope = sealed(sample_alert(AlertType.WANTED_PERSON))
    good = outcome_of(_record(encode_envelope(redact(envelope, {"identity"}))), trust(), "COD")
    assert isinstance(good, Accepted)
    assert set(good.sections) == {"identity"}

    sections = list(envelope.sections)
    sections[0] = replace(sections[0], content=sections[0].content[:-1] + b"X")  # type: ignore[index]
    tampered = replace(envelope, sections=tuple(sections))
    refused = outcome_of(_record(encode_envelope(tampered)), trust(), "COD")
    assert isinstance(refused, Rejected)
    assert refused.reason.startswith("DIGEST_MISMATCH")

    misrouted = outcome_of(_record(encode_envelope(envelope), "bx.COD.from.UGA"), trust(), "COD")
    assert isinstance(misrouted, Rejected)
    assert "does not own feed" in misrouted.reason

    garbage = outcome_of(_record(b"\xc3\x01garbage"), trust(), "COD")
    assert isinstance(garbage, Rejected)
    with pytest.raises(DecodeError, match="not a feed of COD"):
        check_record("bx.SSD.from.CAF", encode_envelope(envelope), trust(), "COD")
