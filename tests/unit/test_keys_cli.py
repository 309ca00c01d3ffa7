"""``border-exchange keys``: generated keys load back, their entry joins the trust store."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from nacl.signing import SigningKey

from border_exchange.adapters.keyfiles import (
    load_private_key,
    passphrase_from_env_or_prompt,
    write_private_key,
)
from border_exchange.adapters.trust_file import load_trust_store
from border_exchange.cli.main import main
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import ConfigError, KeyNotValidError, KeyProblem

PASSPHRASE = "sel-de-Mongoumba-2026"


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setenv("BX_KEY_PASSPHRASE", PASSPHRASE)
    return PASSPHRASE.encode()


def generate(out: Path, *extra: str) -> int:
    return main(["keys", "generate", "--participant", "CAF", "--out", str(out), *extra])


def _caf_store(directory: Path, **fields: object) -> TrustStore:
    """The trust store in ``directory``/trust.yaml listing CAF with ``fields`` (its keys)."""
    caf = {"id": "CAF", "name": "Police centrafricaine", "kind": "NATIONAL_SERVICE", **fields}
    path = directory / "trust.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "participants": [caf]}))
    return load_trust_store(path)


def test_generate_writes_an_encrypted_key_and_its_trust_store_entry(
    tmp_path: Path, passphrase: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    # A fixed --valid-from on purpose: the test is about the window derived from it.
    assert (
        generate(tmp_path, "--key-id", "CAF-2026-01", "--valid-from", "2026-01-01T00:00:00Z") == 0
    )
    pem = tmp_path / "CAF-2026-01.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in pem.read_bytes()
    signing_key = load_private_key(pem, passphrase)

    entry = yaml.safe_load((tmp_path / "CAF-2026-01.pub.yaml").read_text())
    assert yaml.safe_load(capsys.readouterr().out) == entry
    store = _caf_store(tmp_path, keys=entry)
    key = store.key_for("CAF", "CAF-2026-01", datetime(2026, 6, 1, tzinfo=UTC))
    assert key.raw == bytes(signing_key.verify_key)
    assert key.valid_until == datetime(2027, 1, 1, tzinfo=UTC)


def test_generate_refuses_to_overwrite_a_key(tmp_path: Path, passphrase: bytes) -> None:
    assert generate(tmp_path, "--key-id", "CAF-2026-01") == 0
    assert generate(tmp_path, "--key-id", "CAF-2026-01") == 1


def test_generate_for_the_hub(
    tmp_path: Path, passphrase: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "keys",
                "generate",
                "--participant",
                "hub",
                "--out",
                str(tmp_path),
                "--key-id",
                "hub-1",
            ]
        )
        == 0
    )
    assert "hub.keys" in capsys.readouterr().out


def test_generate_refuses_a_bad_participant(tmp_path: Path, passphrase: bytes) -> None:
    assert main(["keys", "generate", "--participant", "Centrafrique", "--out", str(tmp_path)]) == 1


def test_the_passphrase_is_not_a_command_line_option(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        generate(tmp_path, "--passphrase", "x")


def test_without_environment_or_terminal_the_passphrase_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BX_KEY_PASSPHRASE", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(ConfigError, match="BX_KEY_PASSPHRASE"):
        passphrase_from_env_or_prompt()


def test_a_wrong_passphrase_is_a_locked_key(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    write_private_key(path, SigningKey.generate(), b"right passphrase")
    with pytest.raises(KeyNotValidError) as caught:
        load_private_key(path, b"wrong passphrase")
    assert caught.value.reason is KeyProblem.KEY_LOCKED


def test_show_prints_every_key_with_its_validity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "trust.yaml"
    key = "A" * 43 + "="
    store.write_text(
        f"""
version: 1
participants:
  - id: SSD
    name: South Sudan National Police Service
    kind: NATIONAL_SERVICE
    keys:
      - key_id: SSD-2025-01
        public_key: "{key}"
        valid_from: 2025-01-01T00:00:00Z
        valid_until: 2026-01-01T00:00:00Z
      - key_id: SSD-2026-01
        public_key: "{key}"
        valid_from: 2026-01-01T00:00:00Z
        valid_until: 2027-01-01T00:00:00Z
        revoked_at: 2026-05-01T00:00:00Z
        revocation_reason: laptop lost at Nimule
"""
    )
    assert main(["keys", "show", str(store), "--at", "2026-06-01T00:00:00Z"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["OWNER", "NAME", "KIND"]
    assert lines[1].startswith("SSD")
    assert lines[1].endswith("expired")
    assert "laptop lost at Nimule" in lines[2]
    assert lines[2].endswith("revoked")
    assert main(["keys", "show", str(store), "--at", "2026-03-01T00:00:00Z"]) == 0
    assert capsys.readouterr().out.splitlines()[2].endswith("valid")


def test_show_reports_a_bad_trust_store_as_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "trust.yaml"
    store.write_text("version: 1\nparticipants:\n  - id: cf\n")
    assert main(["keys", "show", str(store)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "participants[0].id" in error


def test_generate_for_a_post_writes_an_entry_of_its_participants_post_keys(
    tmp_path: Path, passphrase: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generate(tmp_path, "--post", "bangui-port", "--valid-from", "2026-01-01T00:00:00Z") == 0
    entry = yaml.safe_load(capsys.readouterr().out)
    assert entry[0]["post"] == "bangui-port"
    assert entry[0]["key_id"] == "CAF-bangui-port-2026-0101"
    store = _caf_store(tmp_path, posts=["bangui-port"], post_keys=entry)
    signing_key = load_private_key(tmp_path / "CAF-bangui-port-2026-0101.pem", passphrase)
    key = store.post_key_for(
        "CAF", "bangui-port", "CAF-bangui-port-2026-0101", datetime(2026, 6, 1, tzinfo=UTC)
    )
    assert key.raw == bytes(signing_key.verify_key)
    assert generate(tmp_path, "--post", "Bangui Port") == 1
