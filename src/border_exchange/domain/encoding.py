"""Avro single-object encoding of records and alert envelopes.

A record's bytes are ``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of
the writer schema's Parsing Canonical Form, and the Avro binary body. Decoding finds
the writer schema by fingerprint among every committed version and resolves it to
the current reader schema. Decoding arbitrary bytes raises only ``DecodeError``.

fastavro is the one Python reading and writing of Avro. The usual envelope and audit
record of the current schema versions are read and written by the compiled fast path
(``fastpath``), which fastavro's results are the reference of; whatever it declines, and
every older writer version, goes through fastavro here.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping
from datetime import UTC
from functools import cache
from typing import Any, Final

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import parse_schema

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
from border_exchange.domain.envelope import Envelope, Header, Section
from border_exchange.domain.fastpath import read_envelope as native_read_envelope
from border_exchange.domain.schemas import SINGLE_OBJECT_MAGIC, Schema, registry
from border_exchange.errors import DecodeError, SchemaError

ENVELOPE_SCHEMA: Final = "bx.AlertEnvelope"
PREFIX_SIZE: Final = 10
FAST_FINGERPRINT: Final = bytes.fromhex("01da03a26df693d6")
"""The envelope version the compiled reader implements (a test holds it to the schema)."""

SECTION_SCHEMAS: Final[Mapping[AlertType, Mapping[str, str]]] = {
    AlertType.WANTED_PERSON: {
        "identity": "bx.WantedPersonIdentity",
        "documents": "bx.WantedPersonDocuments",
        "description": "bx.WantedPersonDescription",
        "photo": "bx.WantedPersonPhoto",
        "offence": "bx.WantedPersonOffence",
        "remarks": "bx.AlertRemarks",
        "contact": "bx.AlertContact",
    },
    AlertType.VEHICLE_NOTICE: {
        "vehicle": "bx.VehicleNoticeVehicle",
        "event": "bx.VehicleNoticeEvent",
        "owner": "bx.VehicleNoticeOwner",
        "remarks": "bx.AlertRemarks",
        "contact": "bx.AlertContact",
    },
    AlertType.BORDER_INCIDENT: {
        "incident": "bx.BorderIncidentIncident",
        "location": "bx.BorderIncidentLocation",
        "involved": "bx.BorderIncidentInvolved",
        "remarks": "bx.AlertRemarks",
        "contact": "bx.AlertContact",
    },
}
"""The Avro record that holds each section of each alert type."""

_INFO_BY_NAME: Final = {member.name: member for member in InformationReliability}


def section_schema_name(alert_type: AlertType, section: str) -> str:
    """The full name of the Avro record holding ``section`` of an ``alert_type`` alert."""
    try:
        return SECTION_SCHEMAS[alert_type][section]
    except KeyError:
        raise SchemaError(f"alert type {alert_type} has no section {section!r}") from None


def envelope_fingerprint() -> bytes:
    """The fingerprint of the current envelope schema."""
    return registry().schema(ENVELOPE_SCHEMA).fingerprint


def _encode(schema: Schema, record: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    buffer.write(SINGLE_OBJECT_MAGIC)
    buffer.write(schema.fingerprint)
    try:
        schemaless_writer(buffer, schema.parsed, {**schema.defaults, **record}, strict=True)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise SchemaError(f"record does not fit schema {schema.name}: {exc}") from exc
    return buffer.getvalue()


def _decode(data: bytes) -> tuple[Schema, dict[str, Any]]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < PREFIX_SIZE or data[:2] != SINGLE_OBJECT_MAGIC:
        raise DecodeError("not an Avro single-object record (missing C3 01 marker)")
    writer = registry().by_fingerprint.get(data[2:PREFIX_SIZE])
    if writer is None:
        raise DecodeError(f"unknown writer schema fingerprint {data[2:PREFIX_SIZE].hex()}")
    reader = writer if writer.current else registry().schema(writer.name)
    return reader, _read_body(writer, reader, data, PREFIX_SIZE)


def _read_body(writer: Schema, reader: Schema, data: bytes, pos: int) -> dict[str, Any]:
    """The record whose Avro body, written with ``writer``, fills ``data`` from ``pos``."""
    buffer = io.BytesIO(data)
    buffer.seek(pos)
    try:
        record = schemaless_reader(
            buffer, writer.parsed, None if reader is writer else reader.parsed
        )
    except Exception as exc:  # fastavro raises many kinds on bad input; all mean malformed
        raise DecodeError(f"malformed {writer.name} record: {type(exc).__name__}: {exc}") from exc
    if buffer.tell() != len(data):
        trailing = len(data) - buffer.tell()
        raise DecodeError(f"malformed {writer.name} record: {trailing} trailing bytes")
    if not isinstance(record, dict):
        raise DecodeError(f"malformed {writer.name} record: not a record")
    return record


def decode_body(fingerprint: bytes, data: bytes, pos: int) -> dict[str, Any]:
    """The record written with the schema version ``fingerprint`` whose body fills ``data``
    from ``pos`` (a prefix checked already), resolved to the current version; raises only
    ``DecodeError``."""
    writer = registry().by_fingerprint.get(fingerprint)
    if writer is None:
        raise DecodeError(f"unknown writer schema fingerprint {fingerprint.hex()}")
    if not 0 <= pos <= len(data):
        raise DecodeError(f"malformed {writer.name} record: no body at {pos}")
    reader = writer if writer.current else registry().schema(writer.name)
    return _read_body(writer, reader, bytes(data), pos)


def encode_record(schema_name: str, record: Mapping[str, Any]) -> bytes:
    """Single-object encoding of ``record`` with the current version of ``schema_name``."""
    return _encode(registry().schema(schema_name), record)


def decode_record(data: bytes) -> tuple[str, dict[str, Any]]:
    """The schema name and the record of ``data``, resolved to the current reader schema."""
    schema, record = _decode(data)
    return schema.name, record


def _header_record(header: Header) -> dict[str, Any]:
    return {
        "origin": header.origin,
        "alert_type": header.alert_type.value,
        "alert_id": header.alert_id,
        "version": header.version,
        "message_id": header.message_id,
        "operation": header.operation.value,
        "issued_at": header.issued_at,
        "expires_at": header.expires_at,
        "handling_code": header.handling_code.value,
        "source_reliability": header.source_reliability.value,
        "information_reliability": header.information_reliability.name,
        "priority": header.priority.value,
        "action_on_hit": header.action_on_hit.value,
        "warning_markers": [marker.value for marker in header.warning_markers],
        "cancel_reason": header.cancel_reason,
        "language": header.language,
        "key_id": header.key_id,
        "schema_fingerprint": header.schema_fingerprint,
    }


def envelope_record(envelope: Envelope) -> dict[str, Any]:
    """The envelope as a record of the ``bx.AlertEnvelope`` schema."""
    return {
        "header": _header_record(envelope.header),
        "sections": [
            {"name": s.name, "digest": s.digest, "salt": s.salt, "content": s.content}
            for s in envelope.sections
        ],
        "signature": envelope.signature,
    }


def encode_envelope(envelope: Envelope) -> bytes:
    """The Kafka record value of ``envelope``."""
    return encode_record(ENVELOPE_SCHEMA, envelope_record(envelope))


def _header(record: Mapping[str, Any]) -> Header:
    issued_at = record["issued_at"]
    expires_at = record["expires_at"]
    return Header(
        origin=record["origin"],
        alert_type=AlertType(record["alert_type"]),
        alert_id=record["alert_id"],
        version=record["version"],
        message_id=record["message_id"],
        operation=Operation(record["operation"]),
        issued_at=issued_at.astimezone(UTC) if issued_at.tzinfo is not UTC else issued_at,
        expires_at=expires_at.astimezone(UTC) if expires_at.tzinfo is not UTC else expires_at,
        handling_code=HandlingCode(record["handling_code"]),
        source_reliability=SourceReliability(record["source_reliability"]),
        information_reliability=_INFO_BY_NAME[record["information_reliability"]],
        priority=Priority(record["priority"]),
        action_on_hit=ActionOnHit(record["action_on_hit"]),
        warning_markers=tuple(WarningMarker(m) for m in record["warning_markers"]),
        cancel_reason=record["cancel_reason"],
        key_id=record["key_id"],
        schema_fingerprint=record["schema_fingerprint"],
        language=record["language"],
    )


def decode_envelope(data: bytes) -> Envelope:
    """The envelope carried by ``data``; raises only ``DecodeError``."""
    return decode_envelope_split(data)[0]


def decode_envelope_split(data: bytes) -> tuple[Envelope, int | None]:
    """``decode_envelope`` and where the section list starts in ``data``.

    The position is known when the compiled reader read the message (the usual one of
    the current version; None otherwise): ``data`` up to it is the header's encoding,
    from it the sections and the signature.
    """
    if type(data) is bytes and data[:2] == SINGLE_OBJECT_MAGIC and data[2:10] == FAST_FINGERPRINT:
        read = native_read_envelope(data, PREFIX_SIZE)
        return decode_envelope_located(data) if read is None else read
    return decode_envelope_generic(data), None


def decode_envelope_located(data: bytes) -> tuple[Envelope, int]:
    """``decode_envelope_split`` of the compiled reader's version through fastavro: the
    section list starts where the header, read alone, ends (the reference of the
    compiled reader's answer)."""
    envelope = decode_envelope_generic(data)
    buffer = io.BytesIO(data)
    buffer.seek(PREFIX_SIZE)
    schemaless_reader(buffer, _fast_header(), None)
    return envelope, buffer.tell()


@cache
def _fast_header() -> dict[str, Any]:
    """The header record of the envelope version ``FAST_FINGERPRINT`` names, parsed."""
    raw = registry().by_fingerprint[FAST_FINGERPRINT].raw
    parsed = parse_schema(copy.deepcopy(raw["fields"][0]["type"]))
    assert isinstance(parsed, dict)  # a record
    return parsed


def decode_envelope_generic(data: bytes) -> Envelope:
    """``decode_envelope`` through fastavro's schema resolution, for every writer version."""
    schema, record = _decode(data)
    if schema.name != ENVELOPE_SCHEMA:
        raise DecodeError(f"expected a {ENVELOPE_SCHEMA} record, got {schema.name}")
    try:
        return Envelope(
            header=_header(record["header"]),
            sections=tuple(
                Section(s["name"], s["digest"], s["salt"], s["content"]) for s in record["sections"]
            ),
            signature=record["signature"],
        )
    except Exception as exc:  # a record of the right schema with values outside the contract
        raise DecodeError(f"malformed envelope: {type(exc).__name__}: {exc}") from exc
