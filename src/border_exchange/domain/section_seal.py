"""Sealing a section for its permitted recipients, and opening it as one of them.

The origin encrypts each section with a fresh random 32-byte key (ChaCha20-Poly1305,
RFC 8439), with associated data binding it to the origin, the alert type, the alert id,
the version, the message id, the section name and the commitment. It wraps that key for
each recipient with HPKE (RFC 9180, base mode: DHKEM(X25519, HKDF-SHA256) or the hybrid
ML-KEM-768 + X25519 KEM, HKDF-SHA256, ChaCha20-Poly1305), whose ``info`` binds the same
context plus the recipient, its key id and the agreement that permits it.

The commitment, SHA-256 over a tag, the ids, the section name, the key and the plaintext,
is in the sealed record, which is the section's content; the section digest the origin
signs covers the whole record (ciphertext, wrapped keys, commitment). A recipient that
opens a section recomputes the commitment from the key it unwrapped and the plaintext it
decrypted: since the hash binds both, every recipient that accepts a section has the
plaintext the origin signed, whatever key an origin wrapped for whom. The hub holds no
key: it verifies the digests over the sealed bytes and routes without decrypting.

Opening raises ``SectionError`` with a ``SectionProblem``; it never returns a plaintext
it did not check.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from border_exchange.domain import framing
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_record, encode_record
from border_exchange.domain.schemas import SINGLE_OBJECT_MAGIC, registry
from border_exchange.domain.trust import EncryptionAlgorithm, EncryptionKey
from border_exchange.errors import DecodeError, SectionError, SectionProblem

SEALED_SCHEMA: Final = "bx.SealedSection"
KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
AD_TAG: Final = b"border-exchange/sealed-section/v1\x00"
WRAP_TAG: Final = b"border-exchange/section-key/v1\x00"
COMMITMENT_TAG: Final = b"border-exchange/section-commitment/v1\x00"

_KDF: Final = hpke.KDF.HKDF_SHA256
_AEAD: Final = hpke.AEAD.CHACHA20_POLY1305
_SUITES: Final[Mapping[EncryptionAlgorithm, hpke.Suite]] = {
    EncryptionAlgorithm.X25519: hpke.Suite(hpke.KEM.X25519, _KDF, _AEAD),
    EncryptionAlgorithm.MLKEM768_X25519: hpke.Suite(hpke.KEM.MLKEM768_X25519, _KDF, _AEAD),
}
_KEM_SYMBOL: Final[Mapping[EncryptionAlgorithm, str]] = {
    EncryptionAlgorithm.X25519: "X25519",
    EncryptionAlgorithm.MLKEM768_X25519: "MLKEM768_X25519",
}
_MLKEM768_PUBLIC: Final = 1184

PrivateKey = X25519PrivateKey | hpke.MLKEM768X25519PrivateKey


@dataclass(frozen=True, slots=True)
class SectionContext:
    """Where a section belongs: what its associated data and wraps bind it to."""

    origin: str
    alert_type: AlertType
    alert_id: str
    version: int
    message_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Recipient:
    """A participant to wrap a section key for: its encryption key and the agreement."""

    key: EncryptionKey
    agreement_id: str | None


@dataclass(frozen=True, slots=True)
class RecipientPrivateKey:
    """One private encryption key a participant holds (the current one or a retired one)."""

    key_id: str
    algorithm: EncryptionAlgorithm
    private: PrivateKey
    halves: tuple[MLKEM768PrivateKey, X25519PrivateKey] | None = None
    """The hybrid key's ML-KEM-768 and X25519 halves, to store it (HPKE's object hides them)."""


@dataclass(frozen=True, slots=True)
class Opened:
    """A section opened: the plaintext (a single-object record) and the key it was under."""

    plaintext: bytes
    section_key: bytes
    key_id: str


def _context_bytes(context: SectionContext) -> bytes:
    return b"".join(
        (
            framing.text(context.origin),
            framing.text(context.alert_type.value),
            framing.text(context.alert_id),
            struct.pack(">i", context.version),
            framing.text(context.message_id),
            framing.text(context.name),
        )
    )


def commitment(context: SectionContext, section_key: bytes, plaintext: bytes) -> bytes:
    """SHA-256 binding the section key and plaintext to the section (key commitment)."""
    return hashlib.sha256(
        COMMITMENT_TAG
        + framing.text(context.alert_id)
        + framing.text(context.message_id)
        + framing.text(context.name)
        + len(section_key).to_bytes(4, "big")
        + section_key
        + len(plaintext).to_bytes(4, "big")
        + plaintext
    ).digest()


def associated_data(context: SectionContext, committed: bytes) -> bytes:
    """The AEAD associated data of a section: its context and its commitment."""
    return AD_TAG + _context_bytes(context) + committed


def wrap_info(
    context: SectionContext,
    participant: str,
    key_id: str,
    agreement_id: str | None,
    committed: bytes,
) -> bytes:
    """The HPKE ``info`` of one wrap: the section, the recipient, its key, the agreement."""
    agreement = b"\x00" if agreement_id is None else b"\x01" + framing.text(agreement_id)
    return (
        WRAP_TAG
        + _context_bytes(context)
        + framing.text(participant)
        + framing.text(key_id)
        + agreement
        + committed
    )


@lru_cache(maxsize=256)
def _public_key(algorithm: EncryptionAlgorithm, raw: bytes) -> Any:
    if algorithm is EncryptionAlgorithm.X25519:
        return X25519PublicKey.from_public_bytes(raw)
    return hpke.MLKEM768X25519PublicKey(
        MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM768_PUBLIC]),
        X25519PublicKey.from_public_bytes(raw[_MLKEM768_PUBLIC:]),
    )


def seal_section(
    context: SectionContext,
    plaintext: bytes,
    recipients: Iterable[Recipient],
    *,
    section_key: bytes | None = None,
) -> bytes:
    """The ``bx.SealedSection`` record of ``plaintext``, readable by ``recipients`` only.

    ``section_key`` is fresh random bytes unless given (test vectors); never reuse one.
    """
    key = os.urandom(KEY_SIZE) if section_key is None else section_key
    if len(key) != KEY_SIZE:
        raise ValueError(f"a section key has {KEY_SIZE} bytes")
    nonce = os.urandom(NONCE_SIZE)
    committed = commitment(context, key, plaintext)
    ciphertext = ChaCha20Poly1305(key).encrypt(
        nonce, plaintext, associated_data(context, committed)
    )
    wraps = []
    for recipient in recipients:
        public = recipient.key
        info = wrap_info(context, public.owner, public.key_id, recipient.agreement_id, committed)
        wrapped = _SUITES[public.algorithm].encrypt(
            key, _public_key(public.algorithm, public.raw), info=info
        )
        wraps.append(
            {
                "participant": public.owner,
                "key_id": public.key_id,
                "kem": _KEM_SYMBOL[public.algorithm],
                "agreement_id": recipient.agreement_id,
                "wrapped": wrapped,
            }
        )
    return encode_record(
        SEALED_SCHEMA,
        {
            "aead": "CHACHA20_POLY1305",
            "nonce": nonce,
            "ciphertext": ciphertext,
            "commitment": committed,
            "recipients": wraps,
        },
    )


@lru_cache(maxsize=1)
def _sealed_fingerprints() -> frozenset[bytes]:
    return frozenset(
        fingerprint
        for fingerprint, schema in registry().by_fingerprint.items()
        if schema.name == SEALED_SCHEMA
    )


def is_sealed(content: bytes) -> bool:
    """Whether a section's content is a sealed record (else it is the section in clear)."""
    return content[:2] == SINGLE_OBJECT_MAGIC and content[2:10] in _sealed_fingerprints()


