"""Sealing, verifying and redacting alert messages; the signature survives redaction.

The origin signs, with Ed25519, a canonical signing input: a domain-separation tag,
the length-prefixed header fields, and the ordered (name, digest) list of every
section. A section digest is SHA-256 over a tag, the alert and message ids, the
section name, a fresh 16-byte salt and the section's bytes, so a redacted section
keeps its digest and no section can be moved to another message. The byte layout is
documented in ``docs/contract.md``. Verification raises; it never returns False.
"""

from __future__ import annotations

import hashlib
import os
import struct
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey

from border_exchange.domain import framing
from border_exchange.domain.catalog import CODE_LISTS, SECTIONS, AlertType, Operation
from border_exchange.domain.encoding import (
    ENVELOPE_SCHEMA,
    decode_record,
    encode_record,
    envelope_fingerprint,
    section_schema_name,
)
from border_exchange.domain.envelope import DIGEST_SIZE, SALT_SIZE, Envelope, Header, Section
from border_exchange.domain.fastpath import EPOCH as _EPOCH
from border_exchange.domain.fastpath import checked_signing_input
from border_exchange.domain.schemas import registry
from border_exchange.domain.section_seal import Plain, Recipient, SectionContext, seal_sections
from border_exchange.domain.trust import PublicKey, TrustStore
from border_exchange.errors import DecodeError, SignatureError, SignatureProblem, ValidationError

if TYPE_CHECKING:  # only seal's annotation: readers and the router need not load the models
    from border_exchange.domain.alerts import AlertInput

SIGNING_TAG: Final = b"border-exchange/alert/v1\x00"
SECTION_TAG: Final = b"border-exchange/section/v1\x00"
SIGNATURE_SIZE: Final = 64

Salt = Callable[[int], bytes]
"""A source of salt bytes: ``os.urandom`` in production, fixed bytes in test vectors."""


_MICROSECOND: Final = timedelta(microseconds=1)
_I32: Final = struct.Struct(">i").pack
_I64: Final = struct.Struct(">q").pack
_U32: Final = struct.Struct(">I").pack
_sha256: Final = hashlib.sha256
_LP16: Final = SALT_SIZE.to_bytes(4, "big")
_CODED: Final[dict[str, bytes]] = {
    str(value): framing.text(str(value)) for code_list in CODE_LISTS for value in code_list
} | {name: framing.text(name) for names in SECTIONS.values() for name in names}
"""Length-prefixed UTF-8 of every code and section name, computed once."""


