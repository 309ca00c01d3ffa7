"""Sealing sections for their permitted recipients, and opening them as one of them.

The origin encrypts each section with its own 32-byte key (ChaCha20-Poly1305, RFC 8439),
with associated data binding it to the origin, the alert type, the alert id, the version,
the message id, the section name and the commitment. Sections sealed for the same
recipients form a group: a fresh random 32-byte group key, wrapped once per recipient with
HPKE (RFC 9180, base mode: DHKEM(X25519, HKDF-SHA256) or the hybrid ML-KEM-768 + X25519
KEM, HKDF-SHA256, ChaCha20-Poly1305) in the group's first section, whose ``info`` binds that
section's context, the recipient, its key id and the agreement that permits it. Each
section's key is HKDF-SHA256 of the group key over the section's own context, so no two
sections, messages or versions share a key, and each is used for one encryption. The other
sections of the group name the carrier in ``key_source`` and carry no wraps. A record
without ``key_source`` (written before groups) holds the section key itself in its wraps,
and still opens.

Why groups: a wanted person sealed for four readers carried 28 wraps of about 110 bytes
(each section for each reader), 3.6 times the record in clear, and Kafka's cost is by the
byte; one wrap per reader per group leaves the record about 1.5 times its size in clear.

The commitment, SHA-256 over a tag, the ids, the section name, the key and the plaintext,
is in the sealed record, which is the section's content; the section digest the origin
signs covers the whole record (ciphertext, wrapped keys, commitment, key source). A
recipient that opens a section recomputes the commitment from the key it derived and the
plaintext it decrypted: since the hash binds both, every recipient that accepts a section
has the plaintext the origin signed, whatever key an origin wrapped for whom. The hub holds
no key: it verifies the digests over the sealed bytes and routes without decrypting.

Opening raises ``SectionError`` with a ``SectionProblem``; it never returns a plaintext
it did not check.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

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
"""The ``info`` tag of a wrap of one section's key (records without ``key_source``)."""
GROUP_WRAP_TAG: Final = b"border-exchange/group-key/v2\x00"
"""The ``info`` tag of a wrap of a group key, in the section that carries the group."""
SECTION_KEY_TAG: Final = b"border-exchange/section-key-from-group/v2\x00"
"""The HKDF ``info`` tag of a section key derived from its group key."""
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


Plain = tuple[SectionContext, bytes, Sequence[Recipient]]
"""A section to seal: where it belongs, its single-object encoded record, its permitted
readers (sections with the same ones, in any order, share a group)."""


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
    *,
    tag: bytes = GROUP_WRAP_TAG,
) -> bytes:
    """The HPKE ``info`` of one wrap: the section that carries it, the recipient, its key,
    the agreement, the section's commitment. ``tag`` is ``WRAP_TAG`` for the wrap of one
    section's own key (records without ``key_source``)."""
    agreement = b"\x00" if agreement_id is None else b"\x01" + framing.text(agreement_id)
    return (
        tag
        + _context_bytes(context)
        + framing.text(participant)
        + framing.text(key_id)
        + agreement
        + committed
    )