def recipients_of(sealed: bytes) -> tuple[tuple[str, str], ...]:
    """The (participant, key id) of every wrap in a sealed record, without opening anything."""
    record = _decoded(sealed)
    return tuple((wrap["participant"], wrap["key_id"]) for wrap in record["recipients"])


def _decoded(sealed: bytes) -> dict[str, Any]:
    try:
        name, record = decode_record(sealed)
    except DecodeError as exc:
        raise SectionError(f"sealed section is malformed: {exc}", SectionProblem.MALFORMED) from exc
    if name != SEALED_SCHEMA:
        raise SectionError(f"a {name} record is not a sealed section", SectionProblem.MALFORMED)
    return record


def open_section(
    context: SectionContext,
    sealed: bytes,
    participant: str,
    private_keys: Sequence[RecipientPrivateKey],
) -> Opened:
    """Open ``sealed`` as ``participant`` with one of its ``private_keys``.

    Raises ``SectionError``: ``MALFORMED`` (not a sealed record, truncated),
    ``NO_WRAPPED_KEY`` (nothing wrapped for ``participant``), ``UNKNOWN_KEY`` (wrapped only
    to key ids it holds no private key for), ``WRAPPED_KEY_INVALID`` (the wrap does not open
    with its key and this binding), ``CIPHERTEXT_INVALID`` (tampered, or another alert's,
    version's or section's ciphertext), ``COMMITMENT_MISMATCH`` (key and plaintext are not
    those the origin committed to).
    """
    record = _decoded(sealed)
    name = context.name
    mine = [wrap for wrap in record["recipients"] if wrap["participant"] == participant]
    if not mine:
        raise SectionError(
            f"section {name}: no key is wrapped for {participant}", SectionProblem.NO_WRAPPED_KEY
        )
    held = {key.key_id: key for key in private_keys}
    usable = [wrap for wrap in mine if wrap["key_id"] in held]
    if not usable:
        wrapped_to = ", ".join(sorted(wrap["key_id"] for wrap in mine))
        raise SectionError(
            f"section {name}: wrapped for {participant} to key {wrapped_to}, which this post "
            f"holds no private key for",
            SectionProblem.UNKNOWN_KEY,
        )
    committed = bytes(record["commitment"])
    wrap = usable[0]
    private = held[wrap["key_id"]]
    info = wrap_info(context, participant, wrap["key_id"], wrap["agreement_id"], committed)
    try:
        section_key = _SUITES[private.algorithm].decrypt(
            bytes(wrap["wrapped"]), private.private, info=info
        )
    except (InvalidTag, ValueError, TypeError) as exc:
        raise SectionError(
            f"section {name}: the key wrapped to {wrap['key_id']} does not open for this "
            f"section and recipient",
            SectionProblem.WRAPPED_KEY_INVALID,
        ) from exc
    if len(section_key) != KEY_SIZE:
        raise SectionError(
            f"section {name}: the wrapped key has {len(section_key)} bytes, not {KEY_SIZE}",
            SectionProblem.WRAPPED_KEY_INVALID,
        )
    try:
        plaintext = ChaCha20Poly1305(section_key).decrypt(
            bytes(record["nonce"]),
            bytes(record["ciphertext"]),
            associated_data(context, committed),
        )
    except (InvalidTag, ValueError) as exc:
        raise SectionError(
            f"section {name}: the ciphertext does not decrypt for alert {context.alert_id} "
            f"version {context.version}, message {context.message_id} (tampered or moved)",
            SectionProblem.CIPHERTEXT_INVALID,
        ) from exc
    if commitment(context, section_key, plaintext) != committed:
        raise SectionError(
            f"section {name}: the key wrapped for {participant} decrypts to a plaintext the "
            f"origin did not commit to",
            SectionProblem.COMMITMENT_MISMATCH,
        )
    return Opened(plaintext, section_key, wrap["key_id"])
