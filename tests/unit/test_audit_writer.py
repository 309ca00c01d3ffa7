"""The direct audit-record writer produces exactly the generic Avro writer's bytes."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from border_exchange.domain.audit import AUDIT_SCHEMA, DIRECT_WRITER_FINGERPRINT, encode_audit
from border_exchange.domain.encoding import decode_record, encode_record
from border_exchange.domain.schemas import registry
from tests.unit.test_audit_reader import SETTINGS, records

REQUIRED = frozenset({"chain", "seq", "prev_hash", "kind", "recorded_at"})


@st.composite
def partial_records(draw: st.DrawFn) -> dict[str, Any]:
    """Audit records, some of whose optional fields are left out (their defaults apply)."""
    record: dict[str, Any] = draw(records)
    optional = sorted(set(record) - REQUIRED)
    dropped = draw(st.sets(st.sampled_from(optional)))
    return {k: v for k, v in record.items() if k not in dropped}


def test_the_direct_writer_is_for_the_committed_schema() -> None:
    # When the schema changes, this fails: update audit_writer.py and its fingerprint.
    assert registry().schema(AUDIT_SCHEMA).fingerprint == DIRECT_WRITER_FINGERPRINT


@SETTINGS
@given(partial_records())
def test_direct_and_generic_writers_agree_byte_for_byte(record: dict[str, Any]) -> None:
    direct = encode_audit(record)
    assert direct == encode_record(AUDIT_SCHEMA, record)
    name, decoded = decode_record(direct)
    assert name == AUDIT_SCHEMA
    assert decoded["seq"] == record["seq"]
    assert decoded["chain"] == record["chain"]
