"""Hit reports and acknowledgements: checks, encoding, the signature, the deadline table."""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from nacl.signing import SigningKey

from border_exchange.domain import limits
from border_exchange.domain.catalog import AlertType, Priority
from border_exchange.domain.hit_deadlines import (
    DEFAULT_DEADLINES,
    DeadlineTable,
    HitStatus,
    hit_status,
    parse_deadlines,
)
from border_exchange.domain.hits import (
    HitAcknowledgement,
    HitAction,
    HitReport,
    MessageKind,
    decode_ack,
    decode_report,
    message_kind,
    seal_ack,
    seal_report,
    verify_signed,
)
from border_exchange.domain.quarantine_notice import (
    QuarantineNotice,
    decode_notice,
    encode_notice,
)
from border_exchange.domain.schemas import registry
from border_exchange.domain.trust import parse_trust_store
from border_exchange.domain.trust_governance import entry_digest
from border_exchange.errors import (
    ConfigError,
    DecodeError,
    KeyNotValidError,
    SignatureError,
    TrustStoreError,
    ValidationError,
)

NOW = datetime.now(UTC).replace(microsecond=0)
POST_KEY = SigningKey(bytes(range(32)))
COD_KEY = SigningKey(bytes(range(1, 33)))


def report(**changes: object) -> HitReport:
    base = HitReport(
        hit_id="hit-1",
        reporter="CAF",
        post="bangui-port",
        key_id="CAF-bangui-port-01",
        alert_origin="COD",
        alert_id="alert-1",
        alert_version=2,
        alert_type=AlertType.WANTED_PERSON,
        priority=Priority.ROUTINE,
        hit_at=NOW - timedelta(minutes=10),
        reported_at=NOW,
        expires_at=NOW + timedelta(days=90),
        action=HitAction.ARRESTED,
        place="Bangui port, Oubangui river crossing",
        contact="+236 72 00 00 00",
        remarks="Stopped at the ferry; held at the post.",
    )
    return replace(base, **changes)  # type: ignore[arg-type]  # test overrides by name


def ack(**changes: object) -> HitAcknowledgement:
    base = HitAcknowledgement(
        ack_id="ack-1",
        hit_id="hit-1",
        origin="COD",
        key_id="COD-2026-01",
        reporter="CAF",
        post="bangui-port",
        alert_id="alert-1",
        acknowledged_at=NOW,
        expires_at=NOW + timedelta(days=90),
        instructions="Hold him; our liaison officer arrives tomorrow.",
    )
    return replace(base, **changes)  # type: ignore[arg-type]  # test overrides by name


def test_a_sealed_report_decodes_to_itself_and_its_signature_verifies() -> None:
    value = seal_report(report(), POST_KEY, NOW)
    assert message_kind(value) is MessageKind.HIT_REPORT
    decoded = decode_report(value)
    assert replace(decoded, signature=b"") == report()
    verify_signed(value, MessageKind.HIT_REPORT, bytes(POST_KEY.verify_key))


def test_every_byte_of_a_sealed_report_is_covered_by_its_signature() -> None:
    value = seal_report(report(), POST_KEY, NOW)
    for index in range(len(value)):
        flipped = bytearray(value)
        flipped[index] ^= 0x01
        with pytest.raises(SignatureError):
            verify_signed(bytes(flipped), MessageKind.HIT_REPORT, bytes(POST_KEY.verify_key))


def test_a_report_does_not_verify_as_an_acknowledgement_nor_with_another_key() -> None:
    value = seal_report(report(), POST_KEY, NOW)
    with pytest.raises(SignatureError):
        verify_signed(value, MessageKind.HIT_ACK, bytes(POST_KEY.verify_key))
    with pytest.raises(SignatureError):
        verify_signed(value, MessageKind.HIT_REPORT, bytes(COD_KEY.verify_key))


