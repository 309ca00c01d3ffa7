"""The trust store: which key of P was valid at time T, and what is wrong with a bad document.

The document and the times asked about are one fixed calendar (2025-2027): ``key_for``
and ``current_key`` take the time as an argument and nothing here reads the run's clock,
so the verdicts are the same on any day (the suite's shifted run checks that).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from border_exchange.adapters.trust_file import load_trust_store
from border_exchange.domain.catalog import ParticipantKind
from border_exchange.domain.trust import HUB, parse_trust_store
from border_exchange.errors import KeyNotValidError, KeyProblem, TrustStoreError

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(1, 33))).decode()

DOCUMENT = f"""
version: 1
hub:
  keys:
    - key_id: hub-2026-01
      public_key: "{KEY_A}"
      valid_from: 2026-01-01T00:00:00Z
      valid_until: 2027-01-01T00:00:00Z
  auditors: [oversight]
participants:
  - id: CAF
    name: Police nationale centrafricaine
    kind: NATIONAL_SERVICE
    status: active
    posts: [bangui-port, mbaiki]
    keys:
      - key_id: CAF-2025-01
        public_key: "{KEY_A}"
        valid_from: 2025-01-01T00:00:00Z
        valid_until: 2026-02-01T00:00:00Z
      - key_id: CAF-2026-01
        public_key: "{KEY_B}"
        valid_from: 2026-01-01T00:00:00Z
        valid_until: 2027-01-01T00:00:00Z
        revoked_at: 2026-06-15T12:00:00Z
        revocation_reason: private key file copied by a departed officer
  - id: UN-MINUSCA
    name: MINUSCA Police
    kind: UN_COMPONENT
    keys: []
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


STORE = parse_trust_store(DOCUMENT)


def test_participants_hub_and_keys_are_read() -> None:
    caf = STORE.participants["CAF"]
    assert caf.kind is ParticipantKind.NATIONAL_SERVICE
    assert caf.posts == ("bangui-port", "mbaiki")
    assert [k.key_id for k in caf.keys] == ["CAF-2025-01", "CAF-2026-01"]
    assert STORE.participants["UN-MINUSCA"].kind is ParticipantKind.UN_COMPONENT
    assert STORE.hub.auditors == ("oversight",)
    assert STORE.key_for(HUB, "hub-2026-01", at("2026-05-01")).raw == bytes(range(32))


def test_key_for_returns_the_key_valid_at_the_time() -> None:
    key = STORE.key_for("CAF", "CAF-2026-01", at("2026-03-01"))
    assert key.raw == bytes(range(1, 33))
    assert key.owner == "CAF"


@pytest.mark.parametrize(
    ("key_id", "when", "problem", "words"),
    [
        ("CAF-2026-01", "2025-12-31T23:59:59", KeyProblem.KEY_NOT_YET_VALID, "valid from"),
        ("CAF-2025-01", "2026-02-01T00:00:00", KeyProblem.KEY_EXPIRED, "expired"),
        ("CAF-2026-01", "2026-06-15T12:00:00", KeyProblem.KEY_REVOKED, "departed officer"),
        ("CAF-2099-01", "2026-03-01T00:00:00", KeyProblem.UNKNOWN_KEY, "no key"),
    ],
)
def test_key_for_refuses_a_key_that_does_not_count(
    key_id: str, when: str, problem: KeyProblem, words: str
) -> None:
    with pytest.raises(KeyNotValidError, match=words) as caught:
        STORE.key_for("CAF", key_id, at(when))
    assert caught.value.reason is problem


def test_the_validity_end_is_exclusive_and_the_start_inclusive() -> None:
    STORE.key_for("CAF", "CAF-2025-01", at("2026-01-31T23:59:59.999999"))
    STORE.key_for("CAF", "CAF-2026-01", at("2026-01-01T00:00:00"))


def test_an_unknown_participant_is_refused_with_its_reason() -> None:
    with pytest.raises(KeyNotValidError) as caught:
        STORE.key_for("TCD", "TCD-2026-01", at("2026-03-01"))
    assert caught.value.reason is KeyProblem.UNKNOWN_PARTICIPANT


def test_current_key_is_the_latest_valid_one() -> None:
    assert STORE.current_key("CAF", at("2026-01-15")).key_id == "CAF-2026-01"
    assert STORE.current_key("CAF", at("2025-06-01")).key_id == "CAF-2025-01"
    with pytest.raises(KeyNotValidError):
        STORE.current_key("CAF", at("2026-07-01"))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("CAF-2026-01", "CAF-2025-01"), "participants[0].keys[1].key_id: duplicate key id"),
        ((f'"{KEY_B}"', '"not base64!"'), "participants[0].keys[1].public_key: must be base64"),
        (
            ("2027-01-01T00:00:00Z\n        revoked", "2025-01-01T00:00:00Z\n        revoked"),
            "participants[0].keys[1].valid_until: must be after valid_from",
        ),
        (("id: UN-MINUSCA", "id: CAF"), "participants[1].id: duplicate participant id"),
        (("id: UN-MINUSCA", "id: Minusca"), "participants[1].id: 'Minusca' is not"),
        (("kind: UN_COMPONENT", "kind: ARMY"), "participants[1].kind: must be NATIONAL_SERVICE"),
    ],
)
def test_a_bad_document_names_the_path_and_the_problem(
    change: tuple[str, str], problem: str
) -> None:
    with pytest.raises(TrustStoreError) as caught:
        parse_trust_store(DOCUMENT.replace(*change, 1))
    assert problem in str(caught.value)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(TrustStoreError, match="time zone"):
        parse_trust_store(
            DOCUMENT.replace("valid_from: 2025-01-01T00:00:00Z", "valid_from: 2025-01-01T00:00:00")
        )


def test_load_trust_store_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "trust.yaml"
    path.write_text(DOCUMENT.replace("version: 1", "version: 2"), encoding="utf-8")
    with pytest.raises(TrustStoreError, match=r"trust\.yaml: .*version: must be 1"):
        load_trust_store(path)
    with pytest.raises(TrustStoreError, match="cannot read"):
        load_trust_store(tmp_path / "missing.yaml")
    path.write_text(DOCUMENT, encoding="utf-8")
    assert set(load_trust_store(path).participants) == {"CAF", "UN-MINUSCA"}
