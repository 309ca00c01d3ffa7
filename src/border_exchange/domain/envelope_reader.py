"""A direct Avro binary reader for the current envelope schema, the router's hot path.

fastavro's generic reader spends most of its time dispatching on schema nodes; this
reader walks the one layout of ``bx.AlertEnvelope`` (the version whose fingerprint is
``FAST_FINGERPRINT``) and builds the values directly. Any other writer version goes
through fastavro's schema resolution. Tests check both paths agree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from border_exchange.domain.catalog import (
    ActionOnHit,
    AlertType,
    HandlingCode,
    InformationReliability,
    Operation,
    Priority,
    SourceReliability,
    WarningMarker,
)
from border_exchange.domain.envelope import DIGEST_SIZE, SALT_SIZE, Envelope, Header, Section
from border_exchange.errors import DecodeError

FAST_FINGERPRINT: Final = bytes.fromhex("01da03a26df693d6")
"""Fingerprint of the envelope schema this reader implements (checked by a test)."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ALERT_TYPES: Final = tuple(AlertType)
_OPERATIONS: Final = tuple(Operation)
_HANDLING: Final = tuple(HandlingCode)
_SOURCE: Final = tuple(SourceReliability)
_INFORMATION: Final = tuple(InformationReliability)
_PRIORITY: Final = tuple(Priority)
_ACTION: Final = tuple(ActionOnHit)
_MARKERS: Final = tuple(WarningMarker)
_FINGERPRINT_SIZE: Final = 8
_T = TypeVar("_T")


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint at ``pos``: its value and the position after it."""
    byte = data[pos]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos + 1
    result = byte & 0x7F
    shift = 7
    pos += 1
    while True:
        if shift > 63:
            raise DecodeError("malformed envelope: varint longer than 10 bytes")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def _raw(data: bytes, pos: int) -> tuple[bytes, int]:
    """Length-prefixed bytes at ``pos`` and the position after them."""
    size, pos = _long(data, pos)
    end = pos + size
    if size < 0 or end > len(data):
        raise DecodeError("malformed envelope: length beyond the end of the data")
    return data[pos:end], end


def _str(data: bytes, pos: int) -> tuple[str, int]:
    """A length-prefixed UTF-8 string at ``pos`` and the position after it."""
    value, pos = _raw(data, pos)
    return value.decode("utf-8"), pos


def _symbol(data: bytes, pos: int, symbols: tuple[_T, ...]) -> tuple[_T, int]:
    """An enum symbol (or union branch) of ``symbols`` at ``pos``."""
    index, pos = _long(data, pos)
    if not 0 <= index < len(symbols):
        raise DecodeError(f"malformed envelope: enum or union index {index} out of range")
    return symbols[index], pos


def _fixed(data: bytes, pos: int, size: int) -> tuple[bytes, int]:
    end = pos + size
    if end > len(data):
        raise DecodeError("malformed envelope: fixed value beyond the end of the data")
    return data[pos:end], end


def _block(data: bytes, pos: int) -> tuple[int, int]:
    """The item count of the next array block (skipping its byte size when given)."""
    count, pos = _long(data, pos)
    if count < 0:
        _, pos = _long(data, pos)
        count = -count
    return count, pos


_BRANCH: Final = (False, True)


def read_envelope(data: bytes, pos: int) -> Envelope:
    """The envelope whose Avro body starts at ``pos`` of ``data`` (current schema only)."""
    try:
        return _read(data, pos)
    except DecodeError:
        raise
    except (IndexError, UnicodeDecodeError, OverflowError, ValueError) as exc:
        raise DecodeError(f"malformed envelope: {type(exc).__name__}: {exc}") from exc


def _read(data: bytes, pos: int) -> Envelope:
    origin, pos = _str(data, pos)
    alert_type, pos = _symbol(data, pos, _ALERT_TYPES)
    alert_id, pos = _str(data, pos)
    version, pos = _long(data, pos)
    if not -(2**31) <= version < 2**31:
        raise DecodeError("malformed envelope: version out of int range")
    message_id, pos = _str(data, pos)
    operation, pos = _symbol(data, pos, _OPERATIONS)
    issued, pos = _long(data, pos)
    expires, pos = _long(data, pos)
    handling_code, pos = _symbol(data, pos, _HANDLING)
    source_reliability, pos = _symbol(data, pos, _SOURCE)
    information_reliability, pos = _symbol(data, pos, _INFORMATION)
    priority, pos = _symbol(data, pos, _PRIORITY)
    action_on_hit, pos = _symbol(data, pos, _ACTION)
    markers: list[WarningMarker] = []
    count, pos = _block(data, pos)
    while count:
        for _ in range(count):
            marker, pos = _symbol(data, pos, _MARKERS)
            markers.append(marker)
        count, pos = _block(data, pos)
    cancel_reason: str | None = None
    present, pos = _symbol(data, pos, _BRANCH)
    if present:
        cancel_reason, pos = _str(data, pos)
    language: str | None = None
    present, pos = _symbol(data, pos, _BRANCH)
    if present:
        language, pos = _str(data, pos)
    key_id, pos = _str(data, pos)
    schema_fingerprint, pos = _fixed(data, pos, _FINGERPRINT_SIZE)
    header = Header(
        origin,
        alert_type,
        alert_id,
        version,
        message_id,
        operation,
        _EPOCH + timedelta(microseconds=issued),
        _EPOCH + timedelta(microseconds=expires),
        handling_code,
        source_reliability,
        information_reliability,
        priority,
        action_on_hit,
        tuple(markers),
        cancel_reason,
        key_id,
        schema_fingerprint,
        language,
    )
    sections: list[Section] = []
    count, pos = _block(data, pos)
    while count:
        for _ in range(count):
            name, pos = _str(data, pos)
            digest, pos = _fixed(data, pos, DIGEST_SIZE)
            salt: bytes | None = None
            present, pos = _symbol(data, pos, _BRANCH)
            if present:
                salt, pos = _fixed(data, pos, SALT_SIZE)
            content: bytes | None = None
            present, pos = _symbol(data, pos, _BRANCH)
            if present:
                content, pos = _raw(data, pos)
            sections.append(Section(name, digest, salt, content))
        count, pos = _block(data, pos)
    signature, pos = _raw(data, pos)
    if pos != len(data):
        raise DecodeError(f"malformed envelope: {len(data) - pos} trailing bytes")
    return Envelope(header, tuple(sections), signature)
