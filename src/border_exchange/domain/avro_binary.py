"""Avro's binary encoding of longs, bytes and strings, for the direct readers and writers.

The hot paths (the envelope reader, the audit record reader and writer) read and write
the current schemas directly instead of through fastavro's generic code; these are the
primitives they share. For speed the readers let ``IndexError`` (data cut short) and
``UnicodeDecodeError`` through; the record readers turn both into ``DecodeError``.
"""

from __future__ import annotations

from typing import Final

from border_exchange.errors import DecodeError

_MAX_SHIFT: Final = 63


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint at ``pos``: its value and the position after it."""
    byte = data[pos]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos + 1
    result = byte & 0x7F
    shift = 7
    pos += 1
    while True:
        if shift > _MAX_SHIFT:
            raise DecodeError("malformed Avro data: varint longer than 10 bytes")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def read_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    """Length-prefixed bytes at ``pos`` and the position after them."""
    size = data[pos]
    if size < 0x80:
        size = (size >> 1) ^ -(size & 1)
        pos += 1
    else:
        size, pos = read_long(data, pos)
    end = pos + size
    if size < 0 or end > len(data):
        raise DecodeError("malformed Avro data: length beyond the end of the data")
    return data[pos:end], end


def read_string(data: bytes, pos: int) -> tuple[str, int]:
    """A length-prefixed UTF-8 string at ``pos`` and the position after it.

    Invalid UTF-8 raises ``UnicodeDecodeError``, which the readers turn into
    ``DecodeError``. (The usual record is read by the compiled fast path; these
    readers take the rest.)
    """
    raw, end = read_bytes(data, pos)
    return raw.decode("utf-8"), end


def write_long(value: int, out: bytearray) -> None:
    """Append ``value`` as a zigzag varint."""
    n = (value << 1) ^ (value >> 63)
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def write_bytes(value: bytes, out: bytearray) -> None:
    """Append ``value`` with its length."""
    write_long(len(value), out)
    out += value


def write_string(value: str, out: bytearray) -> None:
    """Append ``value`` as length-prefixed UTF-8."""
    write_bytes(value.encode(), out)


def read_block(data: bytes, pos: int) -> tuple[int, int]:
    """The item count of the next array block (skipping its byte size when given)."""
    count, pos = read_long(data, pos)
    if count < 0:
        _, pos = read_long(data, pos)
        count = -count
    return count, pos
