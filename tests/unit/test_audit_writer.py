"""The direct audit-record writer produces exactly the generic Avro writer's bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from border_exchange.domain.audit import AUDIT_SCHEMA, DIRECT_WRITER_FINGERPRINT, encode_audit
from border_exchange.domain.encoding import decode_record, encode_record
from border_exchange.domain.schemas import registry

texts = st.text(max_size=30)
optional_text = st.none() | texts
times = st.datetimes(
    min_value=datetime(1960, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
outcomes = st.fixed_dictionaries(
    {
        "participant": texts,
        "delivered": st.booleans(),
        "sections": st.lists(texts, max_size=4),
        "reason": optional_text,
        "agreement_id": optional_text,
        "basis": optional_text,
    }
)
records = st.fixed_dictionaries(
    {
        "chain": texts,
        "seq": st.integers(0, 2**62),
        "prev_hash": st.binary(min_size=32, max_size=32),
        "kind": st.sampled_from(["DECISION", "QUARANTINE", "CHECKPOINT"]),
        "recorded_at": times,
    },
    optional={
        "source_offset": st.none() | st.integers(0, 2**62),
        "message_id": optional_text,
        "alert_id": optional_text,
        "version": st.none() | st.integers(-(2**31), 2**31 - 1),
        "origin": optional_text,
        "alert_type": optional_text,
        "operation": optional_text,
        "handling_code": optional_text,
        "action_on_hit": optional_text,
        "issued_at": st.none() | times,
        "expires_at": st.none() | times,
        "sections": st.lists(texts, max_size=5),
        "agreement_set": optional_text,
        "agreement_label": optional_text,
        "earlier_recipients": st.lists(texts, max_size=3),
        "outcomes": st.lists(outcomes, max_size=4),
        "quarantine_reason": optional_text,
        "quarantine_detail": optional_text,
        "checkpoint_key_id": optional_text,
        "checkpoint_signature": st.none() | st.binary(max_size=64),
    },
)


def test_the_direct_writer_is_for_the_committed_schema() -> None:
    # When the schema changes, this fails: update audit_writer.py and its fingerprint.
    assert registry().schema(AUDIT_SCHEMA).fingerprint == DIRECT_WRITER_FINGERPRINT


@settings(max_examples=400, deadline=None)
@given(records)
def test_direct_and_generic_writers_agree_byte_for_byte(record: dict[str, Any]) -> None:
    direct = encode_audit(record)
    assert direct == encode_record(AUDIT_SCHEMA, record)
    name, decoded = decode_record(direct)
    assert name == AUDIT_SCHEMA
    assert decoded["seq"] == record["seq"]
    assert decoded["recorded_at"] - record["recorded_at"] < timedelta(microseconds=1)
