"""Encryption key files: `keys generate --encryption` writes a key a post loads and opens with."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from border_exchange.adapters.keyfiles import load_encryption_key
from border_exchange.cli.main import main
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.section_seal import (
    Recipient,
    SectionContext,
    open_section,
    seal_section,
)
from border_exchange.domain.trust import EncryptionAlgorithm, parse_trust_store
from border_exchange.errors import KeyNotValidError

CONTEXT = SectionContext("COD", AlertType.VEHICLE_NOTICE, "a-1", 1, "m-1", "owner")


@pytest.mark.parametrize("algorithm", list(EncryptionAlgorithm))
def test_a_generated_key_is_listed_loaded_and_opens_what_is_sealed_to_it(
    algorithm: EncryptionAlgorithm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BX_KEY_PASSPHRASE", "correct horse battery")
    assert (
        main(
            [
                "keys",
                "generate",
                "--participant",
                "CAF",
                "--out",
                str(tmp_path),
                "--key-id",
                "CAF-enc-1",
                "--encryption",
                algorithm.value,
            ]
        )
        == 0
    )
    entry = yaml.safe_load((tmp_path / "CAF-enc-1.pub.yaml").read_text())
    store = parse_trust_store(
        yaml.safe_dump(
            {
                "version": 1,
                "participants": [
                    {
                        "id": "CAF",
                        "name": "CAF",
                        "kind": "NATIONAL_SERVICE",
                        "encryption_keys": entry,
                    }
                ],
            }
        )
    )
    public = store.encryption_key_for("CAF", datetime.now(UTC))
    assert public.algorithm is algorithm
    assert (tmp_path / "CAF-enc-1.pem").stat().st_mode & 0o777 == 0o600
    private = load_encryption_key(tmp_path / "CAF-enc-1.pem", b"correct horse battery")
    assert (private.key_id, private.algorithm) == ("CAF-enc-1", algorithm)
    sealed = seal_section(CONTEXT, b"owner record", [Recipient(public, "COD-CAF")])
    assert open_section(CONTEXT, sealed, "CAF", [private]).plaintext == b"owner record"
    with pytest.raises(KeyNotValidError, match="wrong passphrase"):
        load_encryption_key(tmp_path / "CAF-enc-1.pem", b"not the passphrase")
