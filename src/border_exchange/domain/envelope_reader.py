"""A direct Avro binary reader for the current envelope schema, the router's hot path.

fastavro's generic reader spends most of its time dispatching on schema nodes; this
reader walks the one layout of ``bx.AlertEnvelope`` (the version whose fingerprint is
``FAST_FINGERPRINT``) and builds the values directly. Any other writer version goes
through fastavro's schema resolution. The usual message is read by the compiled
reader of ``fastpath``; this Python reader is its reference and reads everything else.
Tests check all three agree.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Final, TypeVar

from border_exchange.domain.avro_binary import read_block as _block
from border_exchange.domain.avro_binary import read_bytes as _raw
from border_exchange.domain.avro_binary import read_long as _long
from border_exchange.domain.avro_binary import read_string as _str
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
from border_exchange.domain.fastpath import EPOCH as _EPOCH
from border_exchange.domain.fastpath import HEADER_FIELDS
from border_exchange.domain.fastpath import read_envelope as native_read
from border_exchange.errors import DecodeError

FAST_FINGERPRINT: Final = bytes.fromhex("01da03a26df693d6")
"""Fingerprint of the envelope schema this reader implements (checked by a test)."""

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


_BRANCH: Final = (False, True)


def _setters(cls: type, names: Iterable[str]) -> tuple[Callable[[object, object], None], ...]:
    return tuple(getattr(cls, name).__set__ for name in names)


# Building the frozen values through their slot descriptors, one call per field, skips
# the frozen-dataclass __init__ (object.__setattr__ per field) and halves its cost; the
# equality test against the generic reader keeps the two constructions in step.
_NEW: Final = object.__new__
_SET_NAME, _SET_DIGEST, _SET_SALT, _SET_CONTENT = _setters(
    Section, ("name", "digest", "salt", "content")
)
(
    _SET_ORIGIN,
    _SET_ALERT_TYPE,
    _SET_ALERT_ID,
    _SET_VERSION,
    _SET_MESSAGE_ID,
    _SET_OPERATION,
    _SET_ISSUED_AT,
    _SET_EXPIRES_AT,
    _SET_HANDLING_CODE,
    _SET_SOURCE_RELIABILITY,
    _SET_INFORMATION_RELIABILITY,
    _SET_PRIORITY,
    _SET_ACTION_ON_HIT,
    _SET_WARNING_MARKERS,
    _SET_CANCEL_REASON,
    _SET_KEY_ID,
    _SET_SCHEMA_FINGERPRINT,
    _SET_LANGUAGE,
) = _setters(Header, HEADER_FIELDS)


_NULL: Final = 0x00  # zigzag varint of union branch 0
_SECOND: Final = 0x02  # zigzag varint of union branch 1


def read_envelope(data: bytes, pos: int) -> Envelope:
    """The envelope whose Avro body starts at ``pos`` of ``data`` (current schema only)."""
    return read_envelope_split(data, pos)[0]


def read_envelope_split(data: bytes, pos: int) -> tuple[Envelope, int]:
    """``read_envelope`` and the position in ``data`` where the section list starts.

    The compiled reader takes the usual well-formed message; anything else, and every
    error, is read here by ``read_envelope_python``.
    """
    read = native_read(data, pos)
    if read is not None:
        return read
    return read_envelope_python(data, pos)


def read_envelope_python(data: bytes, pos: int) -> tuple[Envelope, int]:
    """``read_envelope_split`` in Python only: the reference of the compiled reader."""
    try:
        return _read(data, pos)
    except DecodeError:
        raise
    except (IndexError, UnicodeDecodeError, OverflowError, ValueError) as exc:
        raise DecodeError(f"malformed envelope: {type(exc).__name__}: {exc}") from exc


_EIGHT: Final = struct.Struct("8B").unpack_from


def _time(data: bytes, pos: int) -> tuple[datetime, int]:
    """A timestamp-micros at ``pos``; the usual 8-byte varint is decoded in one step."""
    if len(data) - pos >= 8:
        b0, b1, b2, b3, b4, b5, b6, b7 = _EIGHT(data, pos)
        if b0 & b1 & b2 & b3 & b4 & b5 & b6 & 0x80 and b7 < 0x80:
            value = (
                (b0 & 0x7F)
                | (b1 & 0x7F) << 7
                | (b2 & 0x7F) << 14
                | (b3 & 0x7F) << 21
                | ((b4 & 0x7F) | (b5 & 0x7F) << 7 | (b6 & 0x7F) << 14 | b7 << 21) << 28
            )
            return _EPOCH + timedelta(0, 0, (value >> 1) ^ -(value & 1)), pos + 8
    micros, pos = _long(data, pos)
    return _EPOCH + timedelta(0, 0, micros), pos


def _text(data: bytes, pos: int) -> tuple[str, int]:
    """A string at ``pos``, the short case inline (a cut-off value fails at the next read)."""
    size = data[pos]
    if size < 0x80 and not size & 1:
        end = pos + 1 + (size >> 1)
        return data[pos + 1 : end].decode("utf-8"), end
    return _str(data, pos)


_PRESENT_LAYOUT: Final = struct.Struct(f"{DIGEST_SIZE}sB{SALT_SIZE}sBBB")
_PRESENT: Final = _PRESENT_LAYOUT.unpack_from
_PRESENT_SIZE: Final = _PRESENT_LAYOUT.size
_NEAR_END: Final = (b"", _NULL, b"", _NULL, 0, 0)
_REDACTED: Final = b"\x00\x00"  # null salt, null content
_SIGNATURE_SIZE: Final = 64
_SIGNATURE_LENGTH: Final = b"\x80\x01"  # zigzag varint of 64


def _content_bounds(data: bytes, pos: int) -> tuple[int, int]:
    """Where the length-prefixed bytes at ``pos`` start and end."""
    size, start = _long(data, pos)
    if size < 0:
        raise DecodeError("malformed envelope: negative length")
    return start, start + size


def _section_rest(data: bytes, pos: int) -> tuple[bytes | None, bytes | None, int]:
    """A section's salt and content from ``pos`` (after its digest), any encoding."""
    branch = data[pos]
    pos += 1
    salt: bytes | None
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
        return salt, None, pos
    if branch == _SECOND:
        content, pos = _raw(data, pos)
        return salt, content, pos
    raise DecodeError(f"malformed envelope: content union branch byte {branch}")


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
                byte = data[pos]
                if byte < 0x80 and not byte & 1:
                    markers.append(_MARKERS[byte >> 1])
                    pos += 1
                else:
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
    header: Header = _NEW(Header)
    _SET_ORIGIN(header, origin)
    _SET_ALERT_TYPE(header, alert_type)
    _SET_ALERT_ID(header, alert_id)
    _SET_VERSION(header, version)
    _SET_MESSAGE_ID(header, message_id)
    _SET_OPERATION(header, operation)
    _SET_ISSUED_AT(header, issued)
    _SET_EXPIRES_AT(header, expires)
    _SET_HANDLING_CODE(header, handling_code)
    _SET_SOURCE_RELIABILITY(header, source_reliability)
    _SET_INFORMATION_RELIABILITY(header, information_reliability)
    _SET_PRIORITY(header, priority)
    _SET_ACTION_ON_HIT(header, action_on_hit)
    _SET_WARNING_MARKERS(header, tuple(markers))
    _SET_CANCEL_REASON(header, cancel_reason)
    _SET_KEY_ID(header, key_id)
    _SET_SCHEMA_FINGERPRINT(header, schema_fingerprint)
    _SET_LANGUAGE(header, language)
    sections: list[Section] = []
    append = sections.append
    sections_at = pos
    count = data[pos]
    if count < 0x80 and not count & 1:
        count >>= 1
        pos += 1
    else:
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
            # The usual present section: digest, salt branch, salt, content branch and a
            # one- or two-byte content length, in one unpacking.
            if data[pos + DIGEST_SIZE : pos + DIGEST_SIZE + 2] == _REDACTED:
                section = _NEW(Section)
                _SET_NAME(section, name)
                _SET_DIGEST(section, data[pos : pos + DIGEST_SIZE])
                _SET_SALT(section, None)
                _SET_CONTENT(section, None)
                append(section)
                pos += DIGEST_SIZE + 2
                continue
            if len(data) - pos >= _PRESENT_SIZE:
                digest, salt_branch, salt, content_branch, low, high = _PRESENT(data, pos)
            else:  # near the end: read by the general path below
                digest, salt_branch, salt, content_branch, low, high = _NEAR_END
            if salt_branch == content_branch == _SECOND and not low & 1:
                if low < 0x80:
                    start = pos + _PRESENT_SIZE - 1
                    end = start + (low >> 1)
                elif high < 0x80:
                    start = pos + _PRESENT_SIZE
                    end = start + (((low & 0x7F) | high << 7) >> 1)
                else:
                    start, end = _content_bounds(data, pos + _PRESENT_SIZE - 2)
                if end > len(data):
                    raise DecodeError("malformed envelope: length beyond the end of the data")
                content: bytes | None = data[start:end]
                pos = end
            else:
                digest = data[pos : pos + DIGEST_SIZE]
                salt, content, pos = _section_rest(data, pos + DIGEST_SIZE)
            section = _NEW(Section)
            _SET_NAME(section, name)
            _SET_DIGEST(section, digest)
            _SET_SALT(section, salt)
            _SET_CONTENT(section, content)
            append(section)
        count, pos = _block(data, pos)
    if data[pos : pos + 2] == _SIGNATURE_LENGTH:
        signature = data[pos + 2 : pos + 2 + _SIGNATURE_SIZE]
        pos += 2 + _SIGNATURE_SIZE
    else:
        signature, pos = _raw(data, pos)
    if pos != len(data):
        if pos > len(data):
            raise DecodeError("malformed envelope: signature beyond the end of the data")
        raise DecodeError(f"malformed envelope: {len(data) - pos} trailing bytes")
    return Envelope(header, tuple(sections), signature), sections_at
