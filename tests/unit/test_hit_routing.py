"""The router's decisions on hit reports and acknowledgements, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from nacl.signing import SigningKey

from border_exchange.demo.sandbox import make_sandbox
from border_exchange.domain.audit import ChainHead, encode_audit
from border_exchange.domain.catalog import AlertType, Operation, Priority
from border_exchange.domain.encoding import decode_record
from border_exchange.domain.hit_routing import (
    DeliveredHit,
    HitRouted,
    HitSigned,
    ReceivedAlert,
    check_hit_unsigned,
    hit_audit_record,
    route_hit_signed,
)
from border_exchange.domain.hits import (
    HitAction,
    HitReport,
    MessageKind,
    ack_of,
    seal_ack,
    seal_report,
)
from border_exchange.domain.naming import outbox_topic
from border_exchange.domain.routing import (
    Inbound,
    PartitionState,
    QuarantineReason,
    Refused,
    RoutingRules,
    replay_audit,
)
from border_exchange.domain.signing import signature_holds

NOW = datetime.now(UTC)
SANDBOX = make_sandbox(["CAF", "COD"], "version: x\nagreements: []\n", posts={"CAF": ["port"]})
RULES = RoutingRules()
STRANGER = SigningKey.generate()
RECEIVED = ReceivedAlert(2, AlertType.WANTED_PERSON, cancelled=False)


def report(**changes: object) -> HitReport:
    values: dict[str, object] = {
        "hit_id": "hit-1",
        "reporter": "CAF",
        "post": "port",
        "key_id": SANDBOX.key_ids["CAF.post.port"],
        "alert_origin": "COD",
        "alert_id": "alert-1",
        "alert_version": 2,
        "alert_type": AlertType.WANTED_PERSON,
        "priority": Priority.ROUTINE,
        "hit_at": NOW - timedelta(minutes=3),
        "reported_at": NOW,
        "expires_at": NOW + timedelta(days=90),
        "action": HitAction.OBSERVED,
        "place": "ferry",
        "contact": "radio 4",
    }
    values.update(changes)
    return HitReport(**values)  # type: ignore[arg-type]  # built by name for the test


def checked(value: bytes, kind: MessageKind, topic: str = outbox_topic("CAF")) -> HitSigned:
    result = check_hit_unsigned(
        Inbound(topic, 0, 7, b"alert-1", value), kind, expected_partition=None, trust=SANDBOX.trust
    )
    assert isinstance(result, HitSigned), result
    return result


def decided(signed: HitSigned, state: PartitionState | None = None, **kw: object) -> object:
    received = kw.get("received", RECEIVED)
    return route_hit_signed(
        signed,
        signature_holds(signed.signed, signed.public_key),
        now=NOW,
        rules=RULES,
        state=state or PartitionState(),
        received=received,  # type: ignore[arg-type]  # a test value
        delivered=kw.get("delivered"),  # type: ignore[arg-type]  # a test value
    )


def test_a_report_signed_by_its_post_goes_to_the_alerts_origin() -> None:
    signed = checked(seal_report(report(), SANDBOX.keys["CAF.post.port"]), MessageKind.HIT_REPORT)
    result = decided(signed)
    assert isinstance(result, HitRouted)
    assert result.recipient == "COD"


def test_a_report_in_another_services_outbox_or_signed_by_the_service_is_refused() -> None:
    value = seal_report(report(), SANDBOX.keys["CAF.post.port"])
    elsewhere = check_hit_unsigned(
        Inbound(outbox_topic("COD"), 0, 1, b"alert-1", value),
        MessageKind.HIT_REPORT,
        expected_partition=None,
        trust=SANDBOX.trust,
    )
    assert isinstance(elsewhere, Refused)
    assert elsewhere.reason is QuarantineReason.ORIGIN_MISMATCH
    by_service = checked(seal_report(report(), SANDBOX.keys["CAF"]), MessageKind.HIT_REPORT)
    refused = decided(by_service)
    assert isinstance(refused, Refused)
    assert refused.reason is QuarantineReason.HIT_FORGED_REPORTER
    stranger = check_hit_unsigned(
        Inbound(
            outbox_topic("CAF"),
            0,
            1,
            b"alert-1",
            seal_report(report(post="ghost"), SigningKey.generate()),
        ),
        MessageKind.HIT_REPORT,
        expected_partition=None,
        trust=SANDBOX.trust,
    )
    assert isinstance(stranger, Refused)
    assert stranger.reason is QuarantineReason.HIT_FORGED_REPORTER


def test_an_ack_goes_back_only_on_an_alert_this_outbox_routed_to_the_reporter() -> None:
    answer = ack_of(report(), key_id=SANDBOX.key_ids["COD"], instructions="hold", now=NOW)
    signed = checked(
        seal_ack(answer, SANDBOX.keys["COD"]), MessageKind.HIT_ACK, outbox_topic("COD")
    )
    state = PartitionState()
    refused = decided(signed, state)
    assert isinstance(refused, Refused)
    assert refused.reason is QuarantineReason.ACK_UNKNOWN_HIT
    state._remember(
        "m-1",
        NOW + timedelta(days=9),
        "alert-1",
        AlertType.WANTED_PERSON,
        2,
        Operation.CREATE,
        ("CAF",),
    )
    reported = DeliveredHit("CAF", "port", "alert-1")  # as the router delivered it to COD
    result = decided(signed, state, delivered=reported)
    assert isinstance(result, HitRouted)
    assert result.recipient == "CAF"


@pytest.mark.parametrize(
    ("delivered", "detail"),
    [
        (None, "no such hit report was delivered to COD"),
        (DeliveredHit("CAF", "airport", "alert-1"), "reported to COD by CAF post airport"),
        (DeliveredHit("UGA", "port", "alert-1"), "reported to COD by UGA post port"),
        (DeliveredHit("CAF", "port", "alert-2"), "on alert alert-2, not by CAF post port"),
    ],
)
def test_an_ack_goes_back_only_for_a_hit_delivered_to_the_origin_from_that_post(
    delivered: DeliveredHit | None, detail: str
) -> None:
    answer = ack_of(report(), key_id=SANDBOX.key_ids["COD"], instructions="hold", now=NOW)
    signed = checked(
        seal_ack(answer, SANDBOX.keys["COD"]), MessageKind.HIT_ACK, outbox_topic("COD")
    )
    state = PartitionState()  # the alert was routed from COD's outbox to CAF
    state._remember(
        "m-1", NOW + timedelta(days=9), "alert-1", AlertType.WANTED_PERSON, 2,
        Operation.CREATE, ("CAF",),
    )  # fmt: skip
    refused = decided(signed, state, delivered=delivered)
    assert isinstance(refused, Refused)
    assert refused.reason is QuarantineReason.ACK_UNKNOWN_HIT
    assert detail in refused.detail


def test_a_rebuilt_memory_resumes_after_a_delivered_report_and_refuses_it_again() -> None:
    signed = checked(seal_report(report(), SANDBOX.keys["CAF.post.port"]), MessageKind.HIT_REPORT)
    routed = decided(signed)
    assert isinstance(routed, HitRouted)
    record = decode_record(encode_audit(hit_audit_record(ChainHead("c"), NOW, 41, routed)))[1]
    state = PartitionState()
    replay_audit(state, record)
    assert state.next_offset == 42  # the exactly-once resume point
    again = decided(signed, state)
    assert isinstance(again, Refused)
    assert again.reason is QuarantineReason.REPLAYED


def test_received_cancelled_or_unknown_versions_are_refused_each_with_its_reason() -> None:
    signed = checked(seal_report(report(), SANDBOX.keys["CAF.post.port"]), MessageKind.HIT_REPORT)
    cases = {
        QuarantineReason.HIT_NOT_RECEIVED: None,
        QuarantineReason.HIT_ALERT_CANCELLED: ReceivedAlert(3, AlertType.WANTED_PERSON, True),
        QuarantineReason.HIT_UNKNOWN_VERSION: ReceivedAlert(1, AlertType.WANTED_PERSON, False),
    }
    for reason, received in cases.items():
        result = decided(signed, received=received)
        assert isinstance(result, Refused)
        assert result.reason is reason
