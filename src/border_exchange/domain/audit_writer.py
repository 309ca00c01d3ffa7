"""A direct Avro writer for the current ``bx.AuditRecord`` schema, on the router's hot path.

It writes exactly the bytes fastavro's generic writer would (Avro's binary encoding is
canonical), several times faster. It is used only while the committed schema is the one
it was written for; any other schema goes through the generic writer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from border_exchange.domain.avro_binary import write_bytes as _bytes
from border_exchange.domain.avro_binary import write_long as _long
from border_exchange.domain.avro_binary import write_string as _string
from border_exchange.domain.fastpath import AUDIT_FIELDS
from border_exchange.domain.fastpath import write_audit as native_write

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _MICRO


def _opt(write: Callable[[Any, bytearray], None]) -> Callable[[Any, bytearray], None]:
    def optional(value: Any, out: bytearray) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(2)  # union branch 1, zig-zag encoded
            write(value, out)

    return optional


def _strings(values: Sequence[str], out: bytearray) -> None:
    if values:
        _long(len(values), out)
        for value in values:
            _string(value, out)
    out.append(0)


_opt_string = _opt(_string)
_opt_long = _opt(_long)
_opt_bytes = _opt(_bytes)
_opt_time = _opt(lambda value, out: _long(_micros(value), out))


def _outcome(value: Mapping[str, Any], out: bytearray) -> None:
    _string(value["participant"], out)
    out.append(1 if value["delivered"] else 0)
    _strings(value.get("sections", ()), out)
    _opt_string(value.get("reason"), out)
    _opt_string(value.get("agreement_id"), out)
    _opt_string(value.get("basis"), out)


_OPTIONAL_STRINGS_1: Final = (
    "message_id",
    "alert_id",
)
_OPTIONAL_STRINGS_2: Final = (
    "origin",
    "alert_type",
    "operation",
    "handling_code",
    "action_on_hit",
)

FIELDS: Final = AUDIT_FIELDS
"""The record's fields in schema order: the layout this writer implements."""


def write_audit_body(record: Mapping[str, Any]) -> bytes:
    """The Avro binary body of an audit record (without the single-object prefix).

    A dict whose values have their usual types is written by the compiled writer of
    ``fastpath``; anything else here, by ``write_audit_body_python``.
    """
    if type(record) is dict:
        body = native_write(record)
        if body is not None:
            return body
    return write_audit_body_python(record)


def write_audit_body_python(record: Mapping[str, Any]) -> bytes:
    """``write_audit_body`` in Python only: the reference of the compiled writer."""
    out = bytearray()
    get = record.get
    _string(record["chain"], out)
    _long(record["seq"], out)
    _bytes(record["prev_hash"], out)
    _string(record["kind"], out)
    _long(_micros(record["recorded_at"]), out)
    _opt_long(get("source_offset"), out)
    for name in _OPTIONAL_STRINGS_1:
        _opt_string(get(name), out)
    _opt_long(get("version"), out)
    for name in _OPTIONAL_STRINGS_2:
        _opt_string(get(name), out)
    _opt_time(get("issued_at"), out)
    _opt_time(get("expires_at"), out)
    _strings(get("sections") or (), out)
    _opt_string(get("agreement_set"), out)
    _opt_string(get("agreement_label"), out)
    _strings(get("earlier_recipients") or (), out)
    outcomes = get("outcomes") or ()
    if outcomes:
        _long(len(outcomes), out)
        for outcome in outcomes:
            _outcome(outcome, out)
    out.append(0)
    _opt_string(get("quarantine_reason"), out)
    _opt_string(get("quarantine_detail"), out)
    _opt_string(get("checkpoint_key_id"), out)
    _opt_bytes(get("checkpoint_signature"), out)
    return bytes(out)
