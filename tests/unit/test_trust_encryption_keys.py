"""Recipient encryption keys in the trust store: validity, rotation, revocation, signed entries."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from nacl.signing import SigningKey

from border_exchange.domain.trust import EncryptionAlgorithm, parse_trust_store
from border_exchange.domain.trust_governance import entry_digest
from border_exchange.errors import KeyNotValidError, KeyProblem, TrustStoreError

NOW = datetime.now(UTC).replace(microsecond=0)
SIGNING = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
OLD = base64.b64encode(bytes(range(32))).decode()
NEW = base64.b64encode(bytes(range(1, 33))).decode()
HYBRID = base64.b64encode(bytes(1216)).decode()


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def document(extra: str = "") -> str:
    """CAF with an encryption key rotated 10 days ago (old one still valid 20 more days)."""
    return f"""
version: 1
participants:
  - id: CAF
    name: Police nationale centrafricaine
    kind: NATIONAL_SERVICE
    keys:
      - key_id: CAF-sign
        public_key: "{SIGNING}"
        valid_from: {_iso(NOW - timedelta(days=100))}
        valid_until: {_iso(NOW + timedelta(days=100))}
    encryption_keys:
      - key_id: CAF-enc-1
        public_key: "{OLD}"
        valid_from: {_iso(NOW - timedelta(days=100))}
        valid_until: {_iso(NOW + timedelta(days=20))}
      - key_id: CAF-enc-2
        algorithm: X25519
        public_key: "{NEW}"
        valid_from: {_iso(NOW - timedelta(days=10))}
        valid_until: {_iso(NOW + timedelta(days=300))}
{extra}"""


def test_encryption_keys_are_read_with_their_algorithm() -> None:
    store = parse_trust_store(document())
    keys = store.participants["CAF"].encryption_keys
    assert [(k.key_id, k.algorithm, k.raw[:2]) for k in keys] == [
        ("CAF-enc-1", EncryptionAlgorithm.X25519, b"\x00\x01"),
        ("CAF-enc-2", EncryptionAlgorithm.X25519, b"\x01\x02"),
    ]


def test_a_rotated_key_stops_being_wrapped_to_at_once() -> None:
    store = parse_trust_store(document())
    assert store.encryption_key_for("CAF", NOW).key_id == "CAF-enc-2"
    assert store.encryption_key_for("CAF", NOW - timedelta(days=11)).key_id == "CAF-enc-1"


def test_a_revoked_key_is_not_wrapped_to_and_none_left_is_refused() -> None:
    revoked = document().replace(
        f"valid_until: {_iso(NOW + timedelta(days=300))}",
        f"valid_until: {_iso(NOW + timedelta(days=300))}\n"
        f"        revoked_at: {_iso(NOW - timedelta(hours=1))}\n"
        "        revocation_reason: post laptop stolen",
    )
    store = parse_trust_store(revoked)
    assert store.encryption_key_for("CAF", NOW).key_id == "CAF-enc-1"
    later = NOW + timedelta(days=21)
    with pytest.raises(KeyNotValidError, match="CAF has no encryption key valid") as caught:
        store.encryption_key_for("CAF", later)
    assert caught.value.reason is KeyProblem.UNKNOWN_KEY
    key = store.participants["CAF"].encryption_keys[1]
    problem = key.problem_at(NOW)
    assert problem is not None
    assert problem[0] is KeyProblem.KEY_REVOKED
    assert "post laptop stolen" in problem[1]
    with pytest.raises(KeyNotValidError) as unknown:
        store.encryption_key_for("TCD", NOW)
    assert unknown.value.reason is KeyProblem.UNKNOWN_PARTICIPANT


def test_a_hybrid_post_quantum_key_has_its_own_size() -> None:
    hybrid = document().replace(
        f'algorithm: X25519\n        public_key: "{NEW}"',
        f'algorithm: MLKEM768-X25519\n        public_key: "{HYBRID}"',
    )
    key = parse_trust_store(hybrid).encryption_key_for("CAF", NOW)
    assert key.algorithm is EncryptionAlgorithm.MLKEM768_X25519
    assert len(key.raw) == 1216
    with pytest.raises(TrustStoreError, match=r"encryption_keys\[1\]\.public_key: must be base64"):
        parse_trust_store(hybrid.replace(HYBRID, NEW))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("CAF-enc-2", "CAF-enc-1"), "participants[0].encryption_keys[1].key_id: duplicate key id"),
        (("CAF-enc-2", "CAF-sign"), "participants[0].encryption_keys[1].key_id: duplicate key id"),
        (("algorithm: X25519", "algorithm: RSA"), "participants[0].encryption_keys[1].algorithm:"),
        ((f'"{OLD}"', '"AAAA"'), "participants[0].encryption_keys[0].public_key: must be base64"),
        (
            ("algorithm: X25519", "algorithm: X25519\n        purpose: fun"),
            "participants[0].encryption_keys[1].purpose: unknown field",
        ),
        (
            (f"valid_from: {_iso(NOW - timedelta(days=10))}", "valid_from: yesterday"),
            "participants[0].encryption_keys[1].valid_from: not an ISO 8601 time",
        ),
        (("name: Police", "name: ''\n    x: Police"), "participants[0].name: must be a non-empty"),
        (("version: 1", "version: 2"), "version: must be 1"),
        (("participants:", "participants: 7\nx:"), "participants: must be a list"),
    ],
)
def test_a_bad_document_names_the_path_and_the_problem(
    change: tuple[str, str], problem: str
) -> None:
    with pytest.raises(TrustStoreError) as caught:
        parse_trust_store(document().replace(*change, 1))
    assert problem in str(caught.value)


def test_the_signed_entry_covers_the_encryption_keys() -> None:
    """An operator who swaps a recipient's encryption key breaks the participant's signature."""
    store = parse_trust_store(document())
    caf = store.participants["CAF"]
    swapped = replace(
        caf,
        encryption_keys=(caf.encryption_keys[0], replace(caf.encryption_keys[1], raw=bytes(32))),
    )
    assert entry_digest(swapped) != entry_digest(caf)
    without = replace(caf, encryption_keys=())
    assert entry_digest(without) != entry_digest(caf)
