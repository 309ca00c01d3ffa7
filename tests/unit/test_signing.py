"""Sealing, redaction and verification: the origin's signature survives redaction, nothing else."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from border_exchange.domain.alerts import parse_alert
from border_exchange.domain.catalog import (
    SECTIONS,
    ActionOnHit,
    AlertType,
    HandlingCode,
    InformationReliability,
    Operation,
    ParticipantKind,
    Priority,
    SourceReliability,
    WarningMarker,
)
from border_exchange.domain.encoding import decode_envelope, encode_envelope
from border_exchange.domain.envelope import Envelope, Header, Section
from border_exchange.domain.samples import sample_alert, sample_alert_data
from border_exchange.domain.signing import (
    redact,
    seal,
    section_content,
    section_digest,
    sign,
    signing_input,
    verify,
    verify_trusted,
)
from border_exchange.domain.trust import Hub, Participant, PublicKey, TrustStore
from border_exchange.errors import (
    DecodeError,
    KeyNotValidError,
    KeyProblem,
    SignatureError,
    SignatureProblem,
    ValidationError,
)
from tests import clock

ISSUED = clock.days(-30)
KEY_FROM, KEY_UNTIL = ISSUED - timedelta(days=60), ISSUED + timedelta(days=300)
SIGNING_KEY = SigningKey(bytes(range(32)))
OTHER_KEY = SigningKey(bytes(range(1, 33)))


def public_key(signing_key: SigningKey = SIGNING_KEY, key_id: str = "CAF-2026-01") -> PublicKey:
    return PublicKey(
        "CAF",
        key_id,
        bytes(signing_key.verify_key),
        KEY_FROM,
        KEY_UNTIL,
    )


def sealed(alert_type: AlertType = AlertType.WANTED_PERSON, message_id: str = "msg-1") -> Envelope:
    return seal(
        sample_alert(alert_type, origin="CAF"),
        signing_key=SIGNING_KEY,
        key_id="CAF-2026-01",
        message_id=message_id,
        issued_at=ISSUED,
        alert_id="alert-1",
    )


def with_section(envelope: Envelope, index: int, **changes: object) -> Envelope:
    sections = list(envelope.sections)
    sections[index] = dataclasses.replace(sections[index], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(envelope, sections=tuple(sections))


def rejected(envelope: Envelope) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify(envelope, public_key())
    return caught.value


@pytest.mark.parametrize("alert_type", list(AlertType))
def test_a_sealed_alert_verifies_after_an_encoding_round_trip(alert_type: AlertType) -> None:
    envelope = sealed(alert_type)
    decoded = decode_envelope(encode_envelope(envelope))
    assert decoded == envelope
    verify(decoded, public_key())


def test_sections_are_sealed_in_canonical_order_with_fresh_salts() -> None:
    envelope = sealed()
    assert envelope.section_names == SECTIONS[AlertType.WANTED_PERSON]
    salts = [s.salt for s in envelope.sections]
    assert all(salt is not None and len(salt) == 16 for salt in salts)
    assert len(set(salts)) == len(salts)
    assert sealed().sections[0].salt != envelope.sections[0].salt


def test_a_redacted_message_still_verifies_and_keeps_every_digest() -> None:
    envelope = sealed()
    redacted = redact(envelope, {"identity", "offence"})
    assert redacted.present_sections == {"identity", "offence"}
    assert [s.digest for s in redacted.sections] == [s.digest for s in envelope.sections]
    assert all(s.salt is None for s in redacted.sections if s.redacted)
    verify(decode_envelope(encode_envelope(redacted)), public_key())


def test_a_message_redacted_to_nothing_still_verifies() -> None:
    verify(redact(sealed(), ()), public_key())


@pytest.mark.parametrize(
    "field",
    ["origin", "alert_id", "message_id", "key_id", "language", "cancel_reason"],
)
def test_any_changed_header_text_is_rejected(field: str) -> None:
    envelope = sealed()
    value: str = getattr(envelope.header, field) or ""
    changes: dict[str, object] = {field: value + "x"}
    header = dataclasses.replace(envelope.header, **changes)  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        verify(dataclasses.replace(envelope, header=header), public_key())


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 2},
        {"operation": Operation.UPDATE},
        {"issued_at": ISSUED + timedelta(microseconds=1)},
        {"expires_at": ISSUED + timedelta(days=1000)},
        {"handling_code": HandlingCode.H0},
        {"warning_markers": ()},
        {"alert_type": AlertType.VEHICLE_NOTICE},
    ],
)
def test_any_changed_header_value_is_rejected(changes: dict[str, object]) -> None:
    envelope = sealed()
    header = dataclasses.replace(envelope.header, **changes)  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        verify(dataclasses.replace(envelope, header=header), public_key())


def test_every_single_byte_flip_of_the_header_bytes_is_rejected_or_undecodable() -> None:
    envelope = redact(sealed(), {"identity"})
    data = encode_envelope(envelope)
    header_end = data.index(envelope.header.schema_fingerprint, 10) + 8
    for position in range(10, header_end):
        changed = bytearray(data)
        changed[position] ^= 0x01
        with pytest.raises((SignatureError, DecodeError)):
            verify(decode_envelope(bytes(changed)), public_key())


def test_changed_section_content_is_rejected() -> None:
    envelope = sealed()
    content = envelope.sections[0].content
    assert content is not None
    error = rejected(with_section(envelope, 0, content=content[:-1] + b"X"))
    assert error.reason is SignatureProblem.DIGEST_MISMATCH
    assert "identity" in str(error)


def test_a_changed_digest_of_a_redacted_section_is_rejected() -> None:
    envelope = redact(sealed(), {"identity"})
    error = rejected(with_section(envelope, 3, digest=bytes(32)))
    assert error.reason is SignatureProblem.BAD_SIGNATURE


def test_swapped_salts_are_rejected() -> None:
    envelope = sealed()
    first, second = envelope.sections[0], envelope.sections[1]
    swapped = with_section(with_section(envelope, 0, salt=second.salt), 1, salt=first.salt)
    assert rejected(swapped).reason is SignatureProblem.DIGEST_MISMATCH


def test_a_section_removed_with_its_digest_is_rejected() -> None:
    envelope = sealed()
    shorter = dataclasses.replace(envelope, sections=envelope.sections[:3] + envelope.sections[4:])
    assert rejected(shorter).reason is SignatureProblem.BAD_SIGNATURE


def test_an_added_section_is_rejected() -> None:
    envelope = redact(sealed(), {"identity"})
    without_remarks = sealed_without("remarks")
    assert "remarks" not in without_remarks.section_names
    donor = envelope.sections[5]
    sections = (*without_remarks.sections[:5], donor, *without_remarks.sections[5:])
    assert rejected(dataclasses.replace(without_remarks, sections=sections)).reason in {
        SignatureProblem.BAD_SIGNATURE,
        SignatureProblem.DIGEST_MISMATCH,
    }


def sealed_without(section: str) -> Envelope:
    data = sample_alert_data(AlertType.WANTED_PERSON, origin="CAF")
    del data["sections"][section]
    return seal(
        parse_alert(data),
        signing_key=SIGNING_KEY,
        key_id="CAF-2026-01",
        message_id="msg-1",
        issued_at=ISSUED,
        alert_id="alert-1",
    )


def test_an_alert_without_an_optional_section_verifies() -> None:
    verify(sealed_without("photo"), public_key())


def test_reordered_sections_are_rejected() -> None:
    envelope = sealed()
    sections = (envelope.sections[1], envelope.sections[0], *envelope.sections[2:])
    error = rejected(dataclasses.replace(envelope, sections=sections))
    assert error.reason is SignatureProblem.SECTION_LAYOUT


def test_a_section_taken_from_another_message_is_rejected() -> None:
    envelope = sealed(message_id="msg-1")
    other = sealed(message_id="msg-2")
    error = rejected(with_section(envelope, 2, **_fields(other.sections[2])))
    assert error.reason is SignatureProblem.DIGEST_MISMATCH


def test_a_redacted_section_taken_from_another_message_is_rejected() -> None:
    envelope = redact(sealed(message_id="msg-1"), {"identity"})
    other = redact(sealed(message_id="msg-2"), {"identity"})
    error = rejected(with_section(envelope, 2, digest=other.sections[2].digest))
    assert error.reason is SignatureProblem.BAD_SIGNATURE


def _fields(section: Section) -> dict[str, object]:
    return {"digest": section.digest, "salt": section.salt, "content": section.content}


def test_content_without_its_salt_is_rejected() -> None:
    error = rejected(with_section(sealed(), 0, salt=None))
    assert error.reason is SignatureProblem.DIGEST_MISMATCH


def test_a_changed_signature_is_rejected() -> None:
    envelope = sealed()
    signature = bytes([envelope.signature[0] ^ 1]) + envelope.signature[1:]
    assert rejected(dataclasses.replace(envelope, signature=signature)).reason is (
        SignatureProblem.BAD_SIGNATURE
    )


def test_a_truncated_signature_is_rejected_not_crashing() -> None:
    envelope = sealed()
    rejected(dataclasses.replace(envelope, signature=envelope.signature[:10]))


def test_another_key_of_the_same_owner_is_rejected() -> None:
    with pytest.raises(SignatureError) as caught:
        verify(sealed(), public_key(OTHER_KEY))
    assert caught.value.reason is SignatureProblem.BAD_SIGNATURE


def test_a_key_of_another_id_is_rejected_as_a_mismatch() -> None:
    with pytest.raises(SignatureError) as caught:
        verify(sealed(), public_key(key_id="CAF-2025-01"))
    assert caught.value.reason is SignatureProblem.KEY_MISMATCH


def test_an_unknown_signed_schema_fingerprint_is_rejected() -> None:
    envelope = sealed()
    header = dataclasses.replace(envelope.header, schema_fingerprint=bytes(8))
    error = rejected(dataclasses.replace(envelope, header=header))
    assert error.reason is SignatureProblem.UNKNOWN_SCHEMA


def test_the_signing_input_starts_with_the_domain_tag_and_ends_with_the_digests() -> None:
    envelope = sealed()
    data = signing_input(envelope.header, envelope.sections)
    assert data.startswith(b"border-exchange/alert/v1\x00")
    assert data.endswith(envelope.sections[-1].digest)


def test_a_cancel_carries_no_sections_and_verifies() -> None:
    data = sample_alert_data(AlertType.VEHICLE_NOTICE, origin="CAF", alert_id="alert-1")
    data |= {"operation": "CANCEL", "version": 2, "cancel_reason": "Véhicule retrouvé."}
    del data["sections"]
    envelope = seal(
        parse_alert(data),
        signing_key=SIGNING_KEY,
        key_id="CAF-2026-01",
        message_id="m2",
        issued_at=ISSUED,
    )
    assert envelope.sections == ()
    assert envelope.header.cancel_reason == "Véhicule retrouvé."
    verify(decode_envelope(encode_envelope(envelope)), public_key())


def test_sealing_needs_an_aware_issue_time_before_expiry() -> None:
    alert = sample_alert(AlertType.WANTED_PERSON)
    with pytest.raises(ValidationError, match="issued_at"):
        seal(
            alert,
            signing_key=SIGNING_KEY,
            key_id="k",
            message_id="m",
            issued_at=ISSUED.replace(tzinfo=None),
        )
    with pytest.raises(ValidationError, match="expires_at"):
        seal(
            alert,
            signing_key=SIGNING_KEY,
            key_id="k",
            message_id="m",
            issued_at=alert.expires_at + timedelta(days=1),
        )


def test_a_new_alert_gets_a_fresh_alert_id() -> None:
    alert = sample_alert(AlertType.BORDER_INCIDENT)
    ids = {
        seal(
            alert, signing_key=SIGNING_KEY, key_id="k", message_id="m", issued_at=ISSUED
        ).header.alert_id
        for _ in range(2)
    }
    assert len(ids) == 2


def test_section_content_decodes_a_present_section_and_refuses_a_redacted_one() -> None:
    envelope = redact(sealed(), {"identity"})
    assert section_content(envelope, "identity")["family_names"] == ["NGAKOLA"]
    with pytest.raises(DecodeError, match="redacted"):
        section_content(envelope, "photo")
    with pytest.raises(DecodeError, match="no section"):
        section_content(envelope, "vehicle")


def trust_store(revoked_at: datetime | None = None) -> TrustStore:
    key = dataclasses.replace(
        public_key(), revoked_at=revoked_at, revocation_reason="laptop stolen"
    )
    participant = Participant(
        "CAF", "Police centrafricaine", ParticipantKind.NATIONAL_SERVICE, "active", (), (key,)
    )
    return TrustStore({"CAF": participant}, Hub())


def test_verify_trusted_uses_the_key_valid_at_issue_time() -> None:
    assert verify_trusted(sealed(), trust_store()).key_id == "CAF-2026-01"


def test_verify_trusted_rejects_a_message_issued_after_its_key_was_revoked() -> None:
    with pytest.raises(KeyNotValidError, match="laptop stolen") as caught:
        verify_trusted(sealed(), trust_store(revoked_at=ISSUED - timedelta(seconds=1)))
    assert caught.value.reason is KeyProblem.KEY_REVOKED


def test_verify_trusted_accepts_a_message_issued_before_the_revocation() -> None:
    verify_trusted(sealed(), trust_store(revoked_at=ISSUED + timedelta(seconds=1)))


VECTOR = Path(__file__).parent.parent / "vectors" / "signing_v1.json"


def vector_header(spec: dict[str, Any]) -> Header:
    return Header(
        origin=spec["origin"],
        alert_type=AlertType(spec["alert_type"]),
        alert_id=spec["alert_id"],
        version=spec["version"],
        message_id=spec["message_id"],
        operation=Operation(spec["operation"]),
        issued_at=datetime.fromisoformat(spec["issued_at"]),
        expires_at=datetime.fromisoformat(spec["expires_at"]),
        handling_code=HandlingCode(spec["handling_code"]),
        source_reliability=SourceReliability(spec["source_reliability"]),
        information_reliability=InformationReliability(spec["information_reliability"]),
        priority=Priority(spec["priority"]),
        action_on_hit=ActionOnHit(spec["action_on_hit"]),
        warning_markers=tuple(WarningMarker(m) for m in spec["warning_markers"]),
        cancel_reason=spec["cancel_reason"],
        key_id=spec["key_id"],
        schema_fingerprint=bytes.fromhex(spec["schema_fingerprint_hex"]),
        language=spec["language"],
    )


def test_the_committed_test_vector_is_reproduced_byte_for_byte() -> None:
    vector = json.loads(VECTOR.read_text(encoding="utf-8"))
    signing_key = SigningKey(bytes.fromhex(vector["private_key_seed_hex"]))
    assert bytes(signing_key.verify_key).hex() == vector["public_key_hex"]
    header = vector_header(vector["header"])
    salts = iter(bytes.fromhex(s["salt_hex"]) for s in vector["sections"])
    contents = [(s["name"], bytes.fromhex(s["content_hex"])) for s in vector["sections"]]
    envelope = sign(header, contents, signing_key, salt=lambda size: next(salts))

    assert [s.digest.hex() for s in envelope.sections] == [
        s["digest_hex"] for s in vector["sections"]
    ]
    assert signing_input(header, envelope.sections).hex() == vector["signing_input_hex"]
    assert envelope.signature.hex() == vector["signature_hex"]
    assert encode_envelope(envelope).hex() == vector["envelope_hex"]
    key = PublicKey(
        header.origin,
        header.key_id,
        bytes.fromhex(vector["public_key_hex"]),
        header.issued_at - timedelta(days=1),  # the vector's own time, fixed with its bytes
        header.issued_at + timedelta(days=1),
    )
    verify(decode_envelope(bytes.fromhex(vector["envelope_hex"])), key)


def test_the_vector_digest_follows_the_documented_layout() -> None:
    vector = json.loads(VECTOR.read_text(encoding="utf-8"))
    first = vector["sections"][0]

    def lp(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data

    preimage = (
        b"border-exchange/section/v1\x00"
        + lp(vector["header"]["alert_id"].encode())
        + lp(vector["header"]["message_id"].encode())
        + lp(first["name"].encode())
        + lp(bytes.fromhex(first["salt_hex"]))
        + lp(bytes.fromhex(first["content_hex"]))
    )
    assert hashlib.sha256(preimage).hexdigest() == first["digest_hex"]
    assert section_digest(
        vector["header"]["alert_id"],
        vector["header"]["message_id"],
        first["name"],
        bytes.fromhex(first["salt_hex"]),
        bytes.fromhex(first["content_hex"]),
    ) == bytes.fromhex(first["digest_hex"])


def test_the_vector_signing_input_is_the_documented_layout_and_verifies_elsewhere() -> None:
    """The bytes of docs/contract.md section 2, built here from the vector's fields alone."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    vector = json.loads(VECTOR.read_text(encoding="utf-8"))
    h = vector["header"]

    def lp(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data

    def text(value: str) -> bytes:
        return lp(value.encode())

    def opt(value: str | None) -> bytes:
        return b"\x00" if value is None else b"\x01" + text(value)

    def micros(iso: str) -> bytes:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        since = moment - datetime(1970, 1, 1, tzinfo=UTC)
        return (since // timedelta(microseconds=1)).to_bytes(8, "big", signed=True)

    expected = (
        b"border-exchange/alert/v1\x00"
        + text(h["origin"])
        + text(h["alert_type"])
        + text(h["alert_id"])
        + h["version"].to_bytes(4, "big", signed=True)
        + text(h["message_id"])
        + text(h["operation"])
        + micros(h["issued_at"])
        + micros(h["expires_at"])
        + text(h["handling_code"])
        + text(h["source_reliability"])
        + text(h["information_reliability"])
        + text(h["priority"])
        + text(h["action_on_hit"])
        + len(h["warning_markers"]).to_bytes(4, "big")
        + b"".join(text(m) for m in h["warning_markers"])
        + opt(h["cancel_reason"])
        + opt(h["language"])
        + text(h["key_id"])
        + lp(bytes.fromhex(h["schema_fingerprint_hex"]))
        + len(vector["sections"]).to_bytes(4, "big")
        + b"".join(text(s["name"]) + bytes.fromhex(s["digest_hex"]) for s in vector["sections"])
    )
    assert expected.hex() == vector["signing_input_hex"]
    assert micros(h["issued_at"]) == h["issued_at_micros"].to_bytes(8, "big", signed=True)
    # OpenSSL's Ed25519 (through cryptography), not the libsodium path the package verifies with.
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(vector["public_key_hex"]))
    public.verify(bytes.fromhex(vector["signature_hex"]), expected)
