"""The direct audit record reader gives fastavro's records exactly; fails only with DecodeError."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from border_exchange.domain.audit import AUDIT_SCHEMA, encode_audit
from border_exchange.domain.audit_chain import decode_audit
from border_exchange.domain.audit_reader import AUDIT_FINGERPRINT, read_audit
from border_exchange.domain.audit_values import AuditEntry, LogRecord
from border_exchange.domain.encoding import PREFIX_SIZE, decode_record
from border_exchange.domain.schemas import registry
from border_exchange.errors import DecodeError
from tests.clock import days

SETTINGS = settings(
    max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
T0 = days(-30)

texts = st.text(max_size=80)  # past 63 characters a length takes two varint bytes
optional_texts = st.none() | texts
times = st.integers(min_value=-(10**15), max_value=10**16).map(
    lambda micros: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
)
outcomes = st.fixed_dictionaries(
    {
        "participant": texts,
        "delivered": st.booleans(),
        "sections": st.lists(texts, max_size=8),
        "reason": optional_texts,
        "agreement_id": optional_texts,
        "basis": optional_texts,
    }
)
records = st.fixed_dictionaries(
    {
        "chain": texts,
        "seq": st.integers(min_value=-(2**63), max_value=2**63 - 1),
        "prev_hash": st.binary(max_size=70),
        "kind": st.sampled_from(["DECISION", "QUARANTINE", "CHECKPOINT", "ÉTAPE"]),
        "recorded_at": times,
        "source_offset": st.none() | st.integers(min_value=0, max_value=2**62),
        "message_id": optional_texts,
        "alert_id": optional_texts,
        "version": st.none() | st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "origin": optional_texts,
        "alert_type": optional_texts,
        "operation": optional_texts,
        "handling_code": optional_texts,
        "action_on_hit": optional_texts,
        "issued_at": st.none() | times,
        "expires_at": st.none() | times,
        "sections": st.lists(texts, max_size=8),
        "agreement_set": optional_texts,
        "agreement_label": optional_texts,
        "earlier_recipients": st.lists(texts, max_size=5),
        "outcomes": st.lists(outcomes, max_size=5),
        "quarantine_reason": optional_texts,
        "quarantine_detail": optional_texts,
        "checkpoint_key_id": optional_texts,
        "checkpoint_signature": st.none() | st.binary(max_size=80),
    }
)


def decision() -> dict[str, Any]:
    return {
        "chain": "bx.CAF.outbox/0",
        "seq": 7,
        "prev_hash": bytes(range(32)),
        "kind": "DECISION",
        "recorded_at": T0,
        "source_offset": 14,
        "message_id": "msg-7",
        "alert_id": "alert-7",
        "version": 1,
        "origin": "CAF",
        "alert_type": "WANTED_PERSON",
        "operation": "CREATE",
        "handling_code": "H1",
        "action_on_hit": "ARREST",
        "issued_at": T0 - timedelta(seconds=1),
        "expires_at": T0 + timedelta(days=400),
        "sections": ["contact", "identity", "offence"],
        "agreement_set": "ab" * 32,
        "agreement_label": "2026-03",
        "earlier_recipients": [],
        "outcomes": [
            {"participant": "COD", "delivered": True, "sections": ["identity"],
             "reason": None, "agreement_id": "CAF-COD", "basis": "AGREEMENT"},
            {"participant": "SSD", "delivered": False, "sections": [],
             "reason": "NO_AGREEMENT", "agreement_id": None, "basis": None},
        ],
    }  # fmt: skip


def test_the_reader_implements_the_current_audit_schema() -> None:
    # When the audit schema changes, update audit_reader (or every replay goes slow).
    assert registry().schema(AUDIT_SCHEMA).fingerprint == AUDIT_FINGERPRINT


@SETTINGS
@given(records)
def test_both_readers_give_the_same_record(record: dict[str, Any]) -> None:
    data = encode_audit(record)
    assert data[2:PREFIX_SIZE] == AUDIT_FINGERPRINT
    direct = read_audit(data, PREFIX_SIZE)
    assert direct == decode_record(data)[1] == record
    for name in ("recorded_at", "issued_at", "expires_at"):
        assert direct[name] is None or direct[name].tzinfo is UTC


def test_records_that_share_their_tail_do_not_share_lists_or_outcomes() -> None:
    first = read_audit(encode_audit(decision()), PREFIX_SIZE)
    data = encode_audit(decision() | {"seq": 8})
    second = read_audit(data, PREFIX_SIZE)
    first["sections"].append("photo")
    first["outcomes"][0]["sections"].append("photo")
    first["outcomes"][1]["reason"] = "changed"
    assert second == decode_record(data)[1]


def test_decode_audit_reads_a_checkpoint_and_a_quarantine_without_header() -> None:
    checkpoint = {"chain": "c/0", "seq": 1, "prev_hash": bytes(32), "kind": "CHECKPOINT",
                  "recorded_at": T0, "checkpoint_key_id": "hub-2026",
                  "checkpoint_signature": bytes(64)}  # fmt: skip
    quarantine = {"chain": "c/0", "seq": 2, "prev_hash": bytes(32), "kind": "QUARANTINE",
                  "recorded_at": T0, "source_offset": 3, "quarantine_reason": "MALFORMED",
                  "quarantine_detail": "pas une enveloppe ✗"}  # fmt: skip
    for record in (checkpoint, quarantine):
        data = encode_audit(record)
        entry = decode_audit(LogRecord("bx.hub.audit.CAF", 0, 0, T0, data))
        assert isinstance(entry, AuditEntry)
        assert entry.record == decode_record(data)[1]


def raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        read_audit(data, PREFIX_SIZE)


VALID = encode_audit(decision())


@SETTINGS
@given(st.integers(min_value=0, max_value=len(VALID) - 1))
def test_a_truncated_record_is_a_decode_error(cut: int) -> None:
    with pytest.raises(DecodeError):
        read_audit(VALID[:cut], PREFIX_SIZE)


@SETTINGS
@given(st.lists(st.integers(min_value=PREFIX_SIZE * 8), min_size=1, max_size=4))
def test_a_bit_flipped_record_decodes_as_fastavro_does_or_raises_decode_error(
    flips: list[int],
) -> None:
    data = bytearray(VALID)
    for flip in flips:
        position = flip % (len(data) * 8)
        data[max(position // 8, PREFIX_SIZE)] ^= 1 << (position % 8)
    decodes_as_fastavro_does(bytes(data))


def decodes_as_fastavro_does(data: bytes) -> None:
    """The direct reader gives fastavro's record (``decode_record``), or both refuse ``data``."""
    try:
        expected: dict[str, Any] | None = decode_record(data)[1]
    except DecodeError:
        expected = None
    try:
        got = read_audit(data, PREFIX_SIZE)
    except DecodeError:
        assert expected is None, "the direct reader refuses a record fastavro reads"
        return
    assert got == expected, "the direct reader reads what fastavro refuses, or reads it otherwise"


def test_the_flips_decode_some_records_and_refuse_others() -> None:
    """A flip inside a string keeps the record readable, one in a length usually does not."""
    readable, refused = 0, 0
    for position in range(PREFIX_SIZE * 8, len(VALID) * 8):
        data = bytearray(VALID)
        data[position // 8] ^= 1 << (position % 8)
        decodes_as_fastavro_does(bytes(data))
        try:
            read_audit(bytes(data), PREFIX_SIZE)
            readable += 1
        except DecodeError:
            refused += 1
    assert readable > 0
    assert refused > 0


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bodies_raise_only_decode_error(body: bytes) -> None:
    raises_only_decode_error(VALID[:PREFIX_SIZE] + body)


def test_trailing_bytes_are_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        read_audit(VALID + b"\x00", PREFIX_SIZE)
