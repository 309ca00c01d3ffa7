"""The size contract: the largest alert fits every record written for it, and larger is refused."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
from nacl.signing import SigningKey

from border_exchange.adapters.kafka_settings import (
    KafkaSettings,
    consumer_size_kwargs,
    producer_size_kwargs,
)
from border_exchange.domain import limits
from border_exchange.domain.alerts import AlertInput, parse_alert
from border_exchange.domain.audit import QUARANTINE_SCHEMA
from border_exchange.domain.catalog import AlertType, ParticipantKind
from border_exchange.domain.encoding import decode_record, encode_envelope
from border_exchange.domain.provisioning import desired_topics
from border_exchange.domain.quarantine import RefusedRecord, encode_quarantine
from border_exchange.domain.routing import Inbound, QuarantineReason, Refused, check_unsigned
from border_exchange.domain.samples import sample_alert_data
from border_exchange.domain.signing import seal
from border_exchange.domain.strimzi import kafka_topics
from border_exchange.domain.trust import Hub, Participant, TrustStore
from border_exchange.errors import ValidationError
from border_exchange.services.gateway import Gateway

KEY = SigningKey(bytes(range(32)))


def _now() -> datetime:
    return datetime.now(UTC)


def _wanted(photo: bytes | None = None, marks: int = 0) -> dict[str, Any]:
    data = sample_alert_data(AlertType.WANTED_PERSON, origin="CAF", alert_id="wp-1")
    data["expires_at"] = (_now() + timedelta(days=30)).isoformat()
    sections = data["sections"]
    if photo is not None:
        sections["photo"]["data"] = photo
    if marks:
        marked = [f"{i:04d}" + "x" * 195 for i in range(marks)]
        sections["description"]["distinguishing_marks"] = marked
    return data


def _sealed_size(alert: AlertInput) -> int:
    envelope = seal(alert, signing_key=KEY, key_id="CAF-1", message_id="m1", issued_at=_now())
    return len(encode_envelope(envelope))


def _trust(*ids: str) -> TrustStore:
    kind = ParticipantKind.NATIONAL_SERVICE
    members = {p: Participant(p, p, kind, "active", ("east",), ()) for p in ids}
    return TrustStore(MappingProxyType(members), Hub((), ("oversight",)))


def test_the_largest_photo_seals_within_the_alert_limit_with_room_to_spare() -> None:
    size = _sealed_size(parse_alert(_wanted(os.urandom(limits.MAX_PHOTO_BYTES))))
    assert limits.MAX_PHOTO_BYTES < size <= limits.MAX_ALERT_BYTES
    assert limits.MAX_ALERT_BYTES - size >= 128 * limits.KIB  # room for the other sections
    assert size + limits.RECORD_HEADROOM_BYTES <= limits.MAX_MESSAGE_BYTES


def test_a_larger_photo_is_refused_naming_its_size_and_the_limit() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_alert(_wanted(os.urandom(limits.MAX_PHOTO_BYTES + 1)))
    text = str(refused.value)
    assert f"{limits.MAX_PHOTO_BYTES + 1:,} bytes" in text
    assert f"{limits.MAX_PHOTO_BYTES:,} bytes" in text


def test_the_gateway_refuses_a_too_large_alert_at_once_before_any_send() -> None:
    alert = parse_alert(_wanted(marks=5000))  # ~1 MB of distinguishing marks, no photo
    size = _sealed_size(alert)
    assert size > limits.MAX_ALERT_BYTES
    # Nothing listens on port 1: a send would retry for its whole retry window.
    gateway = Gateway(KafkaSettings("127.0.0.1:1"), "CAF", KEY, "CAF-1", retry_for=300.0)
    problems = gateway.check([alert])[0]
    assert any(f"{limits.MAX_ALERT_BYTES:,} bytes" in p for p in problems)
    with pytest.raises(ValidationError) as refused:
        asyncio.run(asyncio.wait_for(gateway.publish(alert), 10))
    assert "limit" in str(refused.value)
    assert gateway.history("wp-1") is None


def test_every_provisioned_topic_carries_the_record_limit_and_clients_follow_it() -> None:
    trust = _trust("CAF", "COD")
    for spec in desired_topics(trust, 1).values():
        assert spec.configs["max.message.bytes"] == str(limits.MAX_MESSAGE_BYTES), spec.name
    for resource in kafka_topics(trust, "bx"):
        assert resource["spec"]["config"]["max.message.bytes"] == str(limits.MAX_MESSAGE_BYTES)
    assert producer_size_kwargs()["max_request_size"] == limits.MAX_MESSAGE_BYTES
    assert consumer_size_kwargs()["max_partition_fetch_bytes"] >= limits.MAX_MESSAGE_BYTES


def test_the_router_refuses_a_record_over_the_alert_limit_before_decoding_it() -> None:
    value = b"\xc3\x01" + os.urandom(limits.MAX_ALERT_BYTES)
    inbound = Inbound("bx.CAF.outbox", 0, 7, b"k", value)
    refused = check_unsigned(inbound, expected_partition=None, trust=_trust("CAF"))
    assert isinstance(refused, Refused)
    assert refused.reason is QuarantineReason.TOO_LARGE
    assert f"{len(value):,} bytes" in refused.detail
    just_fits = Inbound("bx.CAF.outbox", 0, 8, b"k", value[: limits.MAX_ALERT_BYTES])
    other = check_unsigned(just_fits, expected_partition=None, trust=_trust("CAF"))
    assert isinstance(other, Refused)
    assert other.reason is QuarantineReason.MALFORMED


@pytest.mark.parametrize(
    "value",
    [
        gzip.decompress(gzip.compress(b"\0" * (5 * limits.MIB))),  # what a 5 MB gzip value reads as
        os.urandom(limits.MAX_MESSAGE_BYTES - 156),
        None,
        b"tiny",
    ],
    ids=["5MB", "near-the-broker-limit", "no-value", "tiny"],
)
def test_a_quarantine_record_keeps_a_prefix_the_length_and_the_hash_and_always_fits(
    value: bytes | None,
) -> None:
    key = os.urandom(300_000)
    refused = RefusedRecord(
        "bx.CAF.outbox", 1, 42, key, value, "TOO_LARGE", "record key " + repr(key), None
    )
    data = encode_quarantine(refused, _now())
    assert len(data) <= limits.MAX_QUARANTINE_RECORD_BYTES
    schema, record = decode_record(data)
    assert schema == QUARANTINE_SCHEMA
    assert record["original_key"] == key[: limits.QUARANTINE_PREFIX_BYTES]
    assert record["original_key_length"] == len(key)
    assert len(record["detail"]) <= limits.QUARANTINE_TEXT_CHARS + 40
    if value is None:
        assert record["original_value"] is None
        assert record["original_value_sha256"] is None
    else:
        assert record["original_value"] == value[: limits.QUARANTINE_PREFIX_BYTES]
        assert record["original_value_length"] == len(value)
        assert record["original_value_sha256"] == hashlib.sha256(value).digest()
