"""A post's copy of a section at rest: encrypted under a key of its own, kept elsewhere.

Each stored version of an alert gets a fresh random 32-byte key per section (and one for
the record's own bytes); the content is ChaCha20-Poly1305 under that key, with associated
data binding it to the origin, the alert id, the version and the section, so that a
ciphertext moved to another row or section does not open. The keys live apart from the
content (``adapters.post_keys``): destroying them is the erasure (crypto-shredding), and
any copy of the content taken before (a backup, a write-ahead log, a stolen disk) stays
closed.

These keys are the post's own, not the origin's section key of ``domain.section_seal``:
that one opens every copy of the record outside the post (feeds, state topics, the hub's
backups), and the post's private encryption key, which lives for years, unwraps it again
from any of them. A local key opens the local copy only, and nothing else can re-create it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from border_exchange.domain import framing

AT_REST_TAG: Final = b"border-exchange/post-at-rest/v1\x00"
KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
RECORD: Final = "*record"
"""The name the record's own bytes are kept under (no section has a name starting ``*``)."""


class NotOpened(Exception):
    """A stored ciphertext that does not open with its key at its place (tampered or moved)."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where a stored ciphertext belongs: what its associated data binds it to."""

    origin: str
    alert_id: str
    version: int
    section: str


@lru_cache(maxsize=1024)
def _version_prefix(origin: str, alert_id: str, version: int) -> bytes:
    """The associated data shared by every part of one stored version (computed once)."""
    return AT_REST_TAG + framing.text(origin) + framing.text(alert_id) + struct.pack(">i", version)


def _associated(place: Place) -> bytes:
    return _version_prefix(place.origin, place.alert_id, place.version) + framing.text(
        place.section
    )


def fresh_key() -> bytes:
    """A new random key for one stored section (used for one plaintext only)."""
    return os.urandom(KEY_SIZE)


def seal_local(key: bytes, place: Place, plaintext: bytes) -> bytes:
    """``nonce || ChaCha20-Poly1305(key, nonce, plaintext, AD(place))``."""
    nonce = os.urandom(NONCE_SIZE)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, _associated(place))


def seal_version(
    origin: str, alert_id: str, version: int, plaintexts: Mapping[str, bytes]
) -> list[tuple[str, bytes, bytes]]:
    """``(section, key, seal_local(key, place, plaintext))`` for each plaintext of one
    alert version, each under a fresh key: ``seal_local``'s result, made at once for
    the version (one draw of randomness for every key and nonce, the associated data's
    common part once), as a bulk store needs it."""
    common = _version_prefix(origin, alert_id, version)
    step = KEY_SIZE + NONCE_SIZE
    randomness = os.urandom(step * len(plaintexts))
    sealed: list[tuple[str, bytes, bytes]] = []
    for number, (section, plaintext) in enumerate(plaintexts.items()):
        at = number * step
        key, nonce = randomness[at : at + KEY_SIZE], randomness[at + KEY_SIZE : at + step]
        ciphertext = ChaCha20Poly1305(key).encrypt(nonce, plaintext, common + framing.text(section))
        sealed.append((section, key, nonce + ciphertext))
    return sealed


def open_local(key: bytes, place: Place, sealed: bytes) -> bytes:
    """The plaintext ``seal_local`` sealed at ``place``; raises ``NotOpened``."""
    try:
        return ChaCha20Poly1305(key).decrypt(
            sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], _associated(place)
        )
    except (InvalidTag, ValueError) as exc:
        raise NotOpened(f"{place.section} of {place.origin}/{place.alert_id}") from exc
