"""The notice a service receives when the router quarantined one of its outbox records.

It names the record (topic, partition, offset, the ids it claimed), the reason and the
time, and nothing else: no bytes of the record and nothing of any other service, so the
service's desk can fix its gateway or post without the hub disclosing anyone's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from border_exchange.domain import limits
from border_exchange.domain.encoding import decode_record, encode_record
from border_exchange.errors import DecodeError

NOTICE_SCHEMA: Final = "bx.QuarantineNotice"


@dataclass(frozen=True, slots=True)
class QuarantineNotice:
    """One quarantined record of ``participant``'s outbox, as told to ``participant``."""

    participant: str
    source_topic: str
    source_partition: int
    source_offset: int
    reason: str
    detail: str
    quarantined_at: datetime
    message_id: str | None = None
    alert_id: str | None = None
    message_kind: str | None = None


def _bounded(text: str | None) -> str | None:
    return None if text is None else limits.bounded_text(text)


def encode_notice(notice: QuarantineNotice) -> bytes:
    """The single-object bytes of ``notice``, every text bounded."""
    return encode_record(
        NOTICE_SCHEMA,
        {
            "participant": notice.participant,
            "source_topic": notice.source_topic,
            "source_partition": notice.source_partition,
            "source_offset": notice.source_offset,
            "reason": notice.reason,
            "detail": limits.bounded_text(notice.detail),
            "quarantined_at": notice.quarantined_at,
            "message_id": _bounded(notice.message_id),
            "alert_id": _bounded(notice.alert_id),
            "message_kind": notice.message_kind,
        },
    )


def decode_notice(value: bytes) -> QuarantineNotice:
    """The notice in ``value``; raises ``DecodeError`` when it is not one."""
    name, record = decode_record(value)
    if name != NOTICE_SCHEMA:
        raise DecodeError(f"expected a {NOTICE_SCHEMA} record, found a {name}")
    fields: Mapping[str, Any] = record
    return QuarantineNotice(**{name: fields[name] for name in QuarantineNotice.__slots__})