def test_an_acknowledgement_round_trips_and_verifies() -> None:
    value = seal_ack(ack(), COD_KEY)
    assert message_kind(value) is MessageKind.HIT_ACK
    assert replace(decode_ack(value), signature=b"") == ack()
    verify_signed(value, MessageKind.HIT_ACK, bytes(COD_KEY.verify_key))
    with pytest.raises(DecodeError, match=r"expected a bx\.HitReport"):
        decode_report(value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"remarks": "x" * (1024 * 1024)}, "remarks: 1,048,576 characters"),
        ({"hit_at": NOW + timedelta(hours=1)}, "hit_at"),
        ({"alert_version": 0}, "alert_version"),
        ({"action": HitAction.NOT_ACTED}, "not_acted_reason: required"),
        ({"alert_origin": "CAF"}, "alert_origin"),
        ({"post": "Bangui Port"}, "post"),
        ({"place": " "}, "place: must not be empty"),
        ({"reporter": "caf"}, "reporter"),
    ],
)
def test_a_bad_report_is_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        seal_report(report(**changes), POST_KEY, NOW)
    assert any(field in problem for problem in caught.value.problems)


def test_a_future_hit_time_is_refused_against_the_clock_of_the_post() -> None:
    future = report(hit_at=NOW + timedelta(hours=1), reported_at=NOW + timedelta(hours=1))
    with pytest.raises(ValidationError, match="invalid hit report") as caught:
        seal_report(future, POST_KEY, NOW)
    assert caught.value.problems == (f"hit_at: {future.hit_at.isoformat()} is in the future",)
    seal_report(future, POST_KEY, NOW + timedelta(hours=1))  # the same at that time is fine


def test_remarks_at_the_limit_fit_within_the_record_limit() -> None:
    longest = "\U0001f600" * limits.MAX_HIT_TEXT_CHARS
    value = seal_report(
        report(remarks=longest, not_acted_reason=longest, place="p" * limits.MAX_HIT_FIELD_CHARS),
        POST_KEY,
        NOW,
    )
    assert len(value) <= limits.MAX_HIT_BYTES


@pytest.mark.parametrize(
    ("value", "schema"),
    [
        (HitReport, "bx.HitReport"),
        (HitAcknowledgement, "bx.HitAcknowledgement"),
        (QuarantineNotice, "bx.QuarantineNotice"),
    ],
)
def test_each_value_has_the_fields_of_its_schema(value: type, schema: str) -> None:
    fields = [entry["name"] for entry in registry().schema(schema).raw["fields"]]
    assert sorted(f.name for f in dataclasses.fields(value)) == sorted(fields)
    if schema != "bx.QuarantineNotice":
        assert fields[-1] == "signature"  # the signature covers every byte before it


def test_an_alert_envelope_and_garbage_are_told_apart() -> None:
    assert message_kind(b"\xc3\x01" + bytes(8) + b"x") is None
    assert message_kind(None) is None
    assert message_kind(b"") is None


def test_a_quarantine_notice_round_trips_with_bounded_texts() -> None:
    notice = QuarantineNotice(
        "SSD", "bx.SSD.outbox", 1, 42, "UNKNOWN_KEY", "d" * 5000, NOW, "m-1", "a-1", "ALERT"
    )
    decoded = decode_notice(encode_notice(notice))
    assert (decoded.source_offset, decoded.reason) == (42, "UNKNOWN_KEY")
    assert len(decoded.detail) < 1100
    assert decoded.detail.endswith("(5000 characters)")


# ---------------------------------------------------------------- deadline table


def test_the_default_deadline_for_a_routine_person_is_twelve_hours_as_sis() -> None:
    table = DeadlineTable()
    due = table.deadline(AlertType.WANTED_PERSON, Priority.ROUTINE, NOW)
    assert due - NOW == timedelta(hours=12)
    assert table.deadline(AlertType.WANTED_PERSON, Priority.URGENT, NOW) < due
    assert table.deadline(AlertType.VEHICLE_NOTICE, Priority.ROUTINE, NOW) - NOW == timedelta(
        hours=48
    )
    assert len(DEFAULT_DEADLINES) == len(AlertType) * len(Priority)


def test_a_hit_is_open_until_its_deadline_then_overdue() -> None:
    due = NOW + timedelta(hours=12)
    assert hit_status(due, None, due) is HitStatus.OPEN
    assert hit_status(due, None, due + timedelta(seconds=1)) is HitStatus.OVERDUE
    assert hit_status(due, due - timedelta(hours=1), due + timedelta(days=1)) is (
        HitStatus.ACKNOWLEDGED
    )
    assert hit_status(due, due + timedelta(hours=1), due) is HitStatus.ACKNOWLEDGED_LATE