def section_key_of(group_key: bytes, context: SectionContext) -> bytes:
    """The key of the section ``context`` names, derived from its group's key (HKDF-SHA256,
    no salt, ``info`` the tag and the section's context)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=None,
        info=SECTION_KEY_TAG + _context_bytes(context),
    ).derive(group_key)


@lru_cache(maxsize=256)
def _public_key(algorithm: EncryptionAlgorithm, raw: bytes) -> Any:
    if algorithm is EncryptionAlgorithm.X25519:
        return X25519PublicKey.from_public_bytes(raw)
    return hpke.MLKEM768X25519PublicKey(
        MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM768_PUBLIC]),
        X25519PublicKey.from_public_bytes(raw[_MLKEM768_PUBLIC:]),
    )


def seal_sections(
    sections: Sequence[Plain], *, group_keys: Sequence[bytes] | None = None
) -> list[bytes]:
    """The ``bx.SealedSection`` record of each of ``sections``, in order.

    Sections with the same recipients (in any order) share a group: the first of them
    carries the group key wrapped for each recipient, and every section of the group names
    it in ``key_source``. ``group_keys`` are fresh random bytes unless given, one per group
    in order of first appearance (test vectors); never reuse one.
    """
    groups: dict[frozenset[Recipient], tuple[str, bytes]] = {}
    given = iter(group_keys or ())
    sealed = []
    for context, plaintext, recipients in sections:
        who = frozenset(recipients)
        carrier = groups.get(who)
        if carrier is None:
            group_key = next(given, None) if group_keys is not None else os.urandom(KEY_SIZE)
            if group_key is None or len(group_key) != KEY_SIZE:
                raise ValueError(f"a group key has {KEY_SIZE} bytes, one per group")
            carrier = groups[who] = (context.name, group_key)
        carrier_name, group_key = carrier
        key = section_key_of(group_key, context)
        nonce = os.urandom(NONCE_SIZE)
        committed = commitment(context, key, plaintext)
        ciphertext = ChaCha20Poly1305(key).encrypt(
            nonce, plaintext, associated_data(context, committed)
        )
        wraps = (
            _wraps(context, group_key, recipients, committed)
            if carrier_name == context.name
            else []
        )
        record = {
            "aead": "CHACHA20_POLY1305",
            "nonce": nonce,
            "ciphertext": ciphertext,
            "commitment": committed,
            "recipients": wraps,
            "key_source": carrier_name,
        }
        sealed.append(encode_record(SEALED_SCHEMA, record))
    return sealed


def seal_section(
    context: SectionContext,
    plaintext: bytes,
    recipients: Iterable[Recipient],
    *,
    group_key: bytes | None = None,
) -> bytes:
    """The ``bx.SealedSection`` record of ``plaintext`` alone (a group of one), readable by
    ``recipients`` only."""
    keys = None if group_key is None else [group_key]
    return seal_sections([(context, plaintext, tuple(recipients))], group_keys=keys)[0]


def _wraps(
    context: SectionContext,
    group_key: bytes,
    recipients: Iterable[Recipient],
    committed: bytes,
) -> list[dict[str, Any]]:
    wraps = []
    for recipient in recipients:
        public = recipient.key
        info = wrap_info(context, public.owner, public.key_id, recipient.agreement_id, committed)
        wrapped = _SUITES[public.algorithm].encrypt(
            group_key, _public_key(public.algorithm, public.raw), info=info
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
    return wraps


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


def recipients_of(
    sealed: bytes, others: Mapping[str, bytes | None] | None = None
) -> tuple[tuple[str, str], ...]:
    """The (participant, key id) of every wrap that opens ``sealed``, without opening
    anything: its own, or those of the section of ``others`` (the message's sections by
    name) that carries its group; none when that section is not among them."""
    record = _decoded(sealed)
    source = record["key_source"]
    if source is not None and record["recipients"] == [] and others is not None:
        carrier = others.get(source)
        record = _decoded(carrier) if carrier is not None else record
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
    *,
    others: Mapping[str, bytes | None] | None = None,
) -> Opened:
    """Open ``sealed`` as ``participant`` with one of its ``private_keys``; ``others`` are
    the message's other sections by name (content, or None where redacted), where the
    section that carries its group's wraps is found.

    Raises ``SectionError``: ``MALFORMED`` (not a sealed record, truncated, a key source
    that is no carrier), ``NO_WRAPPED_KEY`` (nothing wrapped for ``participant``, or the
    carrying section is not in the copy), ``UNKNOWN_KEY`` (wrapped only to key ids it holds
    no private key for), ``WRAPPED_KEY_INVALID`` (the wrap does not open with its key and
    this binding), ``CIPHERTEXT_INVALID`` (tampered, or another alert's, version's or
    section's ciphertext), ``COMMITMENT_MISMATCH`` (key and plaintext are not those the
    origin committed to).
    """
    return SectionOpener(participant, tuple(private_keys)).open(context, sealed, others)


@dataclass(slots=True)
class SectionOpener:
    """Opens the sections of messages as ``participant``, unwrapping each group key once."""

    participant: str
    private_keys: tuple[RecipientPrivateKey, ...]
    _unwrapped: dict[tuple[SectionContext, bytes], tuple[str, bytes]] = field(default_factory=dict)
    _carriers: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    """Carrying sections already decoded, by their sealed bytes."""

    def open(
        self,
        context: SectionContext,
        sealed: bytes,
        others: Mapping[str, bytes | None] | None = None,
    ) -> Opened:
        """``open_section`` of ``sealed``, sharing group keys already unwrapped."""
        record = _decoded(sealed)
        name = context.name
        source = record["key_source"]
        if source is None:  # a record from before groups: its wraps hold the section key
            key_id, section_key = self._unwrap(context, record, name, WRAP_TAG)
        else:
            carries = source == name or bool(record["recipients"])  # its group's wraps
            carrier = record if carries else self._carrier(name, source, others)
            carrier_context = context if carries else replace(context, name=source)
            key_id, group_key = self._unwrap(carrier_context, carrier, name, GROUP_WRAP_TAG)
            section_key = section_key_of(group_key, context)
        committed = bytes(record["commitment"])
        try:
            plaintext = ChaCha20Poly1305(section_key).decrypt(
                bytes(record["nonce"]),
                bytes(record["ciphertext"]),
                associated_data(context, committed),
            )
        except (InvalidTag, ValueError) as exc:
            raise SectionError(
                f"section {name}: the ciphertext does not decrypt for alert "
                f"{context.alert_id} version {context.version}, message {context.message_id} "
                f"(tampered or moved)",
                SectionProblem.CIPHERTEXT_INVALID,
            ) from exc
        if commitment(context, section_key, plaintext) != committed:
            raise SectionError(
                f"section {name}: the key wrapped for {self.participant} decrypts to a "
                f"plaintext the origin did not commit to",
                SectionProblem.COMMITMENT_MISMATCH,
            )
        return Opened(plaintext, section_key, key_id)

    def _carrier(
        self, name: str, source: str, others: Mapping[str, bytes | None] | None
    ) -> dict[str, Any]:
        content = None if others is None else others.get(source)
        if content is None:
            raise SectionError(
                f"section {name}: its key is wrapped in section {source}, which this copy "
                f"does not carry",
                SectionProblem.NO_WRAPPED_KEY,
            )
        carrier = self._carriers.get(content)
        if carrier is None:
            carrier = self._carriers[content] = _decoded(content)
        if carrier["key_source"] != source:
            raise SectionError(
                f"section {name}: section {source}, named as its key source, carries no group key",
                SectionProblem.MALFORMED,
            )
        return carrier

    def _unwrap(
        self, context: SectionContext, record: dict[str, Any], name: str, tag: bytes
    ) -> tuple[str, bytes]:
        """The (key id, key) wrapped for the participant in ``record``, which belongs to
        the section ``context`` names; ``name`` is the section being opened."""
        participant = self.participant
        committed = bytes(record["commitment"])
        cached = self._unwrapped.get((context, committed))
        if cached is not None:
            return cached
        mine = [wrap for wrap in record["recipients"] if wrap["participant"] == participant]
        if not mine:
            raise SectionError(
                f"section {name}: no key is wrapped for {participant}",
                SectionProblem.NO_WRAPPED_KEY,
            )
        held = {key.key_id: key for key in self.private_keys}
        usable = [wrap for wrap in mine if wrap["key_id"] in held]
        if not usable:
            wrapped_to = ", ".join(sorted(wrap["key_id"] for wrap in mine))
            raise SectionError(
                f"section {name}: wrapped for {participant} to key {wrapped_to}, which this "
                f"post holds no private key for",
                SectionProblem.UNKNOWN_KEY,
            )
        wrap = usable[0]
        private = held[wrap["key_id"]]
        info = wrap_info(
            context, participant, wrap["key_id"], wrap["agreement_id"], committed, tag=tag
        )
        try:
            key = _SUITES[private.algorithm].decrypt(
                bytes(wrap["wrapped"]), private.private, info=info
            )
        except (InvalidTag, ValueError, TypeError) as exc:
            raise SectionError(
                f"section {name}: the key wrapped to {wrap['key_id']} does not open for this "
                f"section and recipient",
                SectionProblem.WRAPPED_KEY_INVALID,
            ) from exc
        if len(key) != KEY_SIZE:
            raise SectionError(
                f"section {name}: the wrapped key has {len(key)} bytes, not {KEY_SIZE}",
                SectionProblem.WRAPPED_KEY_INVALID,
            )
        self._unwrapped[(context, committed)] = (wrap["key_id"], key)
        return wrap["key_id"], key
