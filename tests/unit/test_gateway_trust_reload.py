"""``gateway serve`` follows its trust store file: a recipient's encryption key rotated or
revoked there stops being wrapped to from the next alert sealed, without a restart."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from structlog.testing import capture_logs

from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.bootstrap import GatewayServerConfig, build_gateway
from border_exchange.demo.sandbox import Sandbox, make_sandbox, open_agreements
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.section_seal import is_sealed, recipients_of
from border_exchange.domain.trust import EncryptionKey, TrustStore
from border_exchange.services.gateway import Gateway
from tests.encryption_keys import encryption_key

PASSPHRASE = "rotate-at-once"


def _wrapped(envelope: Envelope) -> set[tuple[str, str]]:
    """Every (participant, key id) a section of ``envelope`` is wrapped to."""
    found: set[tuple[str, str]] = set()
    present = {section.name: section.content for section in envelope.sections}
    for section in envelope.sections:
        assert section.content is not None
        assert is_sealed(section.content)
        found.update(recipients_of(section.content, present))
    return found


def _sealed(gateway: Gateway) -> Envelope:
    # What ``publish`` seals and sends (the sending needs a broker; the sealing does not).
    alert = sample_alert(AlertType.WANTED_PERSON, origin="COD", alert_id=uuid.uuid4().hex)
    return gateway._seal(alert, {}, datetime.now(UTC))


def _with_caf_keys(box: Sandbox, keys: tuple[EncryptionKey, ...]) -> TrustStore:
    caf = replace(box.trust.participants["CAF"], encryption_keys=keys)
    members = MappingProxyType({**box.trust.participants, "CAF": caf})
    return replace(box.trust, participants=members)


def test_gateway_serve_wraps_to_a_rotated_key_and_stops_for_a_revoked_one_without_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = make_sandbox(["COD", "CAF"], open_agreements([("COD", "CAF")]), encryption=True)
    paths = box.write(tmp_path, PASSPHRASE.encode())
    monkeypatch.setenv("BX_KEY_PASSPHRASE", PASSPHRASE)
    config = GatewayServerConfig(
        participant="COD",
        trust_store=paths["trust"],
        signing_key=paths["key:COD"],
        encrypt_for=paths["agreements"],
    )
    gateway = build_gateway(KafkaSettings("fake:9092"), config)  # as ``gateway serve`` does
    first = box.encryption_keys["CAF"].key_id
    own = ("COD", box.encryption_keys["COD"].key_id)
    assert _wrapped(_sealed(gateway)) == {own, ("CAF", first)}

    now = datetime.now(UTC)
    (old,) = box.trust.participants["CAF"].encryption_keys
    _, nextkey = encryption_key(
        "CAF", "CAF-enc-next", now - timedelta(hours=1), now + timedelta(days=365)
    )
    revoked = replace(old, revoked_at=now - timedelta(minutes=1), revocation_reason="rotated")
    paths["trust"].write_text(box.trust_yaml(_with_caf_keys(box, (revoked, nextkey)), serial=2))
    assert _wrapped(_sealed(gateway)) == {own, ("CAF", "CAF-enc-next")}

    # A version the governance refuses (an older serial) changes nothing: logged, kept.
    with capture_logs() as logs:
        paths["trust"].write_text(box.trust_yaml(serial=1))
        assert _wrapped(_sealed(gateway)) == {own, ("CAF", "CAF-enc-next")}
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["trust.rejected"]

    gone = replace(nextkey, revoked_at=now - timedelta(seconds=1), revocation_reason="lost")
    paths["trust"].write_text(box.trust_yaml(_with_caf_keys(box, (revoked, gone)), serial=3))
    with capture_logs() as logs:
        assert _wrapped(_sealed(gateway)) == {own}  # CAF no longer has a key that counts
    assert "gateway.recipient_without_key" in [e["event"] for e in logs]