def _stamp(moment: datetime) -> bytes:
    """``i64`` of the microseconds since the epoch."""
    return _I64((moment - _EPOCH) // _MICROSECOND)


def section_digest(alert_id: str, message_id: str, name: str, salt: bytes, content: bytes) -> bytes:
    """SHA-256 binding a section's bytes to its message, name and salt."""
    return hashlib.sha256(
        SECTION_TAG
        + framing.text(alert_id)
        + framing.text(message_id)
        + framing.text(name)
        + framing.lp(salt)
        + framing.lp(content)
    ).digest()


def _header_input(header: Header, section_count: int) -> list[bytes]:
    """The signing input up to the section list: tag, header fields and the section count.

    Items 3 and 5 are the length-prefixed alert and message ids (``verify`` reuses them).
    """
    coded = _CODED
    markers = header.warning_markers
    cancel_reason = header.cancel_reason
    language = header.language
    return [
        SIGNING_TAG,
        framing.text(header.origin),
        coded[header.alert_type],
        framing.text(header.alert_id),
        _I32(header.version),
        framing.text(header.message_id),
        coded[header.operation],
        _stamp(header.issued_at),
        _stamp(header.expires_at),
        coded[header.handling_code],
        coded[header.source_reliability],
        coded[header.information_reliability],
        coded[header.priority],
        coded[header.action_on_hit],
        _U32(len(markers)),
        *[coded[marker] for marker in markers],
        b"\x00" if cancel_reason is None else b"\x01" + framing.text(cancel_reason),
        b"\x00" if language is None else b"\x01" + framing.text(language),
        framing.text(header.key_id),
        framing.lp(header.schema_fingerprint),
        _U32(section_count),
    ]


def signing_input(header: Header, sections: Sequence[Section]) -> bytes:
    """The exact bytes the origin signs (layout in ``docs/contract.md``)."""
    parts = _header_input(header, len(sections))
    coded = _CODED
    for section in sections:
        name = section.name
        parts.append(coded[name] if name in coded else framing.text(name))
        parts.append(section.digest)
    return b"".join(parts)


def sign(
    header: Header,
    contents: Iterable[tuple[str, bytes]],
    signing_key: SigningKey,
    *,
    salt: Salt = os.urandom,
) -> Envelope:
    """Seal already-encoded section ``contents`` under ``header`` with ``signing_key``."""
    sections = []
    for name, content in contents:
        section_salt = salt(SALT_SIZE)
        if len(section_salt) != SALT_SIZE:
            raise ValidationError(f"salt of section {name} must have {SALT_SIZE} bytes")
        digest = section_digest(header.alert_id, header.message_id, name, section_salt, content)
        sections.append(Section(name, digest, section_salt, content))
    _check_layout(header, sections)
    signature = signing_key.sign(signing_input(header, sections)).signature
    return Envelope(header, tuple(sections), bytes(signature))


def seal(
    alert: AlertInput,
    *,
    signing_key: SigningKey,
    key_id: str,
    message_id: str,
    issued_at: datetime,
    alert_id: str | None = None,
    salt: Salt = os.urandom,
    recipients: Mapping[str, Sequence[Recipient]] | None = None,
) -> Envelope:
    """Encode and sign a validated alert as its origin.

    The alert id is ``alert.alert_id``, else ``alert_id``, else a new random UUID (a new
    alert). ``issued_at`` must carry a time zone and precede the alert's expiry. With
    ``recipients`` (section name to who may read it, ``domain.recipients``) every section
    is sealed for its recipients only (``domain.section_seal``); a section not named there
    is sealed for no one.
    """
    if alert.alert_id is not None and alert_id is not None and alert.alert_id != alert_id:
        raise ValidationError(
            "conflicting alert ids", (f"alert_id: {alert.alert_id} != {alert_id}",)
        )
    if issued_at.tzinfo is None:
        raise ValidationError("invalid seal", ("issued_at: must carry a time zone",))
    issued_at = issued_at.astimezone(UTC)
    if alert.expires_at <= issued_at:
        raise ValidationError("invalid seal", ("expires_at: must be after the issue time",))
    header = Header(
        origin=alert.origin,
        alert_type=alert.alert_type,
        alert_id=alert.alert_id or alert_id or uuid.uuid4().hex,
        version=alert.version,
        message_id=message_id,
        operation=alert.operation,
        issued_at=issued_at,
        expires_at=alert.expires_at.astimezone(UTC),
        handling_code=alert.handling_code,
        source_reliability=alert.source_reliability,
        information_reliability=alert.information_reliability,
        priority=alert.priority,
        action_on_hit=alert.action_on_hit,
        warning_markers=tuple(alert.warning_markers),
        cancel_reason=alert.cancel_reason,
        key_id=key_id,
        schema_fingerprint=envelope_fingerprint(),
        language=alert.language,
    )
    contents = [
        (name, encode_record(section_schema_name(alert.alert_type, name), record))
        for name, record in alert.section_records().items()
    ]
    if recipients is not None:
        plain: list[Plain] = [
            (_context(header, name), content, recipients.get(name, ()))
            for name, content in contents
        ]
        contents = [
            (name, sealed) for (name, _), sealed in zip(contents, seal_sections(plain), strict=True)
        ]
    return sign(header, contents, signing_key, salt=salt)


def _context(header: Header, name: str) -> SectionContext:
    return SectionContext(
        header.origin,
        header.alert_type,
        header.alert_id,
        header.version,
        header.message_id,
        name,
    )


def _layouts() -> frozenset[tuple[AlertType, Operation, tuple[str, ...]]]:
    """Every valid (type, operation, section names): ordered subsets; none for a CANCEL."""
    valid: set[tuple[AlertType, Operation, tuple[str, ...]]] = set()
    for alert_type, names in SECTIONS.items():
        valid.add((alert_type, Operation.CANCEL, ()))
        for mask in range(1 << len(names)):
            subset = tuple(name for i, name in enumerate(names) if mask >> i & 1)
            valid.add((alert_type, Operation.CREATE, subset))
            valid.add((alert_type, Operation.UPDATE, subset))
    return frozenset(valid)


_LAYOUTS: Final = _layouts()


def _check_layout(header: Header, sections: Sequence[Section]) -> None:
    """Section names are known for the type, unique and in canonical order; CANCEL has none."""
    if (header.alert_type, header.operation, tuple(s.name for s in sections)) in _LAYOUTS:
        return
    if header.operation is Operation.CANCEL:
        if sections:
            raise SignatureError("a CANCEL carries no sections", SignatureProblem.SECTION_LAYOUT)
        return
    canonical = SECTIONS[header.alert_type]
    position = -1
    for section in sections:
        try:
            index = canonical.index(section.name)
        except ValueError:
            raise SignatureError(
                f"{header.alert_type} has no section {section.name!r}",
                SignatureProblem.SECTION_LAYOUT,
            ) from None
        if index <= position:
            raise SignatureError(
                f"section {section.name!r} repeated or out of canonical order",
                SignatureProblem.SECTION_LAYOUT,
            )
        position = index


def verify(envelope: Envelope, public_key: PublicKey) -> None:
    """Check ``envelope`` was sealed with ``public_key`` and every present section is intact.

    Raises ``SignatureError`` (with a ``reason``) on any mismatch; redacted sections pass
    on their signed digests. Whether the key was valid at issue time is the trust
    store's question: see ``verify_trusted``.
    """
    if not signature_holds(signed_message(envelope, public_key), public_key.raw):
        raise bad_signature(envelope.header)


def signature_holds(signed: bytes, public_key: bytes) -> bool:
    """Whether ``signed`` (signature || message) verifies under the raw Ed25519 ``public_key``.

    What VerifyKey.verify does, without its argument decoding: libsodium's
    crypto_sign_open. A malformed key or a too short ``signed`` does not verify.
    """
    try:
        crypto_sign_open(signed, public_key)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def signed_message(envelope: Envelope, public_key: PublicKey) -> bytes:
    """Every check of ``verify`` but the Ed25519 one; returns signature || signing input.

    For checking the signature elsewhere (``signature_batch``): a failure there is
    ``bad_signature(envelope.header)``.
    """
    header = envelope.header
    if public_key.owner != header.origin or public_key.key_id != header.key_id:
        raise SignatureError(
            f"message names key {header.key_id} of {header.origin}, "
            f"given key {public_key.key_id} of {public_key.owner}",
            SignatureProblem.KEY_MISMATCH,
        )
    fingerprint = registry().by_fingerprint.get(header.schema_fingerprint)
    if fingerprint is None or fingerprint.name != ENVELOPE_SCHEMA:
        raise SignatureError(
            f"signed schema fingerprint {header.schema_fingerprint.hex()} is no envelope schema",
            SignatureProblem.UNKNOWN_SCHEMA,
        )
    _check_layout(header, envelope.sections)
    message = checked_signing_input(envelope)
    if message is None:
        message = _checked_signing_input_python(envelope)
    signature = envelope.signature
    if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
        raise bad_signature(header)
    return signature + message


def bad_signature(header: Header) -> SignatureError:
    """The error of a signature that does not verify on the message ``header`` heads."""
    return SignatureError(
        f"signature of {header.origin} (key {header.key_id}) does not verify on message "
        f"{header.message_id}",
        SignatureProblem.BAD_SIGNATURE,
    )


def _checked_signing_input_python(envelope: Envelope) -> bytes:
    """The signing input of ``envelope``, checking every present section against its digest.

    The reference of the compiled ``checked_signing_input``, and the path of every message
    it declines: this one raises ``SignatureError`` with the precise reason.
    """
    header = envelope.header
    sections = envelope.sections
    try:
        parts = _header_input(header, len(sections))
        prefix = SECTION_TAG + parts[3] + parts[5]  # the length-prefixed alert and message ids
    except (KeyError, TypeError, ValueError, OverflowError, struct.error) as exc:
        raise SignatureError(
            f"header of message {header.message_id} cannot be put in signing form: {exc}",
            SignatureProblem.BAD_SIGNATURE,
        ) from exc
    # The section list of the signing input is built while each digest is checked; the
    # result is ``signing_input(header, sections)`` (the test vector holds both to its bytes).
    append = parts.append
    for section in sections:
        name = section.name
        coded_name = _CODED[name] if name in _CODED else framing.text(name)
        digest = section.digest
        append(coded_name)
        append(digest)
        if len(digest) != DIGEST_SIZE:
            raise SignatureError(
                f"section {name}: digest must have {DIGEST_SIZE} bytes",
                SignatureProblem.DIGEST_MISMATCH,
            )
        content = section.content
        salt = section.salt
        if content is None:
            if salt is not None:
                raise SignatureError(
                    f"section {name}: redacted but carries a salt",
                    SignatureProblem.DIGEST_MISMATCH,
                )
            continue
        if salt is None or len(salt) != SALT_SIZE:
            raise SignatureError(
                f"section {name}: content without a {SALT_SIZE}-byte salt",
                SignatureProblem.DIGEST_MISMATCH,
            )
        expected = _sha256(
            b"".join((prefix, coded_name, _LP16, salt, _U32(len(content)), content))
        ).digest()
        if expected != digest:
            raise SignatureError(
                f"section {name}: content does not match its signed digest",
                SignatureProblem.DIGEST_MISMATCH,
            )
    return b"".join(parts)


def verify_trusted(envelope: Envelope, trust: TrustStore) -> PublicKey:
    """Verify with the origin's key named in the header, which must be valid at issue time.

    Raises ``KeyNotValidError`` or ``SignatureError``; returns the key used.
    """
    header = envelope.header
    key = trust.key_for(header.origin, header.key_id, header.issued_at)
    verify(envelope, key)
    return key


def redact(envelope: Envelope, keep: Iterable[str]) -> Envelope:
    """``envelope`` with the content and salt of every section not in ``keep`` removed."""
    kept = frozenset(keep)
    return Envelope(
        envelope.header,
        tuple(s if s.name in kept else s.without_content() for s in envelope.sections),
        envelope.signature,
    )


def section_content(envelope: Envelope, name: str) -> dict[str, Any]:
    """The decoded record of present section ``name`` (verify the envelope first).

    A sealed section is refused here (``DecodeError``): a recipient opens it with
    ``domain.sealed_reading.read_sections``.
    """
    section = envelope.section(name)
    if section is None:
        raise DecodeError(f"message {envelope.header.message_id} has no section {name!r}")
    if section.content is None:
        raise DecodeError(f"section {name!r} of message {envelope.header.message_id} is redacted")
    return decode_section(envelope.header.alert_type, name, section.content)


def decode_section(alert_type: AlertType, name: str, content: bytes) -> dict[str, Any]:
    """The record of section ``name`` from its single-object bytes, which must be its schema's."""
    schema_name, record = decode_record(content)
    try:
        expected = section_schema_name(alert_type, name)
    except Exception as exc:
        raise DecodeError(f"section {name!r} is not a section of the alert type") from exc
    if schema_name != expected:
        raise DecodeError(f"section {name!r} holds a {schema_name} record, expected {expected}")
    return record
