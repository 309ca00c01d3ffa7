"""A direct Avro binary reader for the current audit record schema, the auditor's hot path.

fastavro's generic reader dispatches on schema nodes for every value; this reader walks
the one layout of ``bx.AuditRecord`` (the version whose fingerprint is
``AUDIT_FINGERPRINT``) and builds the same dict fastavro builds. Records written with
any other version go through fastavro's schema resolution (``decode_record``); a test
checks both paths give identical records. Malformed bytes raise only ``DecodeError``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from border_exchange.domain.avro_binary import read_block as _block
from border_exchange.domain.avro_binary import read_bytes as _bytes
from border_exchange.domain.avro_binary import read_long as _long
from border_exchange.domain.avro_binary import read_string as _string
from border_exchange.domain.fastpath import EPOCH as _EPOCH
from border_exchange.domain.fastpath import read_audit as native_read
from border_exchange.errors import DecodeError

AUDIT_FINGERPRINT: Final = bytes.fromhex("9eba8176729c68b8")
"""Fingerprint of the audit record schema this reader implements (checked by a test)."""


def _branch(data: bytes, pos: int, field: str) -> bool:
    """Whether the ``["null", T]`` union at ``pos`` holds a T (its one-byte index)."""
    branch = data[pos]
    if branch == 0:
        return False
    if branch == 2:
        return True
    raise DecodeError(f"malformed audit record: {field} union branch byte {branch}")


def _optional_string(data: bytes, pos: int, field: str) -> tuple[str | None, int]:
    if _branch(data, pos, field):
        return _string(data, pos + 1)
    return None, pos + 1


def _optional_long(data: bytes, pos: int, field: str) -> tuple[int | None, int]:
    if _branch(data, pos, field):
        return _long(data, pos + 1)
    return None, pos + 1


def _time(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _optional_time(data: bytes, pos: int, field: str) -> tuple[datetime | None, int]:
    if _branch(data, pos, field):
        micros, pos = _long(data, pos + 1)
        return _time(micros), pos
    return None, pos + 1


def _strings(data: bytes, pos: int) -> tuple[list[str], int]:
    """An array of strings at ``pos``."""
    items: list[str] = []
    if data[pos] == 0:
        return items, pos + 1
    count, pos = _block(data, pos)
    while count:
        for _ in range(count):
            item, pos = _string(data, pos)
            items.append(item)
        count, pos = _block(data, pos)
    return items, pos


def _outcome(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    participant, pos = _string(data, pos)
    delivered = data[pos] != 0  # as fastavro reads a boolean
    sections, pos = _strings(data, pos + 1)
    reason, pos = _optional_string(data, pos, "reason")
    agreement_id, pos = _optional_string(data, pos, "agreement_id")
    basis, pos = _optional_string(data, pos, "basis")
    return {
        "participant": participant,
        "delivered": delivered,
        "sections": sections,
        "reason": reason,
        "agreement_id": agreement_id,
        "basis": basis,
    }, pos


def read_audit(data: bytes, pos: int) -> dict[str, Any]:
    """The audit record whose Avro body starts at ``pos`` of ``data`` (current schema only).

    The compiled reader takes the usual well-formed record; anything else, and every
    error, is read here by ``read_audit_python``.
    """
    record = native_read(data, pos)
    if record is not None:
        return record
    return read_audit_python(data, pos)


def read_audit_python(data: bytes, pos: int) -> dict[str, Any]:
    """``read_audit`` in Python only: the reference of the compiled reader."""
    try:
        return _read(data, pos)
    except DecodeError:
        raise
    except (IndexError, UnicodeDecodeError, OverflowError, ValueError) as exc:
        raise DecodeError(f"malformed bx.AuditRecord record: {type(exc).__name__}: {exc}") from exc


def _read(data: bytes, pos: int) -> dict[str, Any]:
    string = _string
    optional = _optional_string
    chain, pos = string(data, pos)
    seq, pos = _long(data, pos)
    prev_hash, pos = _bytes(data, pos)
    kind, pos = string(data, pos)
    recorded, pos = _long(data, pos)
    source_offset, pos = _optional_long(data, pos, "source_offset")
    message_id, pos = optional(data, pos, "message_id")
    alert_id, pos = optional(data, pos, "alert_id")
    version, pos = _optional_long(data, pos, "version")
    origin, pos = optional(data, pos, "origin")
    alert_type, pos = optional(data, pos, "alert_type")
    operation, pos = optional(data, pos, "operation")
    handling_code, pos = optional(data, pos, "handling_code")
    action_on_hit, pos = optional(data, pos, "action_on_hit")
    issued_at, pos = _optional_time(data, pos, "issued_at")
    expires_at, pos = _optional_time(data, pos, "expires_at")
    # The rest (sections, agreement set, history, outcomes, quarantine and checkpoint
    # fields) repeats from record to record: it is read once per distinct byte string.
    # Its value depends on those bytes alone; each record gets its own lists and dicts.
    tail = data[pos:]
    found = _TAILS.get(tail)
    if found is None:
        if len(_TAILS) >= _TAILS_KEPT:
            _TAILS.clear()
        found = _TAILS[tail] = _read_tail(data, pos)
    sections, agreement_set, agreement_label, earlier, outcomes, rest = found
    return {
        "chain": chain,
        "seq": seq,
        "prev_hash": prev_hash,
        "kind": kind,
        "recorded_at": _time(recorded),
        "source_offset": source_offset,
        "message_id": message_id,
        "alert_id": alert_id,
        "version": version,
        "origin": origin,
        "alert_type": alert_type,
        "operation": operation,
        "handling_code": handling_code,
        "action_on_hit": action_on_hit,
        "issued_at": issued_at,
        "expires_at": expires_at,
        "sections": list(sections),
        "agreement_set": agreement_set,
        "agreement_label": agreement_label,
        "earlier_recipients": list(earlier),
        "outcomes": [{**outcome, "sections": list(outcome["sections"])} for outcome in outcomes],
        **rest,
    }


_Tail = tuple[list[str], str | None, str | None, list[str], list[dict[str, Any]], dict[str, Any]]
_TAILS: Final[dict[bytes, _Tail]] = {}
_TAILS_KEPT: Final = 1024


def _read_tail(data: bytes, pos: int) -> _Tail:
    """The fields from ``sections`` to the end of the record at ``pos``."""
    optional = _optional_string
    sections, pos = _strings(data, pos)
    agreement_set, pos = optional(data, pos, "agreement_set")
    agreement_label, pos = optional(data, pos, "agreement_label")
    earlier_recipients, pos = _strings(data, pos)
    outcomes: list[dict[str, Any]] = []
    count, pos = _block(data, pos)
    while count:
        for _ in range(count):
            outcome, pos = _outcome(data, pos)
            outcomes.append(outcome)
        count, pos = _block(data, pos)
    quarantine_reason, pos = optional(data, pos, "quarantine_reason")
    quarantine_detail, pos = optional(data, pos, "quarantine_detail")
    checkpoint_key_id, pos = optional(data, pos, "checkpoint_key_id")
    checkpoint_signature: bytes | None = None
    if _branch(data, pos, "checkpoint_signature"):
        checkpoint_signature, pos = _bytes(data, pos + 1)
    else:
        pos += 1
    if pos != len(data):
        raise DecodeError(f"malformed bx.AuditRecord record: {len(data) - pos} trailing bytes")
    rest = {
        "quarantine_reason": quarantine_reason,
        "quarantine_detail": quarantine_detail,
        "checkpoint_key_id": checkpoint_key_id,
        "checkpoint_signature": checkpoint_signature,
    }
    return sections, agreement_set, agreement_label, earlier_recipients, outcomes, rest
