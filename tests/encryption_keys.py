"""Fresh recipient encryption keys for tests: the private half and its trust store entry."""

from __future__ import annotations

from datetime import datetime

from border_exchange.adapters.keyfiles import generate_encryption_key
from border_exchange.domain.section_seal import RecipientPrivateKey
from border_exchange.domain.trust import EncryptionAlgorithm, EncryptionKey


def encryption_key(
    owner: str,
    key_id: str,
    valid_from: datetime,
    valid_until: datetime,
    algorithm: EncryptionAlgorithm = EncryptionAlgorithm.X25519,
) -> tuple[RecipientPrivateKey, EncryptionKey]:
    """A new key ``key_id`` of ``owner``: its private half and the public key the trust
    store lists, valid from ``valid_from`` until ``valid_until``."""
    private, raw = generate_encryption_key(key_id, algorithm)
    return private, EncryptionKey(owner, key_id, algorithm, raw, valid_from, valid_until)
