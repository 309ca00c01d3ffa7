"""Single-object encoding: the prefix, round trips, old writers read by today's reader."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastavro import schemaless_writer
from nacl.signing import SigningKey

from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import (
    FAST_FINGERPRINT,
    decode_envelope,
    decode_envelope_generic,
    decode_record,
    encode_envelope,
    encode_record,
    envelope_fingerprint,
)
from border_exchange.domain.envelope import Envelope, Section
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.schemas import build_registry, registry, schema_fingerprint
from border_exchange.domain.signing import redact, seal
from border_exchange.errors import DecodeError, SchemaError

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "avro"


def envelope_bytes(alert_type: AlertType = AlertType.WANTED_PERSON) -> bytes:
    envelope = seal(
        sample_alert(alert_type, language="en"),
        signing_key=SigningKey(bytes(32)),
        key_id="CAF-2026-01",
        message_id="m-1",
        issued_at=datetime(2026, 3, 1, tzinfo=UTC),  # data to encode: no clock compares it
    )
    return encode_envelope(envelope)


def test_a_record_starts_with_the_marker_and_the_little_endian_fingerprint() -> None:
    data = encode_record("bx.AlertRemarks", {"text": "RAS"})
    raw = json.loads((SCHEMA_DIR / "bx.AlertRemarks.avsc").read_text(encoding="utf-8"))
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == schema_fingerprint(raw)
    assert decode_record(data) == ("bx.AlertRemarks", {"text": "RAS"})


def test_a_known_fingerprint_matches_the_avro_reference_value() -> None:
    # The Avro specification's CRC-64-AVRO of the schema "int" is 0x7275d51a3f395c8f.
    assert schema_fingerprint({"type": "int"}) == bytes.fromhex("8f5c393f1ad57572")


def test_fields_with_defaults_may_be_left_out_when_encoding() -> None:
    data = encode_record("bx.AlertContact", {"unit_name": "CID Juba"})
    assert decode_record(data)[1] == {"unit_name": "CID Juba", "phone": None, "email": None}


def test_a_record_that_does_not_fit_its_schema_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match=r"bx\.AlertRemarks"):
        encode_record("bx.AlertRemarks", {"text": 42})
    with pytest.raises(SchemaError, match="unknown schema"):
        encode_record("bx.Nothing", {})


@pytest.mark.parametrize("alert_type", list(AlertType))
def test_the_direct_envelope_reader_agrees_with_fastavro(alert_type: AlertType) -> None:
    data = envelope_bytes(alert_type)
    redacted = encode_envelope(redact(decode_envelope(data), {"contact"}))
    for payload in (data, redacted):
        assert decode_envelope(payload) == decode_envelope_generic(payload)


def test_the_direct_reader_implements_the_current_envelope_schema() -> None:
    # When the envelope schema changes, update _native.c (or every message goes slow).
    assert envelope_fingerprint() == FAST_FINGERPRINT


def test_a_record_written_with_an_older_schema_decodes_with_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    current = json.loads((SCHEMA_DIR / "bx.AlertContact.avsc").read_text(encoding="utf-8"))
    older = json.loads(json.dumps(current))
    older["fields"] = [f for f in older["fields"] if f["name"] != "email"]
    for path in SCHEMA_DIR.glob("*.avsc"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "history").mkdir()
    (tmp_path / "history" / "bx.AlertContact.v0.avsc").write_text(json.dumps(older))
    old_registry = build_registry(tmp_path)
    old_schema = next(s for s in old_registry.by_fingerprint.values() if not s.current)

    buffer = io.BytesIO()
    buffer.write(b"\xc3\x01" + old_schema.fingerprint)
    schemaless_writer(buffer, old_schema.parsed, {"unit_name": "OCRB", "phone": None})

    monkeypatch.setenv("BX_SCHEMA_DIR", str(tmp_path))
    registry.cache_clear()
    try:
        assert decode_record(buffer.getvalue()) == (
            "bx.AlertContact",
            {"unit_name": "OCRB", "phone": None, "email": None},
        )
    finally:
        monkeypatch.delenv("BX_SCHEMA_DIR")
        registry.cache_clear()


def test_an_unknown_fingerprint_is_a_decode_error() -> None:
    data = bytearray(encode_record("bx.AlertRemarks", {"text": "x"}))
    data[2] ^= 0xFF
    with pytest.raises(DecodeError, match="unknown writer schema fingerprint"):
        decode_record(bytes(data))


def test_trailing_bytes_are_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        decode_envelope(envelope_bytes() + b"\x00")
    with pytest.raises(DecodeError, match="trailing"):
        decode_record(encode_record("bx.AlertRemarks", {"text": "x"}) + b"\x00")


def test_a_record_of_another_schema_is_not_an_envelope() -> None:
    with pytest.raises(DecodeError, match=r"expected a bx\.AlertEnvelope"):
        decode_envelope(encode_record("bx.AlertRemarks", {"text": "x"}))


@pytest.mark.parametrize(
    ("sizes", "signature"),
    [
        ((0, None, 40), b""),  # empty content, a redacted one, a one-byte length; no signature
        ((63, 64, 8191, 8192), bytes(64)),  # around the one-, two- and three-byte lengths
        ((None, None), b"\x01"),  # only redacted sections, close to the end of the data
        ((100_000,), bytes(64)),
    ],
)
def test_both_envelope_readers_agree_on_unusual_section_sizes(
    sizes: tuple[int | None, ...], signature: bytes
) -> None:
    header = decode_envelope(envelope_bytes()).header
    sections = tuple(
        Section(f"s{i}", bytes([i]) * 32, None, None)
        if size is None
        else Section(f"s{i}", bytes([i]) * 32, bytes([i]) * 16, bytes([i % 251]) * size)
        for i, size in enumerate(sizes)
    )
    envelope = Envelope(header, sections, signature)
    data = encode_envelope(envelope)
    assert decode_envelope(data) == decode_envelope_generic(data) == envelope
    for cut in range(len(data) - 120, len(data)):
        with pytest.raises(DecodeError):
            decode_envelope(data[:cut])