def test_a_configured_table_overrides_some_entries_and_keeps_the_rest() -> None:
    table = parse_deadlines("WANTED_PERSON:\n  ROUTINE: 8\n")
    assert table.hours[AlertType.WANTED_PERSON, Priority.ROUTINE] == timedelta(hours=8)
    assert table.hours[AlertType.VEHICLE_NOTICE, Priority.ROUTINE] == timedelta(hours=48)


def test_a_bad_table_names_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_deadlines("WANTED_PERSONS: {}\nVEHICLE_NOTICE:\n  SOON: 1\n  URGENT: -2\n")
    message = str(caught.value)
    assert "WANTED_PERSONS: not an alert type" in message
    assert "VEHICLE_NOTICE.SOON: not a priority" in message
    assert "VEHICLE_NOTICE.URGENT: must be a positive number" in message


# -------------------------------------------------------------- posts' own keys


def _store(post: str = "bangui-port", key_id: str = "CAF-bangui-port-01") -> str:
    public = base64.b64encode(bytes(POST_KEY.verify_key)).decode()
    service = base64.b64encode(bytes(COD_KEY.verify_key)).decode()
    return f"""
version: 1
participants:
  - id: CAF
    name: Police nationale centrafricaine
    kind: NATIONAL_SERVICE
    posts: [bangui-port]
    keys:
      - key_id: CAF-2026-01
        public_key: "{service}"
        valid_from: 2026-01-01T00:00:00Z
        valid_until: 2099-01-01T00:00:00Z
    post_keys:
      - post: {post}
        key_id: {key_id}
        public_key: "{public}"
        valid_from: 2026-01-01T00:00:00Z
        valid_until: 2099-01-01T00:00:00Z
"""


def test_a_post_key_is_found_under_its_participant_and_is_no_service_key() -> None:
    store = parse_trust_store(_store())
    key = store.post_key_for("CAF", "bangui-port", "CAF-bangui-port-01", NOW)
    assert (key.raw, key.owner) == (bytes(POST_KEY.verify_key), "CAF.post.bangui-port")
    with pytest.raises(KeyNotValidError):
        store.key_for("CAF", "CAF-bangui-port-01", NOW)  # never signs an alert
    with pytest.raises(KeyNotValidError):
        store.post_key_for("CAF", "bangui-port", "CAF-2026-01", NOW)  # nor a service key a report


def test_a_post_key_of_a_post_not_listed_is_refused() -> None:
    with pytest.raises(TrustStoreError, match=r"post_keys\[0\]\.post: 'mbaiki' is not one"):
        parse_trust_store(_store(post="mbaiki"))


def test_the_participants_signed_entry_covers_its_post_keys() -> None:
    one = parse_trust_store(_store()).participants["CAF"]
    other = parse_trust_store(_store(key_id="CAF-bangui-port-02")).participants["CAF"]
    assert entry_digest(one) != entry_digest(other)
    without = replace(one, post_keys=())
    assert entry_digest(without) != entry_digest(one)


def test_the_desk_gauge_counts_open_and_overdue_hits_at_the_clock_given() -> None:
    from border_exchange.adapters.metrics import Metrics
    from border_exchange.domain.hits import ack_of
    from border_exchange.services.hits import desk_view, publish_gauge

    urgent = report(hit_id="hit-u", priority=Priority.URGENT)  # due in 2 h
    routine = report(hit_id="hit-r")  # due in 12 h
    answered = report(hit_id="hit-a")
    acks = [ack_of(answered, key_id="COD-1", instructions="hold", now=NOW)]
    metrics = Metrics()
    for hours, expected in ((1, (2, 0)), (3, (1, 1)), (13, (0, 2))):
        rows = desk_view(
            [urgent, routine, answered], acks, DeadlineTable(), NOW + timedelta(hours=hours)
        )
        publish_gauge(metrics, "COD", rows)
        seen = tuple(
            metrics.value("desk_hits", {"participant": "COD", "status": s})
            for s in ("open", "overdue")
        )
        assert seen == expected, hours
    assert [row.report.hit_id for row in rows][-1] == "hit-a"  # answered ones last
