"""The quarantine record of a refused outbox record, bounded whatever was refused.

A refused record may be as large as the broker let a partner write (a compressed
batch of megabytes once decompressed), so the record keeps a prefix of its key and
value (``limits.QUARANTINE_PREFIX_BYTES``), their full lengths and the SHA-256 of the
whole value: an auditor matches it to the outbox record by source offset and hash,
and the quarantine record always fits in its topic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from border_exchange.domain import limits
from border_exchange.domain.audit import QUARANTINE_SCHEMA
from border_exchange.domain.encoding import encode_record
from border_exchange.domain.envelope import Header


@dataclass(frozen=True, slots=True)
class RefusedRecord:
    """Where a refused record was read, what it held and why it was refused."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    detail: str
    header: Header | None = None


def _prefix(data: bytes | None) -> bytes | None:
    return None if data is None else data[: limits.QUARANTINE_PREFIX_BYTES]


def _text(text: str | None) -> str | None:
    return None if text is None else limits.bounded_text(text)


def quarantine_fields(refused: RefusedRecord, quarantined_at: datetime) -> dict[str, Any]:
    """The ``bx.QuarantineRecord`` of ``refused``, every part bounded."""
    header = refused.header
    key, value = refused.key, refused.value
    return {
        "source_topic": refused.topic,
        "source_partition": refused.partition,
        "source_offset": refused.offset,
        "reason": refused.reason,
        "detail": limits.bounded_text(refused.detail),
        "quarantined_at": quarantined_at,
        "claimed_origin": _text(header.origin) if header else None,
        "message_id": _text(header.message_id) if header else None,
        "alert_id": _text(header.alert_id) if header else None,
        "original_key": _prefix(key),
        "original_value": _prefix(value),
        "original_key_length": None if key is None else len(key),
        "original_value_length": None if value is None else len(value),
        "original_value_sha256": None if value is None else hashlib.sha256(value).digest(),
    }


def encode_quarantine(refused: RefusedRecord, quarantined_at: datetime) -> bytes:
    """The encoded quarantine record of ``refused``: at most ``MAX_QUARANTINE_RECORD_BYTES``."""
    return encode_record(QUARANTINE_SCHEMA, quarantine_fields(refused, quarantined_at))
