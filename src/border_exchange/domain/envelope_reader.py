"""A direct Avro binary reader for the current envelope schema, the router's hot path.

fastavro's generic reader spends most of its time dispatching on schema nodes; this
reader walks the one layout of ``bx.AlertEnvelope`` (the version whose fingerprint is
``FAST_FINGERPRINT``) and builds the values directly. Any other writer version goes
through fastavro's schema resolution. Tests check both paths agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
    size = data[pos]
    if size < 0x80:
        size = (size >> 1) ^ -(size & 1)
        pos += 1
    else:
        size, pos = _long(data, pos)
    end = pos + size
    if size < 0 or end > len(data):
        raise DecodeError("malformed envelope: length beyond the end of the data")
    return data[pos:end], end


def _str(data: bytes, pos: int) -> tuple[str, int]:
    """A length-prefixed UTF-8 string at ``pos`` and the position after it."""
    size = data[pos]
    if size < 0x80:
        size = (size >> 1) ^ -(size & 1)
        pos += 1
    else:
        size, pos = _long(data, pos)
    end = pos + size
    if size < 0 or end > len(data):
        raise DecodeError("malformed envelope: length beyond the end of the data")
    return data[pos:end].decode("utf-8"), end


def _symbol(data: bytes, pos: int, symbols: tuple[_T, ...]) -> tuple[_T, int]:
    """An enum symbol (or union branch) of ``symbols`` at ``pos``."""
    index = data[pos]
    if index < 0x80:
        index = (index >> 1) ^ -(index & 1)
        pos += 1
    else:
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


def _setters(cls: type, names: Iterable[str]) -> tuple[Callable[[object, object], None], ...]:
    return tuple(getattr(cls, name).__set__ for name in names)


# Building sections through their slot descriptors skips the frozen-dataclass __init__
# (object.__setattr__ per field); the equality test against the generic reader keeps the
# two constructions in step. (For the 18-field header, the plain constructor is as fast.)
_NEW: Final = object.__new__
_SET_NAME, _SET_DIGEST, _SET_SALT, _SET_CONTENT = _setters(
    Section, ("name", "digest", "salt", "content")
)


_NULL: Final = 0x00  # zigzag varint of union branch 0
_SECOND: Final = 0x02  # zigzag varint of union branch 1


def read_envelope(data: bytes, pos: int) -> Envelope:
    """The envelope whose Avro body starts at ``pos`` of ``data`` (current schema only)."""
    return read_envelope_split(data, pos)[0]


def read_envelope_split(data: bytes, pos: int) -> tuple[Envelope, int]:
    """``read_envelope`` and the position in ``data`` where the section list starts."""
    try:
        return _read(data, pos)
    except DecodeError:
        raise
    except (IndexError, UnicodeDecodeError, OverflowError, ValueError) as exc:
        raise DecodeError(f"malformed envelope: {type(exc).__name__}: {exc}") from exc


_CONTINUED: Final = 0x8080808080808080
_EIGHT_BYTES: Final = 0x0080808080808080  # seven continuation bits, then the last byte


def _time(data: bytes, pos: int) -> tuple[datetime, int]:
    """A timestamp-micros at ``pos``; the usual 8-byte varint is decoded in one step."""
    chunk = data[pos : pos + 8]
    raw = int.from_bytes(chunk, "little")
    if raw & _CONTINUED == _EIGHT_BYTES and len(chunk) == 8:
        value = (
            (raw & 0x7F)
            | (raw >> 1 & 0x3F80)
            | (raw >> 2 & 0x1FC000)
            | (raw >> 3 & 0xFE00000)
            | (raw >> 4 & 0x7F0000000)
            | (raw >> 5 & 0x3F800000000)
            | (raw >> 6 & 0x1FC0000000000)
            | (raw >> 7 & 0xFE000000000000)
        )
        micros = (value >> 1) ^ -(value & 1)
        pos += 8
    else:
        micros, pos = _long(data, pos)
    found = _TIMES.get(micros)
    if found is None:
        if len(_TIMES) >= _TIMES_KEPT:
            _TIMES.clear()
        found = _TIMES[micros] = _EPOCH + timedelta(microseconds=micros)
    return found, pos


_TIMES: Final[dict[int, datetime]] = {}
"""Recently read instants (expiry dates repeat): datetimes are immutable, so shared."""
_TIMES_KEPT: Final = 4096


def _text(data: bytes, pos: int) -> tuple[str, int]:
    """A string at ``pos``, the short case inline (a cut-off value fails at the next read)."""
    size = data[pos]
    if size < 0x80 and not size & 1:
        end = pos + 1 + (size >> 1)
        return data[pos + 1 : end].decode("utf-8"), end
    return _str(data, pos)


def _read(data: bytes, pos: int) -> tuple[Envelope, int]:
    # The usual one-byte lengths, enum indexes and union branches are read inline; any
    # other encoding goes through the general helpers above. Every inline read is
    # followed by another read, so a value cut short by the end of the data surfaces as
    # an IndexError (a DecodeError), as does an enum index beyond the symbols.
    text = _text
    byte = data[pos]
    if byte < 0x80 and not byte & 1:
        end = pos + 1 + (byte >> 1)
        origin = data[pos + 1 : end].decode("utf-8")
        pos = end
    else:
        origin, pos = _str(data, pos)
    byte = data[pos]
    if byte < 0x80 and not byte & 1:
        alert_type = _ALERT_TYPES[byte >> 1]
        pos += 1
    else:
        alert_type, pos = _symbol(data, pos, _ALERT_TYPES)
    alert_id, pos = text(data, pos)
    byte = data[pos]
    if byte < 0x80:
        version = (byte >> 1) ^ -(byte & 1)
        pos += 1
    else:
        version, pos = _long(data, pos)
        if not -(2**31) <= version < 2**31:
            raise DecodeError("malformed envelope: version out of int range")
    message_id, pos = text(data, pos)
    byte = data[pos]
    if byte < 0x80 and not byte & 1:
        operation = _OPERATIONS[byte >> 1]
        pos += 1
    else:
        operation, pos = _symbol(data, pos, _OPERATIONS)
    issued, pos = _time(data, pos)
    expires, pos = _time(data, pos)
    # Five one-byte enums in a row (the usual case) in one slice.
    codes = data[pos : pos + 5]
    if len(codes) == 5 and not (codes[0] | codes[1] | codes[2] | codes[3] | codes[4]) & 0x81:
        handling_code = _HANDLING[codes[0] >> 1]
        source_reliability = _SOURCE[codes[1] >> 1]
        information_reliability = _INFORMATION[codes[2] >> 1]
        priority = _PRIORITY[codes[3] >> 1]
        action_on_hit = _ACTION[codes[4] >> 1]
        pos += 5
    else:
        handling_code, pos = _symbol(data, pos, _HANDLING)
        source_reliability, pos = _symbol(data, pos, _SOURCE)
        information_reliability, pos = _symbol(data, pos, _INFORMATION)
        priority, pos = _symbol(data, pos, _PRIORITY)
        action_on_hit, pos = _symbol(data, pos, _ACTION)
    markers: list[WarningMarker] = []
    if data[pos] == 0:
        pos += 1
    else:
        count, pos = _block(data, pos)
        while count:
            for _ in range(count):
                marker, pos = _symbol(data, pos, _MARKERS)
                markers.append(marker)
            count, pos = _block(data, pos)
    cancel_reason: str | None = None
    branch = data[pos]
    pos += 1
    if branch == _SECOND:
        cancel_reason, pos = text(data, pos)
    elif branch != _NULL:
        raise DecodeError(f"malformed envelope: cancel_reason union branch byte {branch}")
    language: str | None = None
    branch = data[pos]
    pos += 1
    if branch == _SECOND:
        language, pos = text(data, pos)
    elif branch != _NULL:
        raise DecodeError(f"malformed envelope: language union branch byte {branch}")
    key_id, pos = text(data, pos)
    schema_fingerprint = data[pos : pos + _FINGERPRINT_SIZE]
    pos += _FINGERPRINT_SIZE
    header = Header(
        origin,
        alert_type,
        alert_id,
        version,
        message_id,
        operation,
        issued,
        expires,
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
    append = sections.append
    sections_at = pos
    count, pos = _block(data, pos)
    while count:
        for _ in range(count):
            size = data[pos]
            if size < 0x80 and not size & 1:  # the usual short name: inline
                end = pos + 1 + (size >> 1)
                name = data[pos + 1 : end].decode("utf-8")
                pos = end
            else:
                name, pos = _str(data, pos)
            digest = data[pos : pos + DIGEST_SIZE]
            pos += DIGEST_SIZE
            branch = data[pos]
            pos += 1
            if branch == _NULL:
                salt = None
            elif branch == _SECOND:
                salt = data[pos : pos + SALT_SIZE]
                pos += SALT_SIZE
            else:
                raise DecodeError(f"malformed envelope: salt union branch byte {branch}")
            branch = data[pos]
            pos += 1
            if branch == _NULL:
                content = None
            elif branch == _SECOND:
                size = data[pos]
                if size < 0x80 and not size & 1:
                    size >>= 1
                    pos += 1
                elif data[pos + 1] < 0x80 and not size & 1:  # two-byte length
                    size = ((size & 0x7F) | data[pos + 1] << 7) >> 1
                    pos += 2
                else:
                    size, pos = _long(data, pos)
                end = pos + size
                if size < 0 or end > len(data):
                    raise DecodeError("malformed envelope: length beyond the end of the data")
                content = data[pos:end]
                pos = end
            else:
                raise DecodeError(f"malformed envelope: content union branch byte {branch}")
            section = _NEW(Section)
            _SET_NAME(section, name)
            _SET_DIGEST(section, digest)
            _SET_SALT(section, salt)
            _SET_CONTENT(section, content)
            append(section)
        count, pos = _block(data, pos)
    signature, pos = _raw(data, pos)
    if pos != len(data):
        raise DecodeError(f"malformed envelope: {len(data) - pos} trailing bytes")
    return Envelope(header, tuple(sections), signature), sections_at
